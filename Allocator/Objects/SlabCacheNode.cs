namespace Numalloc.Objects;

/// <summary>
/// One size class on one node (the kernel's <c>kmem_cache_node</c>): its lock, its list of partial
/// slabs and its few empty ones, threaded through the slabs' <see cref="SlabMeta"/> entries by head
/// page index. Full slabs are on no list; a free finds its slab through the page descriptors.
/// </summary>
/// <remarks>Every field is read and written under <see cref="Lock"/> (stats read them racily).</remarks>
internal sealed class SlabCacheNode
{
    /// <summary>Guards the lists, the counters and every <see cref="SlabMeta"/> of this node's slabs of this class.</summary>
    public readonly Lock Lock = new();

    /// <summary>The node.</summary>
    public readonly int Node;

    /// <summary>First partial slab (head page), or -1.</summary>
    public int Partial = -1;

    /// <summary>First empty slab, or -1.</summary>
    public int Empty = -1;

    /// <summary>Slabs on the empty list.</summary>
    public int EmptyCount;

    /// <summary>Slabs this node holds for the class, on any list or none.</summary>
    public long Slabs;

    /// <summary>Objects free inside those slabs.</summary>
    public long FreeObjects;

    /// <summary>Creates the lists of <paramref name="node"/>.</summary>
    public SlabCacheNode(int node) => Node = node;
}
