namespace Numalloc.Pages;

/// <summary>
/// The buddy free lists of one zone: per order, a doubly linked list of free block heads threaded
/// through the page descriptors, plus a second set of lists for free pages of isolated memory blocks
/// (the kernel's MIGRATE_ISOLATE free lists), from which nothing is ever allocated.
/// </summary>
/// <remarks>
/// Not thread-safe: the owning zone's lock is held around every call. Page indices are global (page 0
/// is the heap's first page) and the heap is aligned to its block size, which is a multiple of the
/// largest buddy block, so a block's buddy is <c>index ^ (1 &lt;&lt; order)</c> and always lies in the
/// same memory block: coalescing never crosses a block, so a block can be isolated or removed whole.
/// </remarks>
internal sealed unsafe class BuddyAllocator
{
    private readonly PageDescriptor* _pages;
    private readonly int[] _heads;
    private readonly int[] _isolatedHeads;
    private readonly long[] _freeBlocks;
    private readonly byte _zone;

    /// <summary>Creates empty free lists over the descriptor table <paramref name="pages"/>.</summary>
    public BuddyAllocator(PageDescriptor* pages, int maxOrder, byte zone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxOrder);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxOrder, 20);
        _pages = pages;
        MaxOrder = maxOrder;
        _zone = zone;
        _heads = new int[maxOrder + 1];
        _isolatedHeads = new int[maxOrder + 1];
        _freeBlocks = new long[maxOrder + 1];
        Array.Fill(_heads, PageDescriptor.NoPage);
        Array.Fill(_isolatedHeads, PageDescriptor.NoPage);
    }

    /// <summary>The largest order.</summary>
    public int MaxOrder { get; }

    /// <summary>Free pages on the allocatable lists.</summary>
    public long FreePages { get; private set; }

    /// <summary>Free pages on the isolated lists.</summary>
    public long IsolatedFreePages { get; private set; }

    /// <summary>Free blocks of <paramref name="order"/> on the allocatable lists (a <c>/proc/buddyinfo</c> column).</summary>
    public long FreeBlocks(int order) => _freeBlocks[order];

    /// <summary>Adds a page-aligned run of free pages, as blocks of the largest order that fit its alignment.</summary>
    public void AddFreeRange(int firstPage, int pageCount, bool isolated)
    {
        int page = firstPage, end = firstPage + pageCount;
        while (page < end)
        {
            int order = MaxOrder;
            while (order > 0 && ((page & ((1 << order) - 1)) != 0 || page + (1 << order) > end))
                order--;
            Push(page, order, isolated);
            page += 1 << order;
        }
    }

    /// <summary>Takes a block of <paramref name="order"/> from the allocatable lists, splitting a larger one if needed.</summary>
    /// <returns>The head page index, or -1 when no block of that order or above is free.</returns>
    public int TryAllocate(int order, PageState state)
    {
        int found = order;
        while (found <= MaxOrder && _heads[found] == PageDescriptor.NoPage)
            found++;
        if (found > MaxOrder)
            return PageDescriptor.NoPage;

        int page = _heads[found];
        Unlink(page, found, isolated: false);
        // Split: the upper half of each split goes back one order down.
        while (found > order)
        {
            found--;
            Push(page + (1 << found), found, isolated: false);
        }
        ref PageDescriptor head = ref _pages[page];
        head.State = state;
        head.Order = (byte)order;
        head.Zone = _zone;
        head.Flags = 0;
        head.Owner = 0;
        return page;
    }

    /// <summary>
    /// Returns an allocated block and merges it with free buddies. The caller has checked that
    /// <paramref name="page"/> heads an allocated block of <paramref name="order"/>.
    /// </summary>
    public void Free(int page, int order, bool isolated)
    {
        // The freed head stops being a head now: if it merges into a lower buddy it must not keep
        // saying Allocated, or a second free of it would pass the caller's check.
        _pages[page].State = PageState.None;
        while (order < MaxOrder)
        {
            int buddy = page ^ (1 << order);
            ref PageDescriptor b = ref _pages[buddy];
            PageState wanted = isolated ? PageState.Isolated : PageState.Free;
            if (b.State != wanted || b.Order != order)
                break;
            Unlink(buddy, order, isolated);
            b.State = PageState.None;
            page = Math.Min(page, buddy);
            order++;
        }
        Push(page, order, isolated);
    }

    /// <summary>
    /// Moves every free block inside [firstPage, firstPage + pageCount) between the allocatable and the
    /// isolated lists (the range is whole memory blocks, so no free block straddles its edges).
    /// </summary>
    /// <returns>Pages moved.</returns>
    public long MoveRange(int firstPage, int pageCount, bool toIsolated)
    {
        PageState from = toIsolated ? PageState.Free : PageState.Isolated;
        long moved = 0;
        int page = firstPage, end = firstPage + pageCount;
        while (page < end)
        {
            ref PageDescriptor d = ref _pages[page];
            if (d.State == from)
            {
                int order = d.Order;
                Unlink(page, order, isolated: !toIsolated);
                Push(page, order, isolated: toIsolated);
                moved += 1L << order;
                page += 1 << order;
            }
            else
            {
                page++;
            }
        }
        return moved;
    }

    /// <summary>
    /// Takes every isolated free block inside the range off the lists (the range goes offline).
    /// </summary>
    /// <returns>Pages removed; equal to the range's size exactly when nothing in it was in use.</returns>
    public long RemoveIsolatedRange(int firstPage, int pageCount)
    {
        long removed = 0;
        int page = firstPage, end = firstPage + pageCount;
        while (page < end)
        {
            ref PageDescriptor d = ref _pages[page];
            if (d.State == PageState.Isolated)
            {
                int order = d.Order;
                Unlink(page, order, isolated: true);
                d.State = PageState.None;
                removed += 1L << order;
                page += 1 << order;
            }
            else
            {
                page++;
            }
        }
        return removed;
    }

    /// <summary>Counts the isolated free pages inside a range (all of it free: the range can go offline).</summary>
    public long CountIsolatedFree(int firstPage, int pageCount)
    {
        long free = 0;
        int page = firstPage, end = firstPage + pageCount;
        while (page < end)
        {
            ref PageDescriptor d = ref _pages[page];
            if (d.State == PageState.Isolated)
            {
                free += 1L << d.Order;
                page += 1 << d.Order;
            }
            else
            {
                page++;
            }
        }
        return free;
    }

    private void Push(int page, int order, bool isolated)
    {
        int[] heads = isolated ? _isolatedHeads : _heads;
        ref PageDescriptor d = ref _pages[page];
        d.State = isolated ? PageState.Isolated : PageState.Free;
        d.Order = (byte)order;
        d.Zone = _zone;
        d.Prev = PageDescriptor.NoPage;
        d.Next = heads[order];
        if (d.Next != PageDescriptor.NoPage)
            _pages[d.Next].Prev = page;
        heads[order] = page;
        if (isolated)
        {
            IsolatedFreePages += 1L << order;
        }
        else
        {
            FreePages += 1L << order;
            _freeBlocks[order]++;
        }
    }

    private void Unlink(int page, int order, bool isolated)
    {
        int[] heads = isolated ? _isolatedHeads : _heads;
        ref PageDescriptor d = ref _pages[page];
        if (d.Prev != PageDescriptor.NoPage)
            _pages[d.Prev].Next = d.Next;
        else
            heads[order] = d.Next;
        if (d.Next != PageDescriptor.NoPage)
            _pages[d.Next].Prev = d.Prev;
        d.Next = d.Prev = PageDescriptor.NoPage;
        if (isolated)
        {
            IsolatedFreePages -= 1L << order;
        }
        else
        {
            FreePages -= 1L << order;
            _freeBlocks[order]--;
        }
    }
}
