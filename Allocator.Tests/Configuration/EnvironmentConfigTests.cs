namespace Numalloc.Tests.Configuration;

/// <summary>Reading NUMALLOC_CONFIG. Changes process state, so never in parallel with other tests.</summary>
[NonParallelizable]
public class EnvironmentConfigTests
{
    private string? _saved;

    [SetUp]
    public void SaveVariable() => _saved = Environment.GetEnvironmentVariable(AllocatorOptions.EnvironmentVariable);

    [TearDown]
    public void RestoreVariable() => Environment.SetEnvironmentVariable(AllocatorOptions.EnvironmentVariable, _saved);

    [Test]
    public void FromEnvironment_ParsesNumallocConfig()
    {
        Environment.SetEnvironmentVariable("NUMALLOC_CONFIG", "topology=sim:3;decay_ms=0");

        AllocatorOptions o = AllocatorOptions.FromEnvironment();

        Assert.That(o.Topology.NodeCount, Is.EqualTo(3));
        Assert.That(o.DecayMs, Is.Zero);
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("  ")]
    public void FromEnvironment_UnsetOrEmpty_GivesTheDefaults(string? value)
    {
        Environment.SetEnvironmentVariable("NUMALLOC_CONFIG", value);

        Assert.That(AllocatorOptions.FromEnvironment(), Is.EqualTo(new AllocatorOptions()));
    }

    [Test]
    public void FromEnvironment_BadValue_ThrowsConfigException()
    {
        Environment.SetEnvironmentVariable("NUMALLOC_CONFIG", "bind=loose");

        Assert.That(Assert.Throws<ConfigException>(() => AllocatorOptions.FromEnvironment())!.Key, Is.EqualTo("bind"));
    }
}
