using System.Collections.Immutable;
using System.Diagnostics;

namespace Numalloc.Pages;

/// <summary>
/// One zone of one node (Normal or Movable): the buddy free lists under the zone lock, watermarks,
/// counters and the operator flags. Zone objects live as long as the heap and are never freed, so a
/// reader of a torn zonelist always dereferences a valid zone.
/// </summary>
/// <remarks>
/// Race: zonelist readers walk lists that a writer may be rewriting, so a reader can reach a zone
/// that is no longer (or not yet) right for its request. Rule: <see cref="TryAllocate"/> re-checks
/// everything that makes the zone eligible (zone type against the request, admin-down, the
/// watermark) under the zone lock before serving, so a torn list costs a retry, never a wrong zone.
/// Race: isolation of a block against allocation and free. Rule: a block changes between Online and
/// Isolated only under this lock (CAS on the table byte inside it), and allocation and free read the
/// block state under the same lock, so no page of a block is served once its isolation completed.
/// Race: purging against allocation and free. MADV_DONTNEED zeroes whatever it hits, so a page must
/// not be purged while anyone may write it, and the syscall must not run under this lock. Rule (the
/// kernel's free page reporting does the same): under the lock <see cref="Purge"/> takes a batch of
/// dirty blocks off the free lists and marks their heads <see cref="PageState.Purging"/>, so no
/// allocation can get them and no free can merge with them or free them again; it madvises them with
/// the lock released and puts them back, purged, under the lock. While a batch is out its pages still
/// count as free for the watermarks and growth (<c>_purgingPages</c>), and an allocation that finds
/// the lists empty while a batch is out waits for it instead of failing. A memory block isolated while
/// a batch is out gets its pages back on the isolated lists; until then they are missing from
/// <see cref="CountIsolatedFree"/>, so an offline that finds a block not yet free retries (it must
/// read <see cref="ZoneStats.PurgingPages"/> before it declares the block busy).
/// </remarks>
internal sealed unsafe class Zone
{
    private readonly Lock _lock = new();
    private readonly PageHeap _heap;
    private readonly BuddyAllocator _buddy;

    // Written under _lock.
    private Watermarks _watermarks;
    private long _managedPages;
    private int _onlineBlocks;
    private int _isolatedBlocks;

    // Written and read under _lock (plain increments).
    private long _allocations;
    private long _frees;
    private long _isolatedServes;
    private long _purgedPages;
    private long _purges;
    private long _purgeFailures;

    // Pages of blocks taken off the lists by a purge in flight: written under _lock, read without it
    // by an allocation waiting for the batch to come back.
    private long _purgingPages;

    /// <summary>Most blocks one purge batch takes off the lists (its indices live on the stack).</summary>
    internal const int PurgeBatchBlocks = 64;

    /// <summary>Most pages one purge batch takes off the lists (16 MiB), so a batch is out only briefly.</summary>
    internal const long PurgeBatchPages = 4096;

    // Allocations that find the lists empty while a purge batch is out wait for it this many times at most.
    private const int MaxPurgeWaits = 64;

    // Set by an operator (under _lock); while set, growth keeps the operator's watermarks.
    private bool _manualWatermarks;

    // Written under the node's growth lock.
    private long _growths;
    private long _growthFailures;

    // Operator flags: volatile so a grower or allocator on another CPU sees a set flag on its next
    // check without a lock (the check under the zone lock is what makes refusal exact).
    private volatile bool _adminDown;
    private volatile bool _goingOffline;

    /// <summary>Creates an empty zone (no blocks online).</summary>
    public Zone(PageHeap heap, int node, ZoneType type, int maxBlocks)
    {
        _heap = heap;
        Node = node;
        Type = type;
        Index = (node * 2) + (int)type;
        MaxBlocks = maxBlocks;
        _buddy = new BuddyAllocator(heap.Descriptors, PageHeap.MaxOrder, (byte)Index);
    }

    /// <summary>The node the zone belongs to.</summary>
    public int Node { get; }

