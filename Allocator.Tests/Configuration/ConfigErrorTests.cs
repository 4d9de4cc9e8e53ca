namespace Numalloc.Tests.Configuration;

/// <summary>Bad configuration: every error is a ConfigException that names the key and the bad value.</summary>
public class ConfigErrorTests
{
    [TestCase("colour=blue", "colour")]
    [TestCase("normal=12Q", "normal")]
    [TestCase("normal=", "normal")]
    [TestCase("normal=M", "normal")]
    [TestCase("normal=1.5G", "normal")]
    [TestCase("normal=0", "normal")]
    [TestCase("normal=-1M", "normal")]
    [TestCase("movable=-5", "movable")]
    [TestCase("normal=99999999999G", "normal")]
    [TestCase("normal_max=128T", "normal_max")]
    [TestCase("topology=sim:0", "topology")]
    [TestCase("topology=sim:65", "topology")]
    [TestCase("topology=sim:2x0", "topology")]
    [TestCase("topology=sim:-2", "topology")]
    [TestCase("topology=sim:", "topology")]
    [TestCase("topology=numa", "topology")]
    [TestCase("topology=sim:2;distance=10,20,20", "distance")]
    [TestCase("topology=sim:2;distance=20,10,10,20", "distance")]
    [TestCase("topology=sim:2;distance=10,-20", "distance")]
    [TestCase("topology=sim:2;distance=10,300", "distance")]
    [TestCase("topology=sim:2;distance=10,9", "distance")]
    [TestCase("topology=sim:2;distance=10,x", "distance")]
    [TestCase("distance=10,20", "distance")]
    [TestCase("normal=64M;normal=32M", "normal")]
    [TestCase("block=3M", "block")]
    [TestCase("block=12M", "block")]
    [TestCase("block=2M", "block")]
    [TestCase("block=4G", "block")]
    [TestCase("bind=loose", "bind")]
    [TestCase("on_bad_free=ignore", "on_bad_free")]
    [TestCase("decay_ms=-5", "decay_ms")]
    [TestCase("decay_ms=soon", "decay_ms")]
    [TestCase("decay_ms=99999999999", "decay_ms")]
    [TestCase("normal_max=32M", "normal_max")]
    [TestCase("movable=128M;movable_max=64M", "movable_max")]
    [TestCase("normal", "normal")]
    public void BadConfig_ThrowsConfigExceptionNamingTheKey(string config, string key)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigParser.Parse(config));

        Assert.Multiple(() =>
        {
            Assert.That(ex!.Key, Is.EqualTo(key));
            Assert.That(ex.Message, Does.StartWith("NUMALLOC_CONFIG: '"));
            Assert.That(ex.Message, Does.Contain(key));
        });
    }

    [Test]
    public void BadBlockSize_SaysWhatIsAllowed() =>
        Assert.That(
            Assert.Throws<ConfigException>(() => ConfigParser.Parse("block=3M"))!.Message,
            Does.StartWith("NUMALLOC_CONFIG: 'block=3M': block must be a power of two multiple of 4M (e.g. 16M)"));

    [Test]
    public void UnknownKey_ListsTheKnownKeys()
    {
        string message = Assert.Throws<ConfigException>(() => ConfigParser.Parse("normal=64M; colour=blue"))!.Message;

        Assert.That(message, Does.Contain("'colour=blue'"));
        foreach (string key in ConfigParser.KnownKeys)
        {
            Assert.That(message, Does.Contain(key));
        }
    }

    [Test]
    public void BadSize_QuotesTheValueAndTheAllowedForms() =>
        Assert.That(
            Assert.Throws<ConfigException>(() => ConfigParser.Parse("normal=12Q"))!.Message,
            Is.EqualTo("NUMALLOC_CONFIG: 'normal=12Q': normal must be a size in bytes, or with a K, M or G suffix (e.g. 64M)"));

    [Test]
    public void WrongDistanceCount_SaysHowManyNumbersAreNeeded() =>
        Assert.That(
            Assert.Throws<ConfigException>(() => ConfigParser.Parse("topology=sim:3;distance=10,20,30"))!.Message,
            Does.Contain("2 numbers (local,remote) or 9 numbers"));

    [Test]
    public void DuplicateKey_QuotesBothValues() =>
        Assert.That(
            Assert.Throws<ConfigException>(() => ConfigParser.Parse("bind=strict;bind=preferred"))!.Message,
            Does.Contain("'bind=preferred'").And.Contain("'bind=strict'"));

    [Test]
    public void ConfigException_IsAFormatException() =>
        Assert.That(Assert.Throws<ConfigException>(() => ConfigParser.Parse("x=1")), Is.InstanceOf<FormatException>());

    [Test]
    public void Validate_RejectsBadOptionsBuiltInCode()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<ConfigException>(() => new AllocatorOptions { BlockBytes = 3 * 1024 * 1024 }.Validate())!.Key, Is.EqualTo("block"));
            Assert.That(Assert.Throws<ConfigException>(() => new AllocatorOptions { NormalBytes = 0 }.Validate())!.Key, Is.EqualTo("normal"));
            Assert.That(Assert.Throws<ConfigException>(() => new AllocatorOptions { Topology = new TopologySpec { Kind = TopologyKind.Simulated } }.Validate())!.Key, Is.EqualTo("topology"));
            Assert.That(Assert.Throws<ConfigException>(() => new AllocatorOptions { AdminSocket = new string('s', 200) }.Validate())!.Key, Is.EqualTo("admin_socket"));
            Assert.DoesNotThrow(() => new AllocatorOptions().Validate());
        });
    }
}
