using Numalloc.Bench.Benchmarks;

namespace Numalloc.Tests.Bench;

public sealed class CounterSidecarTests
{
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("numalloc-sidecar-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void CaseKey_OrdersParametersByName()
    {
        string key = CounterSidecar.CaseKey("PageOrderBenchmarks", "CachedPair", [("Order", 9), ("Node", 1)]);

        Assert.That(key, Is.EqualTo("PageOrderBenchmarks.CachedPair(Node=1,Order=9)"));
    }

    [Test]
    public void Read_ReturnsWhatWriteWroteForTheSameCaseOnly()
    {
        var counters = new CountersPerOperation(0.03125, 0.03125, 0, 0.001, 0);
        string size16 = CounterSidecar.CaseKey("ObjectBenchmarks", "NumaAllocatorPair", [("Size", 16)]);
        string size160 = CounterSidecar.CaseKey("ObjectBenchmarks", "NumaAllocatorPair", [("Size", 160)]);

        CounterSidecar.Write(_directory, size16, counters);

        Assert.Multiple(() =>
        {
            Assert.That(CounterSidecar.Read(_directory, size16), Is.EqualTo(counters));
            Assert.That(CounterSidecar.Read(_directory, size160), Is.Null);
        });
    }

    [Test]
    public void Format_ShowsFourDecimalsOrADashWithoutCounters()
    {
        var counters = new CountersPerOperation(0.03125, 2, 0, 0, 0);

        Assert.Multiple(() =>
        {
            Assert.That(AllocatorCountersColumn.Format(counters, c => c.CacheRefills), Is.EqualTo("0.0313"));
            Assert.That(AllocatorCountersColumn.Format(counters, c => c.CacheFlushes), Is.EqualTo("2.0000"));
            Assert.That(AllocatorCountersColumn.Format(null, c => c.CacheRefills), Is.EqualTo("-"));
        });
    }
}
