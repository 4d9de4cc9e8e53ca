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
        for (int attempt = 0; attempt < 3; attempt++)
        {
            int taken = 0;
            bool belowLow;
            lock (_lock)
            {
                // Eligibility re-checked under the lock: the zonelist that led here may be torn.
                if (!Admits(flags) || _adminDown)
                    return 0;
                while (taken < pages.Length && _buddy.FreePages - (1L << order) >= _watermarks.Min)
                {
                    int page = _buddy.TryAllocate(order, state);
                    if (page == PageDescriptor.NoPage)
                        break;
                    if (_heap.Blocks.State(_heap.Layout.BlockOfPage(page)) == BlockState.Isolated)
                        _isolatedServes++; // must never happen: isolated pages are not on these lists
                    pages[taken++] = page;
                }
                _allocations += taken;
                belowLow = _buddy.FreePages < _watermarks.Low;
            }
            if (taken > 0)
            {
                if (belowLow && CanGrow)
                    _heap.TryGrow(this, 0);
                return taken;
            }
            if (!_heap.TryGrow(this, 1L << order))
                return 0;
        }
        return 0;
    }

    /// <summary>Whether growth is still wanted: free below low, or too little above min for <paramref name="neededPages"/>.</summary>
    internal bool NeedsGrowth(long neededPages)
    {
        lock (_lock)
        {
            long free = _buddy.FreePages;
            return free < _watermarks.Low || free - neededPages < _watermarks.Min;
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
    /// one passes; the head's flags and owner are cleared as it is freed.
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
            int page = firstPage, end = firstPage + pageCount;
            while (page < end)
            {
                int order = PageHeap.MaxOrder;
                while (order > 0 && ((page & ((1 << order) - 1)) != 0 || page + (1 << order) > end))
                    order--;
                _buddy.Free(page, order, isolated);
                page += 1 << order;
            }
            _frees++;
            return true;
        }
    }

    private void FreeLocked(int page, int order, void* address)
    {
        ref PageDescriptor d = ref _heap.Descriptor(page);
        if (d.State is PageState.Free or PageState.Isolated)
            PageThrowHelper.ThrowBadFree(address, order, "the page is already free (double free)");
        if (d.State == PageState.None)
            PageThrowHelper.ThrowBadFree(address, order, "not the head of an allocated block (an interior page, or freed already)");
        if (d.Order != order)
            PageThrowHelper.ThrowBadFree(address, order, $"wrong order: the block was allocated with order {d.Order}");
        bool isolated = _heap.Blocks.State(_heap.Layout.BlockOfPage(page)) == BlockState.Isolated;
        _buddy.Free(page, order, isolated);
        _frees++;
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
                _isolatedServes, _adminDown, _goingOffline);
        }
    }

    private void RecomputeWatermarksLocked()
    {
        _watermarks = Watermarks.ForZone(_managedPages);
    }
}
