namespace Numalloc.Pages;

/// <summary>What a page descriptor says about its page.</summary>
internal enum PageState : byte
{
    /// <summary>Not the head of anything: the interior of a free or allocated block, or never used.</summary>
    None = 0,

    /// <summary>Head of a free buddy block of <see cref="PageDescriptor.Order"/> on a zone's free lists.</summary>
    Free = 1,

    /// <summary>Head of a free buddy block on a zone's isolated free lists (its memory block is going offline).</summary>
    Isolated = 2,

    /// <summary>Head of an allocated block of raw (unmovable) pages.</summary>
    Allocated = 3,

    /// <summary>Head of a block that backs a slab of small objects.</summary>
    Slab = 4,

    /// <summary>Head of a block that backs a movable buffer.</summary>
    Movable = 5,

    /// <summary>
    /// An order-0 page the zone handed to a per-CPU cache or a magazine: free to the user, allocated
    /// to the zone. A free of such a page is a double free; a cache flush returns it to the zone.
    /// </summary>
    Cached = 6,

    /// <summary>
    /// Head of a free block the purger took off the free lists while it returns the block's pages to
    /// the OS, outside the zone lock: nothing allocates it or merges with it, and a free of it is a
    /// double free. It goes back on the lists, purged, when the madvise returns.
    /// </summary>
    Purging = 7,
}

/// <summary>
/// One per 4 KiB page, like the kernel's <c>struct page</c>. Lives in the descriptor mapping, never in
/// the heap's blocks, so metadata never pins a block and a free page's memory is never touched
/// (it may be purged). Only the head page of a buddy block carries its state and order; interior
/// pages say <see cref="PageState.None"/>, which is how interior pointers are recognised.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct PageDescriptor
{
    /// <summary>Next head on the same free list (page index), or -1.</summary>
    [FieldOffset(0)] public int Next;

    /// <summary>Previous head on the same free list (page index), or -1.</summary>
    [FieldOffset(4)] public int Prev;

    /// <summary>Buddy order of the block this page heads.</summary>
    [FieldOffset(8)] public byte Order;

    /// <summary>What the page is.</summary>
    [FieldOffset(9)] public PageState State;

    /// <summary>Index of the zone that owns the page's memory block.</summary>
    [FieldOffset(10)] public byte Zone;

    /// <summary>
    /// Layer-specific flags (the object and movable layers use them). On the head of a free block the
    /// buddy allocator's: <see cref="FreeDirty"/>.
    /// </summary>
    [FieldOffset(11)] public byte Flags;

    /// <summary>
    /// Layer-specific owner word: a slab's size class, a movable buffer's handle slot. On the head of
    /// a dirty free block: the purge clock (ms) when it was last freed.
    /// </summary>
    [FieldOffset(12)] public uint Owner;

    /// <summary>
    /// <see cref="Flags"/> bit of a free block's head: its pages may be resident (freed since they
    /// were last purged). Clear: they were returned to the OS, or never touched since the block was onlined.
    /// The high bit, because the object layer reads <see cref="Flags"/> of any page as size class + 1
    /// (0xFF: a large run): a free page must never look like a slab page to a (bad) free.
    /// </summary>
    public const byte FreeDirty = 0x80; // bit 7: BuddyAllocator shifts it down to count pages

    /// <summary>The list terminator.</summary>
    public const int NoPage = -1;
}
