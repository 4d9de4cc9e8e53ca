namespace Numalloc.Topology;

public sealed partial class NumaTopology
{
    /// <summary>
    /// Lays <paramref name="nodeCount"/> logical nodes over <paramref name="machine"/>.
    /// </summary>
    /// <remarks>
    /// CPUs: with C = <paramref name="cpusPerNode"/> node n gets the virtual CPU ids n*C..n*C+C-1
    /// (the ids tests, the drill and benchmarks set per thread). With 0, C = max(1,
    /// ceil(machine CPUs / nodeCount)), so every node has at least one CPU and real CPU ids land on
    /// the nodes in contiguous runs. <see cref="PossibleCpuCount"/> is max(nodeCount*C, the machine's);
    /// real CPU ids beyond nodeCount*C go to node (id mod nodeCount), so every possible id belongs
    /// to exactly one node.
    /// Memory: every simulated node has memory, backed by the machine's nodes with memory taken
    /// round-robin (<see cref="NumaNode.PhysicalNode"/>); <see cref="NumaNode.OsNodeId"/> is -1.
    /// </remarks>
    /// <param name="nodeCount">Logical nodes, 1..<see cref="MaxNodes"/>.</param>
    /// <param name="cpusPerNode">Virtual CPUs per node, or 0 to spread the machine's CPUs.</param>
    /// <param name="distances">A full nodeCount x nodeCount matrix, or <see langword="null"/> for 10 local / 20 remote.</param>
    /// <param name="machine">The machine's own topology, from <see cref="Discover"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="machine"/> is null.</exception>
    /// <exception cref="ArgumentException">The shape or the distance matrix is invalid.</exception>
    public static NumaTopology Simulated(int nodeCount, int cpusPerNode, int[,]? distances, NumaTopology machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        TopologySpec spec = TopologySpec.Simulate(nodeCount, cpusPerNode, distances);

        int perNode = cpusPerNode > 0 ? cpusPerNode : Math.Max(1, (machine.PossibleCpuCount + nodeCount - 1) / nodeCount);
        int assigned = nodeCount * perNode;
        int possibleCpuCount = Math.Max(assigned, machine.PossibleCpuCount);

        var physical = new List<int>();
        foreach (NumaNode node in machine.Nodes)
        {
            if (node.HasMemory)
            {
                physical.Add(node.PhysicalNode);
            }
        }

        if (physical.Count == 0)
        {
            physical.Add(machine.Nodes[0].PhysicalNode);
        }

        var nodes = new NumaNode[nodeCount];
        int[] matrix = new int[nodeCount * nodeCount];
        for (int id = 0; id < nodeCount; id++)
        {
            var cpus = new List<int>(perNode);
            for (int cpu = id * perNode; cpu < (id + 1) * perNode; cpu++)
            {
                cpus.Add(cpu);
            }

            for (int cpu = assigned; cpu < possibleCpuCount; cpu++)
            {
                if (cpu % nodeCount == id)
                {
                    cpus.Add(cpu);
                }
            }

            nodes[id] = new NumaNode(id, osNodeId: -1, [.. cpus], hasMemory: true, memoryBytes: 0, physical[id % physical.Count]);
            for (int to = 0; to < nodeCount; to++)
            {
                matrix[(id * nodeCount) + to] = spec.DistanceOrDefault(id, to);
            }
        }

        return new NumaTopology(nodes, matrix, possibleCpuCount, isSimulated: true);
    }

    /// <summary>
    /// The topology <paramref name="options"/> asks for: the machine's (discovered under
    /// <paramref name="sysfsSystemRoot"/>) or a simulation laid over it.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The simulated shape or distance matrix is invalid.</exception>
    /// <exception cref="TopologyException">The machine's topology cannot be read.</exception>
    public static NumaTopology FromOptions(AllocatorOptions options, string sysfsSystemRoot = DefaultSysfsRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
        TopologySpec spec = options.Topology;
        NumaTopology machine = Discover(sysfsSystemRoot);
        return spec.Kind == TopologyKind.Simulated
            ? Simulated(spec.NodeCount, spec.CpusPerNode, spec.Distances, machine)
            : machine;
    }
}
