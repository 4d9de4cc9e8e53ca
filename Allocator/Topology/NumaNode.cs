using Numalloc.Platform;
using System.Collections.Immutable;

namespace Numalloc.Topology;

/// <summary>One logical NUMA node of a <see cref="NumaTopology"/>. Immutable.</summary>
public sealed class NumaNode
{
    internal NumaNode(int id, int osNodeId, ImmutableArray<int> cpus, bool hasMemory, long memoryBytes, int physicalNode)
    {
        Id = id;
        OsNodeId = osNodeId;
        Cpus = cpus;
        HasMemory = hasMemory;
        MemoryBytes = memoryBytes;
        PhysicalNode = physicalNode;
    }

    /// <summary>The dense logical index, 0..NodeCount-1: the id every other layer uses.</summary>
    public int Id { get; }

    /// <summary>The kernel's node id (possibly sparse, e.g. 0 and 2), or -1 for a simulated node, which has none.</summary>
    public int OsNodeId { get; }

    /// <summary>The node's CPU ids, ascending (virtual CPU ids under simulation).</summary>
    public ImmutableArray<int> Cpus { get; }

    /// <summary>Whether the node has CPUs (a memory-only node, like a CXL expander, has none).</summary>
    public bool HasCpus => !Cpus.IsEmpty;

    /// <summary>Whether the node has memory of its own (always true for a simulated node).</summary>
    public bool HasMemory { get; }

    /// <summary>The node's <c>MemTotal</c> from its sysfs <c>meminfo</c>, in bytes; 0 for a simulated node.</summary>
    public long MemoryBytes { get; }

    /// <summary>
    /// The kernel node id whose memory backs this node, for <c>mbind</c>: the node itself under
    /// discovery; under simulation, logical nodes map round-robin onto the machine's nodes with memory.
    /// </summary>
    public int PhysicalNode { get; }

    /// <summary>A one-line summary, e.g. <c>node 1 (os 2) cpus 4-7, 512M</c>.</summary>
    public override string ToString()
    {
        string os = OsNodeId == Id ? string.Empty : OsNodeId < 0 ? FormattableString.Invariant($" (on os node {PhysicalNode})") : FormattableString.Invariant($" (os {OsNodeId})");
        string memory = HasMemory ? FormattableString.Invariant($"{MemoryBytes / (1024 * 1024)}M") : "no memory";
        return FormattableString.Invariant($"node {Id}{os} cpus {CpuList.Format(Cpus)}, {memory}");
    }
}
