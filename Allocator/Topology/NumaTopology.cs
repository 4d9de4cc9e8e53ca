using System.Collections.Immutable;

namespace Numalloc.Topology;

/// <summary>
/// The NUMA layout the allocator works with: dense logical nodes 0..N-1, their CPUs and memory,
/// and the node distance table. Immutable once built; read it from any thread.
/// Build one with <see cref="Discover"/> (the machine's sysfs), <see cref="Simulated"/> or
/// <see cref="FromOptions"/>.
/// </summary>
public sealed partial class NumaTopology
{
    /// <summary>Most nodes a topology may have (one 64-bit node mask covers them).</summary>
    public const int MaxNodes = TopologySpec.MaxNodes;

    private readonly int[] _distances;           // NodeCount x NodeCount, row-major
    private readonly int[] _nodeOfCpu;           // PossibleCpuCount entries
    private readonly int[] _memoryNodeFor;       // NodeCount entries
    private readonly ImmutableArray<int>[] _byDistance;

    private NumaTopology(NumaNode[] nodes, int[] distances, int possibleCpuCount, bool isSimulated)
    {
        int n = nodes.Length;
        Nodes = [.. nodes];
        _distances = distances;
        PossibleCpuCount = possibleCpuCount;
        IsSimulated = isSimulated;

        // A CPU no node lists (offline when discovered, or beyond every node) counts as node 0.
        _nodeOfCpu = new int[possibleCpuCount];
        foreach (NumaNode node in nodes)
        {
            foreach (int cpu in node.Cpus)
            {
                _nodeOfCpu[cpu] = node.Id;
            }
        }

        _byDistance = new ImmutableArray<int>[n];
        _memoryNodeFor = new int[n];
        for (int from = 0; from < n; from++)
        {
            int[] order = new int[n];
            for (int i = 0; i < n; i++)
            {
                order[i] = i;
            }

            int self = from;
            Array.Sort(order, (a, b) =>
                a == b ? 0
                : a == self ? -1
                : b == self ? 1
                : Distance(self, a) != Distance(self, b) ? Distance(self, a).CompareTo(Distance(self, b))
                : a.CompareTo(b));
            _byDistance[from] = [.. order];

            // numa_mem_id: the node itself if it has memory, else the nearest node that has some.
            _memoryNodeFor[from] = from;
            foreach (int candidate in order)
            {
                if (nodes[candidate].HasMemory)
                {
                    _memoryNodeFor[from] = candidate;
                    break;
                }
            }
        }
    }

    /// <summary>The number of logical nodes (at least 1).</summary>
    public int NodeCount => Nodes.Length;

    /// <summary>The nodes, indexed by their dense <see cref="NumaNode.Id"/>.</summary>
    public ImmutableArray<NumaNode> Nodes { get; }

    /// <summary>
    /// One more than the highest possible CPU id (the kernel's <c>cpu/possible</c>; under simulation
    /// at least NodeCount x CpusPerNode). Size per-CPU tables from this, never from
    /// <see cref="Environment.ProcessorCount"/>: CPU ids can exceed it under cpusets.
    /// </summary>
    public int PossibleCpuCount { get; }

    /// <summary>Whether the nodes are simulated rather than the machine's own.</summary>
    public bool IsSimulated { get; }

    /// <summary>The distance from node <paramref name="from"/> to node <paramref name="to"/> (10 = local).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A node id is not 0..NodeCount-1.</exception>
    public int Distance(int from, int to)
    {
        ThrowIfBadNode(from);
        ThrowIfBadNode(to);
        return _distances[(from * NodeCount) + to];
    }

    /// <summary>
    /// The node a CPU belongs to, by table lookup. A CPU that no node lists (offline when the
    /// topology was read) and any id outside 0..PossibleCpuCount-1 map to node 0: the current CPU
    /// is only ever a hint, so this never throws.
    /// </summary>
    public int NodeOfCpu(int cpu) => (uint)cpu < (uint)_nodeOfCpu.Length ? _nodeOfCpu[cpu] : 0;

    /// <summary>
    /// The node whose memory a thread on <paramref name="node"/> allocates "locally" from: the node
    /// itself if it has memory, else its nearest node with memory (ties to the lowest id) — the
    /// kernel's <c>numa_mem_id</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The node id is not 0..NodeCount-1.</exception>
    public int MemoryNodeFor(int node)
    {
        ThrowIfBadNode(node);
        return _memoryNodeFor[node];
    }

    /// <summary>
    /// All nodes in fallback order from <paramref name="from"/>: itself first, then by ascending
    /// distance, ties by lower id (the order the kernel builds a zonelist in).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The node id is not 0..NodeCount-1.</exception>
    public ImmutableArray<int> NodesByDistance(int from)
    {
        ThrowIfBadNode(from);
        return _byDistance[from];
    }

    private void ThrowIfBadNode(int node)
    {
        if ((uint)node >= (uint)Nodes.Length)
        {
            ThrowBadNode(node, Nodes.Length);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowBadNode(int node, int nodeCount) =>
        throw new ArgumentOutOfRangeException(nameof(node), node, $"Node ids are 0..{nodeCount - 1}.");
}
