using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>Logical nodes laid over a machine (the captured trees stand in for the machine).</summary>
public class SimulatedTopologyTests
{
    private static NumaTopology Machine(string tree) => NumaTopology.Discover(SysfsFixtures.SystemRoot(tree));

    [Test]
    public void Sim4_OnATwoCpuMachine_GivesEachNodeOneCpuAndDefaultDistances()
    {
        NumaTopology t = NumaTopology.Simulated(4, 0, null, Machine("single-node"));

        Assert.Multiple(() =>
        {
            Assert.That(t.IsSimulated, Is.True);
            Assert.That(t.NodeCount, Is.EqualTo(4));
            Assert.That(t.PossibleCpuCount, Is.EqualTo(4));
            Assert.That(t.Nodes.Select(n => n.Cpus.ToArray()), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 }, new[] { 2 }, new[] { 3 } }));
            Assert.That(t.Nodes.Select(n => n.HasMemory), Is.All.True);
            Assert.That(t.Nodes.Select(n => n.PhysicalNode), Is.All.EqualTo(0));
            Assert.That(t.Nodes.Select(n => n.OsNodeId), Is.All.EqualTo(-1));
            Assert.That(t.Nodes.Select(n => n.MemoryBytes), Is.All.EqualTo(0L));
            Assert.That(t.Distance(1, 1), Is.EqualTo(10));
            Assert.That(t.Distance(1, 3), Is.EqualTo(20));
            Assert.That(t.NodeOfCpu(3), Is.EqualTo(3));
        });
    }

    [Test]
    public void Sim4x2_GivesNodeNTheVirtualCpus2NAnd2NPlus1()
    {
        NumaTopology t = NumaTopology.Simulated(4, 2, null, Machine("single-node"));

        Assert.Multiple(() =>
        {
            Assert.That(t.PossibleCpuCount, Is.EqualTo(8));
            Assert.That(t.Nodes.Select(n => n.Cpus.ToArray()), Is.EqualTo(new[] { new[] { 0, 1 }, new[] { 2, 3 }, new[] { 4, 5 }, new[] { 6, 7 } }));
            Assert.That(Enumerable.Range(0, 8).Select(t.NodeOfCpu), Is.EqualTo(new[] { 0, 0, 1, 1, 2, 2, 3, 3 }));
        });
    }

    [Test]
    public void FewerVirtualCpusThanTheMachineHas_SpreadsTheRestRoundRobin()
    {
        NumaTopology t = NumaTopology.Simulated(2, 1, null, Machine("epyc-2s-nps4"));

        Assert.Multiple(() =>
        {
            Assert.That(t.PossibleCpuCount, Is.EqualTo(8));
            Assert.That(t.Nodes[0].Cpus, Is.EqualTo(new[] { 0, 2, 4, 6 }));
            Assert.That(t.Nodes[1].Cpus, Is.EqualTo(new[] { 1, 3, 5, 7 }));
        });
    }

    [Test]
    public void SpreadCpus_GivesEachNodeACeilingShareInContiguousRuns()
    {
        NumaTopology t = NumaTopology.Simulated(3, 0, null, Machine("epyc-2s-nps4"));

        Assert.Multiple(() =>
        {
            Assert.That(t.PossibleCpuCount, Is.EqualTo(9));
            Assert.That(t.Nodes.Select(n => n.Cpus.ToArray()), Is.EqualTo(new[] { new[] { 0, 1, 2 }, new[] { 3, 4, 5 }, new[] { 6, 7, 8 } }));
        });
    }

    [Test]
    public void LogicalNodes_MapRoundRobinOntoTheMachinesNodesWithMemory()
    {
        NumaTopology onMemoryless = NumaTopology.Simulated(3, 1, null, Machine("memoryless-cpu-node"));
        NumaTopology onMemoryOnly = NumaTopology.Simulated(4, 1, null, Machine("memory-only-node"));

        Assert.That(onMemoryless.Nodes.Select(n => n.PhysicalNode), Is.EqualTo(new[] { 0, 0, 0 }));
        Assert.That(onMemoryOnly.Nodes.Select(n => n.PhysicalNode), Is.EqualTo(new[] { 0, 1, 2, 0 }));
    }

    [Test]
    public void AsymmetricMatrix_OrdersFallbackByDistanceFromEachNodeWithTiesToTheLowerId()
    {
        int[,] d =
        {
            { 10, 30, 20, 40 },
            { 15, 10, 25, 35 },
            { 50, 20, 10, 20 },
            { 12, 13, 14, 10 },
        };

        NumaTopology t = NumaTopology.Simulated(4, 1, d, Machine("single-node"));

        Assert.Multiple(() =>
        {
            Assert.That(t.Distance(0, 2), Is.EqualTo(20));
            Assert.That(t.Distance(2, 0), Is.EqualTo(50));
            Assert.That(t.NodesByDistance(0), Is.EqualTo(new[] { 0, 2, 1, 3 }));
            Assert.That(t.NodesByDistance(1), Is.EqualTo(new[] { 1, 0, 2, 3 }));
            Assert.That(t.NodesByDistance(2), Is.EqualTo(new[] { 2, 1, 3, 0 }));
            Assert.That(t.NodesByDistance(3), Is.EqualTo(new[] { 3, 0, 1, 2 }));
        });
    }

    [Test]
    public void DistanceMatrix_IsCopiedSoLaterChangesDoNotLeakIn()
    {
        int[,] d = { { 10, 30 }, { 30, 10 } };
        NumaTopology t = NumaTopology.Simulated(2, 1, d, Machine("single-node"));
        d[0, 1] = 99;

        Assert.That(t.Distance(0, 1), Is.EqualTo(30));
    }

    [Test]
    public void InvalidShapesAndMatrices_AreRejected()
    {
        NumaTopology machine = Machine("single-node");

        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(0, 1, null, machine));
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(65, 1, null, machine));
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(2, -1, null, machine));
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(3, 1, new int[2, 2] { { 10, 20 }, { 20, 10 } }, machine));
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(2, 1, new int[2, 2] { { 20, 10 }, { 10, 20 } }, machine));
            Assert.Throws<ArgumentException>(() => NumaTopology.Simulated(2, 1, new int[2, 2] { { 10, 255 }, { 20, 10 } }, machine));
            Assert.Throws<ArgumentNullException>(() => NumaTopology.Simulated(2, 1, null, null!));
        });
    }

    [Test]
    public void FromOptions_BuildsTheTopologyTheOptionsAskFor()
    {
        string root = SysfsFixtures.SystemRoot("two-socket");

        NumaTopology os = NumaTopology.FromOptions(new AllocatorOptions(), root);
        NumaTopology sim = NumaTopology.FromOptions(ConfigParser.Parse("topology=sim:3x2;distance=10,40"), root);

        Assert.Multiple(() =>
        {
            Assert.That(os.IsSimulated, Is.False);
            Assert.That(os.NodeCount, Is.EqualTo(2));
            Assert.That(sim.IsSimulated, Is.True);
            Assert.That(sim.NodeCount, Is.EqualTo(3));
            Assert.That(sim.Nodes[2].Cpus, Is.EqualTo(new[] { 4, 5 }));
            Assert.That(sim.Distance(0, 2), Is.EqualTo(40));
            Assert.That(sim.Nodes.Select(n => n.PhysicalNode), Is.EqualTo(new[] { 0, 1, 0 }));
        });
    }
}
