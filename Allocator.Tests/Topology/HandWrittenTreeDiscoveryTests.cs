using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>Layouts no captured tree covers, and broken trees, written by hand in the kernel's formats.</summary>
public class HandWrittenTreeDiscoveryTests
{
    private static SysfsTree TwoCpuMachine() =>
        new SysfsTree().Write("cpu/possible", "0-1\n").Write("cpu/online", "0-1\n");

    [Test]
    public void SparseNodeIds_BecomeDenseLogicalNodesKeepingTheKernelIds()
    {
        using SysfsTree tree = TwoCpuMachine()
            .Write("node/possible", "0-2\n")
            .Write("node/online", "0,2\n")
            .Write("node/has_memory", "0,2\n")
            .Node(0, "0", "10 20", 1024)
            .Node(2, "1", "20 10", 2048);

        NumaTopology t = NumaTopology.Discover(tree.Root);

        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(2));
            Assert.That(t.Nodes.Select(n => n.Id), Is.EqualTo(new[] { 0, 1 }));
            Assert.That(t.Nodes.Select(n => n.OsNodeId), Is.EqualTo(new[] { 0, 2 }));
            Assert.That(t.Nodes.Select(n => n.PhysicalNode), Is.EqualTo(new[] { 0, 2 }));
            Assert.That(t.Nodes[1].Cpus, Is.EqualTo(new[] { 1 }));
            Assert.That(t.Nodes[1].MemoryBytes, Is.EqualTo(2048L * 1024));
            Assert.That(t.Distance(0, 1), Is.EqualTo(20));
            Assert.That(t.Distance(1, 1), Is.EqualTo(10));
            Assert.That(t.NodeOfCpu(1), Is.EqualTo(1));
        });
    }

    [Test]
    public void PossibleWiderThanOnline_OnlyOnlineNodesBecomeLogicalNodes()
    {
        using SysfsTree tree = new SysfsTree()
            .Write("cpu/possible", "0-7\n")
            .Write("cpu/online", "0-1\n")
            .Write("node/possible", "0-3\n")
            .Write("node/online", "0-1\n")
            .Node(0, "0", "10 21", 4096)
            .Node(1, "1", "21 10", 4096);

        NumaTopology t = NumaTopology.Discover(tree.Root);

        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(2));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(8), "per-CPU tables cover hot-pluggable CPUs too");
            Assert.That(t.NodeOfCpu(5), Is.EqualTo(0), "a CPU no node lists counts as node 0");
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.All.True, "without has_memory, MemTotal > 0 decides");
        });
    }

    [Test]
    public void NoHasMemoryFile_ANodeWithZeroMemTotalHasNoMemory()
    {
        using SysfsTree tree = TwoCpuMachine()
            .Write("node/online", "0-1\n")
            .Node(0, "0", "10 21", 4096)
            .Node(1, "1", "21 10", 0);

        NumaTopology t = NumaTopology.Discover(tree.Root);

        Assert.That(t.Nodes.Select(n => n.HasMemory), Is.EqualTo(new[] { true, false }));
    }

    [Test]
    public void NoNodeDirectory_IsOneNodeWithEveryPossibleCpu()
    {
        using SysfsTree tree = new SysfsTree().Write("cpu/possible", "0-3\n");

        NumaTopology t = NumaTopology.Discover(tree.Root);

        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(1));
            Assert.That(t.Nodes[0].Cpus, Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(t.Nodes[0].HasMemory, Is.True);
            Assert.That(t.Distance(0, 0), Is.EqualTo(10));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(4));
        });
    }

    [TestCase("node/node1/cpulist", "1-0\n")]
    [TestCase("node/node1/distance", "21\n")]
    [TestCase("node/node1/distance", "21 ten\n")]
    [TestCase("node/node1/meminfo", "Node 1 MemFree: 5 kB\n")]
    [TestCase("node/node1/meminfo", "Node 1 MemTotal: lots kB\n")]
    [TestCase("node/online", "0-1,\n")]
    [TestCase("cpu/possible", "\n")]
    [TestCase("node/node1/cpulist", "7\n")]
    [TestCase("node/node1/cpulist", "0\n")]
    public void MalformedFile_ThrowsTopologyExceptionNamingTheFile(string file, string content)
    {
        using SysfsTree tree = TwoCpuMachine()
            .Write("node/online", "0-1\n")
            .Node(0, "0", "10 21", 4096)
            .Node(1, "1", "21 10", 4096)
            .Write(file, content);

        var ex = Assert.Throws<TopologyException>(() => NumaTopology.Discover(tree.Root));

        Assert.That(ex!.Message, Does.Contain(tree.PathOf(file)));
        Assert.That(ex.FilePath, Is.EqualTo(tree.PathOf(file)));
    }

    [TestCase("node/node1/meminfo")]
    [TestCase("node/node1/distance")]
    [TestCase("node/online")]
    [TestCase("cpu/possible")]
    public void MissingFile_ThrowsTopologyExceptionNamingTheFile(string file)
    {
        using SysfsTree tree = TwoCpuMachine()
            .Write("node/online", "0-1\n")
            .Node(0, "0", "10 21", 4096)
            .Node(1, "1", "21 10", 4096);
        File.Delete(tree.PathOf(file));

        var ex = Assert.Throws<TopologyException>(() => NumaTopology.Discover(tree.Root));

        Assert.That(ex!.Message, Does.Contain(tree.PathOf(file)));
    }

    [Test]
    public void OnlineNodeMissingFromPossible_IsRejected()
    {
        using SysfsTree tree = TwoCpuMachine()
            .Write("node/possible", "0\n")
            .Write("node/online", "0-1\n")
            .Node(0, "0", "10 21", 4096)
            .Node(1, "1", "21 10", 4096);

        var ex = Assert.Throws<TopologyException>(() => NumaTopology.Discover(tree.Root));

        Assert.That(ex!.Message, Does.Contain("node 1"));
    }
}
