using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>Discovery against every tree captured from a real kernel (expected values read from the fixture files).</summary>
public class CapturedTreeDiscoveryTests
{
    private const long KiB = 1024;

    private static NumaTopology Discover(string tree) => NumaTopology.Discover(SysfsFixtures.SystemRoot(tree));

    private static int[][] CpusOf(NumaTopology topology) => [.. topology.Nodes.Select(n => n.Cpus.ToArray())];

    private static int[][] DistancesOf(NumaTopology topology) =>
        [.. Enumerable.Range(0, topology.NodeCount).Select(i => Enumerable.Range(0, topology.NodeCount).Select(j => topology.Distance(i, j)).ToArray())];

    [Test]
    public void SingleNode_IsOneNodeWithBothCpusAndItsMemTotal()
    {
        NumaTopology t = Discover("single-node");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(1));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(2));
            Assert.That(CpusOf(t), Is.EqualTo(new[] { new[] { 0, 1 } }));
            Assert.That(t.Distance(0, 0), Is.EqualTo(10));
            Assert.That(t.Nodes[0].MemoryBytes, Is.EqualTo(981476 * KiB));
            Assert.That(t.Nodes[0].HasMemory, Is.True);
            Assert.That(t.Nodes[0].OsNodeId, Is.EqualTo(0));
            Assert.That(t.Nodes[0].PhysicalNode, Is.EqualTo(0));
            Assert.That(t.IsSimulated, Is.False);
        });
    }

    [Test]
    public void TwoSocket_IsTwoNodesOfOneCpuAtDistance21()
    {
        NumaTopology t = Discover("two-socket");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(2));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(2));
            Assert.That(CpusOf(t), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 } }));
            Assert.That(DistancesOf(t), Is.EqualTo(new[] { new[] { 10, 21 }, new[] { 21, 10 } }));
            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.EqualTo(new[] { 514632 * KiB, 468204 * KiB }));
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.All.True);
            Assert.That(t.Nodes.Select(n => n.HasCpus), Is.All.True);
        });
    }

    [Test]
    public void FourNodeAsym_HasTheCapturedDistanceTable()
    {
        NumaTopology t = Discover("four-node-asym");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(4));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(4));
            Assert.That(CpusOf(t), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 }, new[] { 2 }, new[] { 3 } }));
            Assert.That(DistancesOf(t), Is.EqualTo(new[]
            {
                new[] { 10, 16, 22, 28 },
                new[] { 16, 10, 28, 22 },
                new[] { 22, 28, 10, 16 },
                new[] { 28, 22, 16, 10 },
            }));
            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.EqualTo(new[] { 514632 * KiB, 515672 * KiB, 470400 * KiB, 513476 * KiB }));
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.All.True);
            Assert.That(t.NodesByDistance(0), Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(t.NodesByDistance(1), Is.EqualTo(new[] { 1, 0, 3, 2 }));
            Assert.That(t.NodesByDistance(2), Is.EqualTo(new[] { 2, 3, 0, 1 }));
            Assert.That(t.NodesByDistance(3), Is.EqualTo(new[] { 3, 2, 1, 0 }));
        });
    }

    [Test]
    public void EpycTwoSocketNps4_IsEightNodesWith12InsideASocketAnd32Across()
    {
        NumaTopology t = Discover("epyc-2s-nps4");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(8));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(8));
            for (int i = 0; i < 8; i++)
            {
                Assert.That(t.Nodes[i].Cpus, Is.EqualTo(new[] { i }), $"cpus of node {i}");
                Assert.That(t.NodeOfCpu(i), Is.EqualTo(i), $"node of cpu {i}");
                for (int j = 0; j < 8; j++)
                {
                    int expected = i == j ? 10 : i / 4 == j / 4 ? 12 : 32;
                    Assert.That(t.Distance(i, j), Is.EqualTo(expected), $"distance {i}->{j}");
                }
            }

            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.EqualTo(new[]
            {
                256584 * KiB, 257624 * KiB, 257624 * KiB, 257624 * KiB,
                257624 * KiB, 212352 * KiB, 257624 * KiB, 255428 * KiB,
            }));
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.All.True);
            Assert.That(t.NodesByDistance(5), Is.EqualTo(new[] { 5, 4, 6, 7, 0, 1, 2, 3 }));
        });
    }

    [Test]
    public void MemoryOnlyNode_HasNoCpusButHasMemory()
    {
        NumaTopology t = Discover("memory-only-node");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(3));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(2));
            Assert.That(CpusOf(t), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 }, Array.Empty<int>() }));
            Assert.That(t.Nodes.Select(n => n.HasCpus), Is.EqualTo(new[] { true, true, false }));
            Assert.That(t.Nodes[2].HasMemory, Is.True);
            Assert.That(DistancesOf(t), Is.EqualTo(new[]
            {
                new[] { 10, 21, 24 },
                new[] { 21, 10, 26 },
                new[] { 24, 26, 10 },
            }));
            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.EqualTo(new[] { 514632 * KiB, 470400 * KiB, 513724 * KiB }));
            Assert.That(t.MemoryNodeFor(2), Is.EqualTo(2));
        });
    }

    [Test]
    public void MemorylessCpuNode_HasCpusButNoMemory()
    {
        NumaTopology t = Discover("memoryless-cpu-node");
        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.EqualTo(2));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(2));
            Assert.That(CpusOf(t), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 } }));
            Assert.That(DistancesOf(t), Is.EqualTo(new[] { new[] { 10, 21 }, new[] { 21, 10 } }));
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.EqualTo(new[] { true, false }));
            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.EqualTo(new[] { 981304 * KiB, 0L }));
        });
    }
}
