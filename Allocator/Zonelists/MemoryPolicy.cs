using System.Globalization;

namespace Numalloc.Zonelists;

/// <summary>The memory policy modes of <c>set_mempolicy(2)</c> the page allocator knows.</summary>
public enum MemoryPolicyMode
{
    /// <summary>The calling thread's node (its CPU's node, or that node's nearest node with memory), falling back by distance.</summary>
    Local = 0,

    /// <summary>One chosen node first, falling back by its distance order.</summary>
    Preferred = 1,

    /// <summary>Only the nodes of the set; fail rather than fall back outside it.</summary>
    Bind = 2,

    /// <summary>Round-robin over the set, per thread, each allocation falling back from its node.</summary>
    Interleave = 3,
}

/// <summary>An immutable memory policy: a mode and, for Preferred/Bind/Interleave, a node set.</summary>
public sealed class MemoryPolicy
{
    private MemoryPolicy(MemoryPolicyMode mode, ulong nodeMask)
    {
        Mode = mode;
        NodeMask = nodeMask;
    }

    /// <summary>The default policy: allocate on the calling thread's node.</summary>
    public static MemoryPolicy Local { get; } = new(MemoryPolicyMode.Local, 0);

    /// <summary>The mode.</summary>
    public MemoryPolicyMode Mode { get; }

    /// <summary>The node set, bit i for node i (0 for Local).</summary>
    public ulong NodeMask { get; }

    /// <summary>Prefer <paramref name="node"/>, falling back by its distance order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The node id is not 0..63.</exception>
    public static MemoryPolicy Preferred(int node) => new(MemoryPolicyMode.Preferred, MaskOf([node]));

    /// <summary>Only these nodes; an allocation fails rather than use another.</summary>
    /// <exception cref="ArgumentException">The set is empty or a node id is not 0..63.</exception>
    public static MemoryPolicy Bind(params int[] nodes) => new(MemoryPolicyMode.Bind, MaskOf(nodes));

    /// <summary>Round-robin over these nodes, per thread.</summary>
    /// <exception cref="ArgumentException">The set is empty or a node id is not 0..63.</exception>
    public static MemoryPolicy Interleave(params int[] nodes) => new(MemoryPolicyMode.Interleave, MaskOf(nodes));

    /// <summary>Whether <paramref name="node"/> is in the set.</summary>
    public bool Contains(int node) => (uint)node < 64 && (NodeMask & (1UL << node)) != 0;

    /// <summary>The policy as <c>mode(nodes)</c>, e.g. <c>Bind(0,2)</c>.</summary>
    public override string ToString()
    {
        var nodes = new List<string>();
        for (int i = 0; i < 64; i++)
        {
            if (Contains(i))
                nodes.Add(i.ToString(CultureInfo.InvariantCulture));
        }
        return $"{Mode}({string.Join(',', nodes)})";
    }

    private static ulong MaskOf(int[] nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (nodes.Length == 0)
            throw new ArgumentException("A node set needs at least one node.", nameof(nodes));
        ulong mask = 0;
        foreach (int node in nodes)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(node, nameof(nodes));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(node, 63, nameof(nodes));
            mask |= 1UL << node;
        }
        return mask;
    }
}
