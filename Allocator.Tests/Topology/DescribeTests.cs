using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>The numactl --hardware style description.</summary>
public class DescribeTests
{
    [Test]
    public void Describe_TwoSocket_PrintsCpusSizesAndTheDistanceTable()
    {
        NumaTopology t = NumaTopology.Discover(SysfsFixtures.SystemRoot("two-socket"));

        Assert.That(t.Describe(), Is.EqualTo(
            "available: 2 nodes (0-1)\n" +
            "node 0 cpus: 0\n" +
            "node 0 size: 502 MB\n" +
            "node 1 cpus: 1\n" +
            "node 1 size: 457 MB\n" +
            "node distances:\n" +
            "node   0   1\n" +
            "  0:  10  21\n" +
            "  1:  21  10\n"));
        Assert.That(t.ToString(), Is.EqualTo(t.Describe()));
    }

    [Test]
    public void Describe_Simulated_SaysWhichOsNodeBacksEachNode()
    {
        NumaTopology t = NumaTopology.Simulated(2, 1, null, NumaTopology.Discover(SysfsFixtures.SystemRoot("single-node")));

        Assert.That(t.Describe(), Does.StartWith("available: 2 nodes (0-1), simulated\nnode 0 cpus: 0\nnode 0 memory: os node 0\n"));
    }

    [Test]
    public void Describe_MemorylessNode_SaysWhereItsMemoryComesFrom()
    {
        NumaTopology t = NumaTopology.Discover(SysfsFixtures.SystemRoot("memoryless-cpu-node"));

        Assert.That(t.Describe(), Does.Contain("node 1 size: 0 MB\nnode 1 memory from: node 0\n"));
    }
}
