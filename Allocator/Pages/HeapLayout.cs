namespace Numalloc.Pages;

/// <summary>
/// The arithmetic of the heap's single reservation: node spans of a power-of-two number of blocks,
/// blocks of a power-of-two number of pages. Page indices are global: page 0 is the heap's first page.
/// </summary>
/// <remarks>
/// <c>page = (p - base) &gt;&gt; PageShift</c>, <c>block = page &gt;&gt; PagesPerBlockShift</c>,
/// <c>node = block &gt;&gt; BlocksPerNodeShift</c>: a subtraction and shifts. The zone is the one table
/// load (<see cref="MemoryBlockTable"/>).
/// </remarks>
internal readonly unsafe struct HeapLayout
{
    /// <summary>log2 of the base page (4 KiB).</summary>
    public const int PageShift = 12;

    /// <summary>The base page size in bytes.</summary>
    public const int PageSize = 1 << PageShift;

    /// <summary>Creates the layout of a heap at <paramref name="baseAddress"/>.</summary>
    public HeapLayout(byte* baseAddress, int nodeCount, int blockShift, int blocksPerNodeShift)
    {
        Base = baseAddress;
        NodeCount = nodeCount;
        BlockShift = blockShift;
        PagesPerBlockShift = blockShift - PageShift;
        BlocksPerNodeShift = blocksPerNodeShift;
    }

    /// <summary>The first byte of the reservation (aligned to the block size).</summary>
    public byte* Base { get; }

    /// <summary>The number of node spans.</summary>
    public int NodeCount { get; }

    /// <summary>log2 of the block size in bytes.</summary>
    public int BlockShift { get; }

    /// <summary>log2 of the pages in one block.</summary>
    public int PagesPerBlockShift { get; }

    /// <summary>log2 of the blocks in one node span.</summary>
    public int BlocksPerNodeShift { get; }

    /// <summary>Pages in one block.</summary>
    public int PagesPerBlock => 1 << PagesPerBlockShift;

    /// <summary>Blocks in one node span.</summary>
    public int BlocksPerNode => 1 << BlocksPerNodeShift;

    /// <summary>Blocks in the whole heap.</summary>
    public int BlockCount => NodeCount << BlocksPerNodeShift;

    /// <summary>Pages in the whole heap.</summary>
    public long PageCount => (long)BlockCount << PagesPerBlockShift;

    /// <summary>Bytes in one block.</summary>
    public nuint BlockBytes => (nuint)1 << BlockShift;

    /// <summary>Bytes in the whole reservation.</summary>
    public nuint SizeBytes => (nuint)BlockCount << BlockShift;

    /// <summary>Whether <paramref name="p"/> lies inside the reservation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(void* p) => (nuint)((byte*)p - Base) < SizeBytes;

    /// <summary>The global page index of an address inside the heap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int PageOf(void* p) => (int)((nuint)((byte*)p - Base) >> PageShift);

    /// <summary>The block holding a page.</summary>
    public int BlockOfPage(int page) => page >> PagesPerBlockShift;

    /// <summary>The node whose span holds a block.</summary>
    public int NodeOfBlock(int block) => block >> BlocksPerNodeShift;

    /// <summary>The first block of a node's span.</summary>
    public int FirstBlockOfNode(int node) => node << BlocksPerNodeShift;

    /// <summary>The first page of a block.</summary>
    public int FirstPageOfBlock(int block) => block << PagesPerBlockShift;

    /// <summary>The address of a page.</summary>
    public byte* AddressOfPage(int page) => Base + ((nuint)(uint)page << PageShift);

    /// <summary>The address of a block's first byte.</summary>
    public byte* AddressOfBlock(int block) => Base + ((nuint)(uint)block << BlockShift);
}
