namespace Numalloc.Tests.Configuration;

/// <summary>Parsing valid configuration strings.</summary>
public class ConfigParserTests
{
    private const long MiB = 1024 * 1024;
    private const long GiB = 1024 * MiB;

    [Test]
    public void EmptyConfig_GivesTheDefaults()
    {
        AllocatorOptions o = ConfigParser.Parse("");

        Assert.Multiple(() =>
        {
            Assert.That(o, Is.EqualTo(new AllocatorOptions()));
            Assert.That(o.Topology.Kind, Is.EqualTo(TopologyKind.Os));
            Assert.That(o.NormalBytes, Is.EqualTo(64 * MiB));
            Assert.That(o.MovableBytes, Is.EqualTo(64 * MiB));
            Assert.That(o.NormalMaxBytes, Is.EqualTo(4 * GiB));
            Assert.That(o.MovableMaxBytes, Is.EqualTo(4 * GiB));
            Assert.That(o.BlockBytes, Is.EqualTo(16 * MiB));
            Assert.That(o.Bind, Is.EqualTo(BindPolicy.Preferred));
            Assert.That(o.DecayMs, Is.EqualTo(10_000));
            Assert.That(o.OnBadFree, Is.EqualTo(BadFreeAction.Report));
            Assert.That(o.AdminSocket, Is.Null);
        });
    }

    [Test]
    public void EveryKey_IsParsed()
    {
        AllocatorOptions o = ConfigParser.Parse(
            "topology=sim:4x2;normal=128M;movable=0;normal_max=1G;movable_max=0;block=32M;distance=10,30;" +
            "bind=strict;decay_ms=-1;on_bad_free=abort;admin_socket=/run/numalloc.sock");

        Assert.Multiple(() =>
        {
            Assert.That(o.Topology.Kind, Is.EqualTo(TopologyKind.Simulated));
            Assert.That(o.Topology.NodeCount, Is.EqualTo(4));
            Assert.That(o.Topology.CpusPerNode, Is.EqualTo(2));
            Assert.That(o.Topology.DistanceOrDefault(1, 1), Is.EqualTo(10));
            Assert.That(o.Topology.DistanceOrDefault(1, 3), Is.EqualTo(30));
            Assert.That(o.NormalBytes, Is.EqualTo(128 * MiB));
            Assert.That(o.MovableBytes, Is.Zero);
            Assert.That(o.NormalMaxBytes, Is.EqualTo(GiB));
            Assert.That(o.MovableMaxBytes, Is.Zero);
            Assert.That(o.BlockBytes, Is.EqualTo(32 * MiB));
            Assert.That(o.Bind, Is.EqualTo(BindPolicy.Strict));
            Assert.That(o.DecayMs, Is.EqualTo(-1));
            Assert.That(o.OnBadFree, Is.EqualTo(BadFreeAction.Abort));
            Assert.That(o.AdminSocket, Is.EqualTo("/run/numalloc.sock"));
        });
    }

    [Test]
    public void Whitespace_EmptySegments_AndCase_AreTolerated()
    {
        AllocatorOptions o = ConfigParser.Parse(" ;  Topology = SIM:2 ;; normal = 64mb ; on_bad_free=Check;");

        Assert.Multiple(() =>
        {
            Assert.That(o.Topology, Is.EqualTo(TopologySpec.Simulate(2)));
            Assert.That(o.NormalBytes, Is.EqualTo(64 * MiB));
            Assert.That(o.OnBadFree, Is.EqualTo(BadFreeAction.Check));
        });
    }

    [TestCase("4096", 4096L)]
    [TestCase("100B", 100L)]
    [TestCase("1K", 1024L)]
    [TestCase("1kb", 1024L)]
    [TestCase("3M", 3L * 1024 * 1024)]
    [TestCase("2g", 2L * 1024 * 1024 * 1024)]
    [TestCase("2GB", 2L * 1024 * 1024 * 1024)]
    public void Sizes_AcceptBytesAndBinarySuffixes(string text, long expected) =>
        Assert.That(ConfigParser.Parse("normal=" + text).NormalBytes, Is.EqualTo(expected));