    /// <summary>Normal or Movable.</summary>
    public ZoneType Type { get; }

    /// <summary>node * 2 + type: the zone byte of its page descriptors.</summary>
    public int Index { get; }

    /// <summary>The most blocks growth may bring the zone to (normal_max / movable_max).</summary>
    public int MaxBlocks { get; }

    /// <summary>An operator took the zone down: it serves nothing, does not grow and leaves the zonelists.</summary>
    public bool AdminDown
    {
        get => _adminDown;
        set => _adminDown = value;
    }

    /// <summary>The zone (or its node) is being taken offline: growth is refused.</summary>
    public bool GoingOffline
    {
        get => _goingOffline;
        set => _goingOffline = value;
    }

    /// <summary>Blocks in state Online (not counting isolated ones). Racy read.</summary>
    public int OnlineBlocks =>
        // Acquire: pairs with the lock release of the writer; a stale value only delays a rebuild's view.
        Volatile.Read(ref _onlineBlocks);

    /// <summary>Free pages on the allocatable lists, read under the lock (stale as soon as it returns).</summary>
    public long FreePages
    {
        get
        {
            lock (_lock)
            {
                return _buddy.FreePages;
            }
        }
    }

    /// <summary>Whether growth may online another block into this zone now.</summary>
    public bool CanGrow =>
        // Racy reads (volatile flags, acquire loads of the counts): exact only under the growth lock.
        !_adminDown && !_goingOffline
        && Volatile.Read(ref _onlineBlocks) + Volatile.Read(ref _isolatedBlocks) < MaxBlocks;

    /// <summary>Whether the zonelists name this zone: some block is online, or it can grow.</summary>
    public bool IsListed => OnlineBlocks > 0 || CanGrow;

    /// <summary>Whether the zone's type may serve a request with <paramref name="flags"/> (unmovable only from Normal).</summary>
    public bool Admits(PageAllocFlags flags) => Type == ZoneType.Normal || (flags & PageAllocFlags.Movable) != 0;

    /// <summary>
    /// Takes a block of <paramref name="order"/> if the zone is eligible and stays at or above its min
    /// watermark afterwards; grows the zone (outside the lock) when it falls below its low watermark
    /// or cannot serve.
    /// </summary>
    /// <returns>The head page index, or <see cref="PageDescriptor.NoPage"/>.</returns>
    public int TryAllocate(int order, PageAllocFlags flags, PageState state = PageState.Allocated)
    {
        Span<int> one = stackalloc int[1];
        return AllocateBatch(order, flags, one, state) == 1 ? one[0] : PageDescriptor.NoPage;
    }

