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
/// <para>
/// Dirty and purged blocks (see <see cref="PageDescriptor.FreeDirty"/>). A free head is dirty when
/// its pages may still be resident (freed since they were last purged) and then carries in
/// <see cref="PageDescriptor.Owner"/> the purge clock (ms) of its last free; otherwise its pages were
/// returned to the OS (purged, or never touched since the block was onlined). Every block is pushed
/// at the head of its list, so recently freed (warm) blocks are served first, and the purger scans
/// whole lists for dirty heads (cheap: a tick skips a zone with nothing dirty, and free lists are
/// mostly a few large blocks; a tail for purged blocks measured 10 ns more on the zone's alloc+free
/// pair). Split halves inherit the parent's state and stamp. Coalescing merges dirty and purged
/// buddies freely (refusing would fragment the zone, and with purging off a block could never become
/// whole again): the merged block is dirty if either part is, stamped with the newer stamp, so <see cref="DirtyPages"/> is an upper
/// bound of the resident free pages, and purging such a block again madvises some pages that are
/// already gone, which costs the kernel a page-table walk and nothing else.
/// </para>
/// <para>
/// Merge-likely blocks. The unneeded tail of a large run (see <see cref="Free"/>) sits beside a live
/// block it will merge with when that run is freed. Served early, a page of it pins the whole
/// higher-order block for as long as the page lives: with runs and slabs churning, a zone with three
/// quarters of its pages free had no free block of order 7 left (the object drill torture). So those
/// blocks go on a second set of lists that are used only when no ordinary block of the order or
/// above is free (the kernel puts them at the tail of the free list instead: buddy_merge_likely). A
/// block's list is known from the list heads, so no descriptor bit is spent on it.
/// </para>
/// </remarks>
internal sealed unsafe class BuddyAllocator
{
    private readonly PageDescriptor* _pages;
    private readonly int[] _heads;
    private readonly int[] _mergeLikelyHeads;
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
        _mergeLikelyHeads = new int[maxOrder + 1];
        _isolatedHeads = new int[maxOrder + 1];
        _freeBlocks = new long[maxOrder + 1];
        Array.Fill(_heads, PageDescriptor.NoPage);
        Array.Fill(_mergeLikelyHeads, PageDescriptor.NoPage);
        Array.Fill(_isolatedHeads, PageDescriptor.NoPage);
    }

    /// <summary>The largest order.</summary>
    public int MaxOrder { get; }

    /// <summary>Free pages on the allocatable lists.</summary>
    public long FreePages { get; private set; }

    /// <summary>Free pages on the isolated lists.</summary>
    public long IsolatedFreePages { get; private set; }

    /// <summary>Pages of dirty blocks on the allocatable lists: an upper bound of the resident free pages.</summary>
    public long DirtyPages { get; private set; }

    /// <summary>Free blocks of <paramref name="order"/> on the allocatable lists (a <c>/proc/buddyinfo</c> column).</summary>
    public long FreeBlocks(int order) => _freeBlocks[order];

    /// <summary>
    /// Adds a page-aligned run of free pages, as blocks of the largest order that fit its alignment.
    /// The pages count as purged: a block just onlined is committed but was never touched.
    /// </summary>
    public void AddFreeRange(int firstPage, int pageCount, bool isolated)
    {
        int page = firstPage, end = firstPage + pageCount;
        while (page < end)
        {
            int order = MaxOrder;
            while (order > 0 && ((page & ((1 << order) - 1)) != 0 || page + (1 << order) > end))
                order--;
            SetPurgeState(page, dirty: false, 0);
            Push(page, order, isolated);
            page += 1 << order;
        }
    }

    /// <summary>Takes a block of <paramref name="order"/> from the allocatable lists, splitting a larger one if needed.</summary>
    /// <returns>The head page index, or -1 when no block of that order or above is free.</returns>
    public int TryAllocate(int order, PageState state)
    {
        int[] heads = _heads;
        int found = order;
        while (found <= MaxOrder && heads[found] == PageDescriptor.NoPage)
            found++;
        if (found > MaxOrder)
        {
            // Only merge-likely blocks are left: serve from them rather than fail.
            heads = _mergeLikelyHeads;
            found = order;
            while (found <= MaxOrder && heads[found] == PageDescriptor.NoPage)
                found++;
            if (found > MaxOrder)
                return PageDescriptor.NoPage;
        }

        int page = heads[found];
        Unlink(page, found, isolated: false);
        bool mergeLikely = heads == _mergeLikelyHeads; // the halves split off stay on the same kind of list
        // Split: the upper half of each split goes back one order down, dirty or purged as its parent;
        // of a dirty parent only the pages handed out stop counting as dirty.
        byte flags = _pages[page].Flags;
        uint stamp = _pages[page].Owner;
        DirtyPages -= (long)((flags & PageDescriptor.FreeDirty) >> 7) << order; // 1 or 0 pages per page of the block
        while (found > order)
        {
            found--;
            int upper = page + (1 << found);
            _pages[upper].Flags = flags;
            _pages[upper].Owner = stamp;
            Push(upper, found, isolated: false, mergeLikely);
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
    /// Returns an allocated block and merges it with free buddies; it is dirty, stamped
    /// <paramref name="nowMs"/> (the purge clock). The caller has checked that <paramref name="page"/>
    /// heads an allocated block of <paramref name="order"/>. With <paramref name="mergeLikely"/> (the
    /// tail of a live large run) the block is served only when no ordinary block can be.
    /// </summary>
    public void Free(int page, int order, bool isolated, uint nowMs = 0, bool mergeLikely = false)
    {
        // The freed head stops being a head now: if it merges into a lower buddy it must not keep
        // saying Allocated, or a second free of it would pass the caller's check.
        _pages[page].State = PageState.None;
        Insert(page, order, isolated, dirty: true, nowMs, mergeLikely);
    }

    /// <summary>
    /// Takes up to <paramref name="pages"/>.Length dirty blocks off the allocatable lists for purging,
    /// at most about <paramref name="maxPages"/> pages in all (one block may exceed it when it is the
    /// first): every dirty block when <paramref name="all"/>, else those whose stamp is at least
    /// <paramref name="decayMs"/> older than <paramref name="nowMs"/>. Each taken head says
    /// <see cref="PageState.Purging"/>: nothing allocates it, merges with it or frees it until
    /// <see cref="ReturnPurged"/> puts it back.
    /// </summary>
    /// <returns>How many head page indices were written to <paramref name="pages"/>.</returns>
    public int TakeForPurge(Span<int> pages, long maxPages, bool all, uint nowMs, int decayMs)
    {
        int taken = 0;
        long takenPages = 0;
        for (int list = 0; list < 2 * (MaxOrder + 1) && taken < pages.Length; list++)
        {
            int order = MaxOrder - list % (MaxOrder + 1);
            int page = list <= MaxOrder ? _heads[order] : _mergeLikelyHeads[order];
            while (page != PageDescriptor.NoPage && taken < pages.Length)
            {
                ref PageDescriptor d = ref _pages[page];
                int next = d.Next;
                if ((d.Flags & PageDescriptor.FreeDirty) != 0 && (all || (long)(int)(nowMs - d.Owner) >= decayMs))
                {
                    if (taken > 0 && takenPages + (1L << order) > maxPages)
                        return taken;
                    Unlink(page, order, isolated: false);
                    DirtyPages -= 1L << order;
                    d.State = PageState.Purging;
                    d.Order = (byte)order;
                    pages[taken++] = page;
                    takenPages += 1L << order;
                }
                page = next;
            }
        }
        return taken;
    }

    /// <summary>
    /// Puts back a block from <see cref="TakeForPurge"/>: purged when <paramref name="purged"/> (its
    /// pages were returned to the OS), else dirty with its old stamp (the purge failed). Pages of a
    /// memory block isolated meanwhile go to the isolated lists.
    /// </summary>
    public void ReturnPurged(int page, bool isolated, bool purged)
    {
        ref PageDescriptor d = ref _pages[page];
        Debug.Assert(d.State == PageState.Purging, "only a block taken for purging comes back");
        d.State = PageState.None;
        Insert(page, d.Order, isolated, dirty: !purged, d.Owner);
    }

    // Merges the block with its free buddies of the same kind (allocatable or isolated) and pushes
    // the result: dirty if any part is, stamped with the newest dirty part's stamp.
    private void Insert(int page, int order, bool isolated, bool dirty, uint stampMs, bool mergeLikely = false)
    {
        PageState wanted = isolated ? PageState.Isolated : PageState.Free;
        long dirtyBefore = 0; // dirty pages of the buddies merged in, counted until now
        while (order < MaxOrder)
        {
            int buddy = page ^ (1 << order);
            ref PageDescriptor b = ref _pages[buddy];
            if (b.State != wanted || b.Order != order)
                break;
            Unlink(buddy, order, isolated);
            if ((b.Flags & PageDescriptor.FreeDirty) != 0)
            {
                dirtyBefore += 1L << order;
                // Stamps are ms on a wrapping 32-bit clock: newer by signed difference.
                if (!dirty || (int)(b.Owner - stampMs) > 0)
                    stampMs = b.Owner;
                dirty = true;
            }
            b.State = PageState.None;
            page = Math.Min(page, buddy);
            order++;
        }
        SetPurgeState(page, dirty, stampMs);
        Push(page, order, isolated, mergeLikely);
        if (!isolated)
            DirtyPages += (dirty ? 1L << order : 0) - dirtyBefore;
    }

    private void SetPurgeState(int page, bool dirty, uint stampMs)
    {
        ref PageDescriptor d = ref _pages[page];
        d.Flags = dirty ? PageDescriptor.FreeDirty : (byte)0;
        d.Owner = dirty ? stampMs : 0;
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
                long dirty = (long)((d.Flags & PageDescriptor.FreeDirty) >> 7) << order;
                DirtyPages += toIsolated ? -dirty : dirty;
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

    // Push and Unlink leave DirtyPages to their callers, which apply one net change per operation: a
    // split or a merge moves the same dirty pages through up to ten lists, and a counter update per
    // level (a store-to-load chain) measured 8 ns on the zone's alloc+free pair.
    private void Push(int page, int order, bool isolated, bool mergeLikely = false)
    {
        int[] heads = isolated ? _isolatedHeads : mergeLikely ? _mergeLikelyHeads : _heads;
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
        ref PageDescriptor d = ref _pages[page];
        if (d.Prev != PageDescriptor.NoPage)
            _pages[d.Prev].Next = d.Next;
        else if (isolated)
            _isolatedHeads[order] = d.Next;
        else if (_heads[order] == page)
            _heads[order] = d.Next;
        else
            _mergeLikelyHeads[order] = d.Next; // a list head not on the ordinary list is on this one
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