    [Test]
    public void FullDistanceMatrix_IsReadRowMajorAndNeedNotBeSymmetric()
    {
        AllocatorOptions o = ConfigParser.Parse("topology=sim:3;distance=10,20,30, 15,10,25, 40,35,10");

        Assert.Multiple(() =>
        {
            Assert.That(o.Topology.DistanceOrDefault(0, 2), Is.EqualTo(30));
            Assert.That(o.Topology.DistanceOrDefault(2, 0), Is.EqualTo(40));
            Assert.That(o.Topology.DistanceOrDefault(1, 0), Is.EqualTo(15));
        });
    }

    [Test]
    public void DistanceBeforeTopology_StillAppliesToTheSimulatedNodes() =>
        Assert.That(ConfigParser.Parse("distance=10,20,20,10;topology=sim:2").Topology.NodeCount, Is.EqualTo(2));

    [TestCase("")]
    [TestCase("topology=os")]
    [TestCase("topology=sim:4")]
    [TestCase("topology=sim:4x2;distance=10,30")]
    [TestCase("topology=sim:1;distance=10")]
    [TestCase("topology=sim:3;distance=10,20,30,15,10,25,40,35,10")]
    [TestCase("normal=20M;movable=0;movable_max=0;normal_max=20M")]
    [TestCase("normal=12345;normal_max=4100K;block=2G")]
    [TestCase("bind=strict;decay_ms=0;on_bad_free=check;admin_socket=/tmp/na.sock")]
    [TestCase("decay_ms=-1;on_bad_free=abort")]
    public void ValidConfig_RoundTripsThroughToConfigString(string config)
    {
        AllocatorOptions parsed = ConfigParser.Parse(config);
        string written = parsed.ToConfigString();

        Assert.That(ConfigParser.Parse(written), Is.EqualTo(parsed), written);
    }

    [Test]
    public void OptionsBuiltInCode_RoundTripThroughToConfigString()
    {
        var options = new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(2, 3, new[,] { { 10, 17 }, { 33, 10 } }),
            NormalBytes = 48 * MiB,
            MovableBytes = 0,
            BlockBytes = 8 * MiB,
            DecayMs = 250,
            AdminSocket = "/tmp/x y.sock",
        };

        string written = options.ToConfigString();

        Assert.Multiple(() =>
        {
            Assert.That(written, Does.Contain("topology=sim:2x3").And.Contain("distance=10,17,33,10").And.Contain("block=8M"));
            Assert.That(ConfigParser.Parse(written), Is.EqualTo(options));
            Assert.That(ConfigParser.Parse(written), Is.Not.EqualTo(new AllocatorOptions()));
        });
    }

    [Test]
    public void DefaultDistances_EqualAnExplicitTenTwentyMatrix() =>
        Assert.That(ConfigParser.Parse("topology=sim:3;distance=10,20"), Is.EqualTo(ConfigParser.Parse("topology=sim:3")));

    [Test]
    public void Sizes_AreRoundedUpToWholeBlocks()
    {
        AllocatorOptions o = ConfigParser.Parse("normal=20M;movable=0;block=16M");

        Assert.Multiple(() =>
        {
            Assert.That(o.NormalBytes, Is.EqualTo(20 * MiB), "the option keeps the value given");
            Assert.That(o.BlocksFor(o.NormalBytes), Is.EqualTo(2));
            Assert.That(o.BlocksFor(o.MovableBytes), Is.Zero);
            Assert.That(o.BlocksFor(64 * MiB), Is.EqualTo(4));
        });
    }

    [Test]
    public void TopologySpec_DistancesCannotBeChangedFromOutside()
    {
        int[,] given = { { 10, 20 }, { 20, 10 } };
        TopologySpec spec = TopologySpec.Simulate(2, 0, given);
        given[0, 1] = 99;
        spec.Distances![1, 0] = 99;

        Assert.That(spec.DistanceOrDefault(0, 1), Is.EqualTo(20));
        Assert.That(spec.DistanceOrDefault(1, 0), Is.EqualTo(20));
    }
}