    /// <summary>
    /// Takes up to <paramref name="pages"/>.Length blocks of <paramref name="order"/> under one hold of
    /// the zone lock, each subject to the same checks as <see cref="TryAllocate"/> (the cache layer's
    /// refill, like the kernel's rmqueue_bulk).
    /// </summary>
    /// <returns>How many head page indices were written to <paramref name="pages"/>.</returns>
    public int AllocateBatch(int order, PageAllocFlags flags, Span<int> pages, PageState state = PageState.Allocated)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, PageHeap.MaxOrder);
        if (pages.IsEmpty)
            return 0;
        int purgeWaits = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            int taken = 0;
            bool belowLow;
            bool purgeOut;
            lock (_lock)
            {
                // Eligibility re-checked under the lock: the zonelist that led here may be torn.
                if (!Admits(flags) || _adminDown)
                    return 0;
                // Pages a purge batch has out are free, only briefly off the lists (see the remarks).
                long free = _buddy.FreePages + _purgingPages;
                while (taken < pages.Length && free - (1L << order) >= _watermarks.Min)
                {
                    int page = _buddy.TryAllocate(order, state);
                    if (page == PageDescriptor.NoPage)
                        break;
                    if (_heap.Blocks.State(_heap.Layout.BlockOfPage(page)) == BlockState.Isolated)
                        _isolatedServes++; // must never happen: isolated pages are not on these lists
                    pages[taken++] = page;
                    free -= 1L << order;
                }
                _allocations += taken;
                belowLow = free < _watermarks.Low;
                purgeOut = _purgingPages > 0;
            }
            if (taken > 0)
            {
                if (belowLow && CanGrow)
                    _heap.TryGrow(this, 0);
                return taken;
            }
            if (purgeOut && purgeWaits++ < MaxPurgeWaits)
            {
                // The pages may be in the batch: wait for it rather than fail or grow for nothing.
                WaitForPurgeBatch();
                attempt--;
                continue;
            }
            if (!_heap.TryGrow(this, 1L << order, order))
                return 0;
        }
        return 0;
    }

    /// <summary>
    /// Whether growth is still wanted: free below low, or too little above min for <paramref name="neededPages"/>,
    /// or (with <paramref name="order"/> &gt;= 0) no free block of that order or larger: plenty of free pages
    /// too fragmented to serve the request. The kernel compacts then; we have unused blocks to online
    /// instead, and a request the zone could serve after growing must not fail (a spurious failure).
    /// </summary>
    internal bool NeedsGrowth(long neededPages, int order = -1)
    {
        lock (_lock)
        {
            long free = _buddy.FreePages + _purgingPages;
            if (free < _watermarks.Low || free - neededPages < _watermarks.Min)
                return true;
            if (order < 0 || _purgingPages > 0)
                return false; // a purge batch out may hold the block: the caller waits for it instead
            for (int o = order; o <= _buddy.MaxOrder; o++)
            {
                if (_buddy.FreeBlocks(o) > 0)
                    return false;
            }
            return true;
        }
    }

    /// <summary>
    /// Returns an allocated block after checking, under the lock, that <paramref name="page"/> heads an
    /// allocated block of exactly <paramref name="order"/>; pages of an Isolated block go to the
    /// isolated lists.
    /// </summary>
    /// <exception cref="InvalidOperationException">Interior page, double free or wrong order; nothing changed.</exception>
    public void Free(int page, int order, void* address)
    {
        lock (_lock)
        {
            FreeLocked(page, order, address);
        }
        if (_heap.PurgesAtFree)
            Purge(all: true, 0, 0);
    }

    /// <summary>Frees several blocks of <paramref name="order"/> under one hold of the lock (the cache layer's drain).</summary>
    /// <exception cref="InvalidOperationException">A page is not an allocated head of that order; the earlier ones were freed.</exception>
    public void FreeBatch(ReadOnlySpan<int> pages, int order)
    {
        lock (_lock)
        {
            foreach (int page in pages)
                FreeLocked(page, order, _heap.Layout.AddressOfPage(page));
        }
        if (_heap.PurgesAtFree)
            Purge(all: true, 0, 0);
    }

    /// <summary>
    /// Frees the run [<paramref name="firstPage"/>, <paramref name="firstPage"/> + <paramref name="pageCount"/>)
    /// of allocated pages as the aligned buddy blocks it decomposes into, under one hold of the lock
    /// (the kernel's free_pages_exact): the tail of a block a large allocation did not need, or a whole
    /// large run. The run lies inside one allocated block or run of this zone, so inside one memory block.
    /// </summary>
    /// <remarks>
    /// With <paramref name="expectedFlags"/> non-zero, the run's head must be <see cref="PageState.Allocated"/>
    /// with those <see cref="PageDescriptor.Flags"/> and <see cref="PageDescriptor.Owner"/> ==
    /// <paramref name="pageCount"/>, checked under the lock, so of two racing frees of one run exactly
    /// one passes; the head's flags and owner are cleared as it is freed. With zero, the run is the
    /// unneeded tail of a block just allocated: its pieces go on the merge-likely lists (see
    /// <see cref="BuddyAllocator"/>), so they are still free when the live part is freed and merges.
    /// </remarks>
    /// <returns>False when the head check failed; nothing changed.</returns>
    internal bool TryFreeRun(int firstPage, int pageCount, byte expectedFlags)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageCount);
        lock (_lock)
        {
            ref PageDescriptor head = ref _heap.Descriptor(firstPage);
            if (expectedFlags != 0
                && (head.State != PageState.Allocated || head.Flags != expectedFlags || head.Owner != (uint)pageCount))
            {
                return false;
            }

            head.Flags = 0;
            head.Owner = 0;
            bool isolated = _heap.Blocks.State(_heap.Layout.BlockOfPage(firstPage)) == BlockState.Isolated;
            bool tailOfLiveRun = expectedFlags == 0;
            int page = firstPage, end = firstPage + pageCount;
            while (page < end)
            {
                int order = PageHeap.MaxOrder;
                while (order > 0 && ((page & ((1 << order) - 1)) != 0 || page + (1 << order) > end))
                    order--;
                _buddy.Free(page, order, isolated, _heap.PurgeClockMs, mergeLikely: tailOfLiveRun);
                page += 1 << order;
            }
            _frees++;
            return true;
        }
    }

    private void FreeLocked(int page, int order, void* address)
    {
        ref PageDescriptor d = ref _heap.Descriptor(page);
        if (d.State is PageState.Free or PageState.Isolated or PageState.Purging)
            PageThrowHelper.ThrowBadFree(address, order, "the page is already free (double free)");
        if (d.State == PageState.None)
            PageThrowHelper.ThrowBadFree(address, order, "not the head of an allocated block (an interior page, or freed already)");
        if (d.Order != order)
            PageThrowHelper.ThrowBadFree(address, order, $"wrong order: the block was allocated with order {d.Order}");
        bool isolated = _heap.Blocks.State(_heap.Layout.BlockOfPage(page)) == BlockState.Isolated;
        _buddy.Free(page, order, isolated, _heap.PurgeClockMs);
        _frees++;
    }

    /*
     * Purging (see the class remarks for the race with allocation and free). Batches of at most
     * PurgeBatchBlocks blocks and PurgeBatchPages pages leave the lists at a time, so an allocation
     * never waits long and the lock is held only for list surgery; the syscalls run unlocked.
     */

    /// <summary>
    /// Returns dirty free pages to the OS: every dirty block when <paramref name="all"/> (trim, or
    /// decay 0), else those freed at least <paramref name="decayMs"/> before <paramref name="nowMs"/>
    /// on the purge clock. Isolated free pages are left alone: they are decommitted when their
    /// block goes offline. A failed madvise puts its block back dirty and ends the call.
    /// </summary>
    /// <returns>Pages purged.</returns>
    internal long Purge(bool all, uint nowMs, int decayMs)
    {
        // A tick skips a zone with nothing dirty without taking its lock (an idle heap costs the
        // purger no lock traffic). A racy read: a stale zero only defers a block to the next tick.
        // Trim and decay 0 always look under the lock, so they never miss a free that preceded them.
        if (!all && _buddy.DirtyPages == 0)
            return 0;
        Span<int> batch = stackalloc int[PurgeBatchBlocks];
        Span<bool> done = stackalloc bool[PurgeBatchBlocks];
        long purged = 0;
        while (true)
        {
            int count;
            lock (_lock)
            {
                count = _buddy.TakeForPurge(batch, PurgeBatchPages, all, nowMs, decayMs);
                for (int i = 0; i < count; i++)
                    _purgingPages += 1L << _heap.Descriptor(batch[i]).Order;
            }
            if (count == 0)
                return purged;

            // Unlocked: the blocks say Purging, so nobody else reads or writes their pages now.
            bool failed = false;
            for (int i = 0; i < count; i++)
            {
                done[i] = _heap.TryPurgeBlock(batch[i], _heap.Descriptor(batch[i]).Order);
                failed |= !done[i];
            }

            lock (_lock)
            {
                for (int i = 0; i < count; i++)
                {
                    int page = batch[i];
                    long pages = 1L << _heap.Descriptor(page).Order;
                    bool isolated = _heap.Blocks.State(_heap.Layout.BlockOfPage(page)) == BlockState.Isolated;
                    _buddy.ReturnPurged(page, isolated, done[i]);
                    if (done[i])
                    {
                        _purgedPages += pages;
                        _purges++;
                        purged += pages;
                    }
                    else
                    {
                        _purgeFailures++;
                    }
                    _purgingPages -= pages;
                }
            }
            if (failed)
                return purged; // the OS refused: do not spin on blocks that keep coming back dirty
        }
    }

    // An allocation found the lists empty while a purge batch was out: the batch comes back after
    // at most PurgeBatchBlocks madvise calls, made without any lock, so this wait always ends.
    private void WaitForPurgeBatch()
    {
        SpinWait spin = default;
        // Acquire: pairs with the purger's lock release after it put the batch back; a stale non-zero
        // value only costs one more spin, the retry under the lock is what counts.
        while (Volatile.Read(ref _purgingPages) > 0)
            spin.SpinOnce(sleep1Threshold: 20);
    }

    /// <summary>
    /// Finishes an online: under the lock, flips the block Onlining -&gt; Online, puts its pages on the
    /// free lists and recomputes the watermarks for the new managed size.
    /// </summary>
    internal void AddOnlinedBlock(int block)
    {
        lock (_lock)
        {
            bool changed = _heap.Blocks.TryChange(block,
                MemoryBlockTable.Encode(BlockState.Onlining, Type), MemoryBlockTable.Encode(BlockState.Online, Type));
            Debug.Assert(changed, "only the claimer of an Onlining block finishes it");
            _buddy.AddFreeRange(_heap.Layout.FirstPageOfBlock(block), _heap.Layout.PagesPerBlock, isolated: false);
            _managedPages += _heap.Layout.PagesPerBlock;
            _onlineBlocks++;
            RecomputeWatermarksLocked();
        }
    }

    /// <summary>
    /// Isolates a block of this zone: CAS Online -&gt; Isolated and move its free pages to the isolated
    /// lists, both under the lock, so no allocation can slip between the two.
    /// </summary>
    /// <returns>False when the block is not an Online block of this zone.</returns>
    internal bool TryIsolateBlock(int block)
    {
        lock (_lock)
        {
            byte online = MemoryBlockTable.Encode(BlockState.Online, Type);
            if (!_heap.Blocks.TryChange(block, online, MemoryBlockTable.Encode(BlockState.Isolated, Type)))
                return false;
            _buddy.MoveRange(_heap.Layout.FirstPageOfBlock(block), _heap.Layout.PagesPerBlock, toIsolated: true);
            _onlineBlocks--;
            _isolatedBlocks++;
            return true;
        }
    }

    /// <summary>Undoes <see cref="TryIsolateBlock"/>: CAS Isolated -&gt; Online and move its free pages back.</summary>
    /// <returns>False when the block is not an Isolated block of this zone.</returns>
    internal bool TryUnisolateBlock(int block)
    {
        lock (_lock)
        {
            byte isolated = MemoryBlockTable.Encode(BlockState.Isolated, Type);
            if (!_heap.Blocks.TryChange(block, isolated, MemoryBlockTable.Encode(BlockState.Online, Type)))
                return false;
            _buddy.MoveRange(_heap.Layout.FirstPageOfBlock(block), _heap.Layout.PagesPerBlock, toIsolated: false);
            _isolatedBlocks--;
            _onlineBlocks++;
            return true;
        }
    }

    /// <summary>Free pages of a block sitting on the isolated lists (all of the block: it can go offline).</summary>
    internal long CountIsolatedFree(int block)
    {
        lock (_lock)
        {
            return _buddy.CountIsolatedFree(_heap.Layout.FirstPageOfBlock(block), _heap.Layout.PagesPerBlock);
        }
    }

    /*
     * The commit of an offline (offline_pages' last step). Race: a free into the block racing the
     * check. Rule: the check that every page of the block is free on the isolated lists, the removal
     * of those pages and the CAS Isolated -> Offline all happen under this lock, which every free of
     * the zone takes; no allocation can take an isolated page, so once the block is all free it stays so.
     */
    /// <summary>
    /// Takes an Isolated block of this zone out of the zone if every one of its pages is free on the
    /// isolated lists: removes them, marks the block Offline and shrinks the managed size.
    /// </summary>
    /// <returns>False (nothing changed) when some page is still in use or the block is not Isolated here.</returns>
    internal bool TryOfflineIsolatedBlock(int block)
    {
        // A purge batch taken before the block was isolated may hold some of its free pages; the
        // purger never takes isolated pages, so once the batches out now are back, all of them are
        // on the isolated lists (else the offline would count them as in use and answer Busy).
        WaitForPurgeBatch();
        lock (_lock)
        {
            int first = _heap.Layout.FirstPageOfBlock(block);
            int pages = _heap.Layout.PagesPerBlock;
            if (_heap.Blocks.Read(block) != MemoryBlockTable.Encode(BlockState.Isolated, Type)
                || _buddy.CountIsolatedFree(first, pages) != pages)
                return false;
            long removed = _buddy.RemoveIsolatedRange(first, pages);
            Debug.Assert(removed == pages, "every page of the block was free");
            bool changed = _heap.Blocks.TryChange(block, MemoryBlockTable.Encode(BlockState.Isolated, Type), MemoryBlockTable.Encode(BlockState.Offline, Type));
            Debug.Assert(changed, "Isolated blocks change only under this lock");
            _managedPages -= pages;
            _isolatedBlocks--;
            RecomputeWatermarksLocked();
            return true;
        }
    }

    /// <summary>Sets the zone's watermarks (an operator's choice, kept across growth until the next call).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 0 &lt;= min &lt;= low &lt;= high.</exception>
    public void SetWatermarks(Watermarks watermarks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(watermarks.Min, nameof(watermarks));
        ArgumentOutOfRangeException.ThrowIfLessThan(watermarks.Low, watermarks.Min, nameof(watermarks));
        ArgumentOutOfRangeException.ThrowIfLessThan(watermarks.High, watermarks.Low, nameof(watermarks));
        lock (_lock)
        {
            _watermarks = watermarks;
            _manualWatermarks = true;
        }
    }

    /// <summary>Counts a successful growth (called under the node's growth lock).</summary>
    internal void CountGrowth(bool succeeded)
    {
        // Atomic adds: stats read these without the growth lock.
        if (succeeded)
            Interlocked.Increment(ref _growths);
        else
            Interlocked.Increment(ref _growthFailures);
    }

    /// <summary>The zone now, read under its lock.</summary>
    public ZoneStats Snapshot()
    {
        lock (_lock)
        {
            // The growth counters are bumped under the growth lock, not this one: Interlocked.Read
            // gives whole 64-bit values; nothing else is ordered against them.
            var perOrder = ImmutableArray.CreateBuilder<long>(PageHeap.MaxOrder + 1);
            for (int o = 0; o <= PageHeap.MaxOrder; o++)
                perOrder.Add(_buddy.FreeBlocks(o));
            return new ZoneStats(Node, Type, Index, _buddy.FreePages, _buddy.IsolatedFreePages, _managedPages,
                perOrder.MoveToImmutable(), _watermarks, _onlineBlocks, _isolatedBlocks, MaxBlocks,
                _allocations, _frees, Interlocked.Read(ref _growths), Interlocked.Read(ref _growthFailures),
                _isolatedServes, _adminDown, _goingOffline,
                _buddy.DirtyPages, _purgingPages, _purgedPages, _purges, _purgeFailures);
        }
    }

    private void RecomputeWatermarksLocked()
    {
        if (_manualWatermarks)
            return;
        _watermarks = Watermarks.ForZone(_managedPages);
    }
}
