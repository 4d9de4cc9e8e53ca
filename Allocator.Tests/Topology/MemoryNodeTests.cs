using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>numa_mem_id: where a node without memory allocates "locally".</summary>
public class MemoryNodeTests
{
    [Test]
    public void MemorylessCpuNode_AllocatesFromItsNearestNodeWithMemory()
    {
        NumaTopology t = NumaTopology.Discover(SysfsFixtures.SystemRoot("memoryless-cpu-node"));

        Assert.That(t.MemoryNodeFor(1), Is.EqualTo(0));
        Assert.That(t.MemoryNodeFor(0), Is.EqualTo(0));
    }

    [Test]
    public void NodeWithMemory_AllocatesFromItself()
    {
        NumaTopology t = NumaTopology.Discover(SysfsFixtures.SystemRoot("memory-only-node"));

        Assert.That(Enumerable.Range(0, 3).Select(t.MemoryNodeFor), Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void MemorylessNode_PicksTheNearestByDistanceAndTheLowestIdOnATie()
    {
        using SysfsTree tree = new SysfsTree()
            .Write("cpu/possible", "0-3\n")
            .Write("node/online", "0-3\n")
            .Write("node/has_memory", "1-3\n")
            .Node(0, "0", "10 30 20 20", 0)
            .Node(1, "1", "30 10 20 20", 1024)
            .Node(2, "2", "20 20 10 20", 1024)
            .Node(3, "3", "20 20 20 10", 1024);

        NumaTopology t = NumaTopology.Discover(tree.Root);

        Assert.That(t.MemoryNodeFor(0), Is.EqualTo(2), "nodes 2 and 3 are both at 20: the lower id wins over the farther node 1");
    }

    [Test]
    public void MemoryNodeFor_UnknownNode_Throws()
    {
        NumaTopology t = NumaTopology.Discover(SysfsFixtures.SystemRoot("two-socket"));

        Assert.Throws<ArgumentOutOfRangeException>(() => t.MemoryNodeFor(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Distance(-1, 0));
    }
}
