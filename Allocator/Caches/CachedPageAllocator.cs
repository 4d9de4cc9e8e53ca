using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Zonelists;

namespace Numalloc.Caches;

/// <summary>
/// The page API with its caches: order-0 pages for the calling CPU's node come from the thread's
/// magazine, else a per-CPU cache of that node's zone (one CAS), else the zone in a batch; all
/// other requests, and any the caches cannot serve, take the zonelist walk of
/// <see cref="PageAllocator"/>, which drains every cache before it reports failure.
/// </summary>
/// <remarks>
/// There is one cache kind per zone, so a magazine or per-CPU cache only ever holds pages of one
/// zone and a page freed on another node goes back into its own zone's caches. A page in a cache
/// is <see cref="PageState.Cached"/> in its descriptor, so freeing it again is caught at once.
/// Caches are drained through <see cref="DrainAll"/> (hot-remove, the allocation slow path).
/// </remarks>
internal sealed unsafe class CachedPageAllocator : IDisposable
{
    /// <summary>Default per-CPU cache size and batch (pages), like the kernel's pcp high/batch.</summary>
    public const int DefaultHigh = 128, DefaultBatch = 32, DefaultMagazineCapacity = 64;

    private readonly PageAllocator _pages;
    private readonly PageHeap _heap;
    private readonly CpuCacheSet[] _kinds;
    private readonly MagazineRegistry _registry;
    private readonly bool _useMagazines;
    private readonly uint _drainWork;
    // cpu -> cache kind of the Normal zone of the node that serves it locally (numa_mem_id); the
    // Movable zone's kind is the next one. Out-of-range CPU ids use entry 0: a hint only.
    private readonly int[] _normalKindOfCpu;
    // The heap's layout, copied into fields so the fast paths do arithmetic on locals.
    private readonly byte* _base;
    private readonly nuint _sizeBytes;
    private readonly int _pagesPerBlockShift;
    private readonly int _blocksPerNodeShift;
    private readonly PageDescriptor* _descriptors;
    private readonly MemoryBlockTable _blocks;

    /// <summary>Fast-path operations between re-checks of the thread's CPU (the design's "every few dozen").</summary>
    internal const int HomeCheckInterval = 64;

    /// <summary>Puts caches in front of <paramref name="pages"/> (which this object then owns).</summary>
    /// <param name="pages">The page allocator.</param>
    /// <param name="useMagazines">False: per-CPU caches only (for measurements and tests).</param>
    /// <param name="high">Per-CPU cache high mark in pages.</param>
    /// <param name="batch">Pages moved per refill or flush.</param>
    /// <param name="magazineCapacity">Pages a thread's magazine holds per zone.</param>
    public CachedPageAllocator(PageAllocator pages, bool useMagazines = true, int high = DefaultHigh, int batch = DefaultBatch, int magazineCapacity = DefaultMagazineCapacity)
    {
        ArgumentNullException.ThrowIfNull(pages);
        _pages = pages;
        _heap = pages.Heap;
        _useMagazines = useMagazines;
        _base = _heap.Layout.Base;
        _sizeBytes = _heap.Layout.SizeBytes;
        _pagesPerBlockShift = _heap.Layout.PagesPerBlockShift;
        _blocksPerNodeShift = _heap.Layout.BlocksPerNodeShift;
        _descriptors = _heap.Descriptors;
        _blocks = _heap.Blocks;
        var topology = _heap.Topology;
        int cpus = topology.PossibleCpuCount;
        var cpuToNode = new int[cpus];
        _normalKindOfCpu = new int[cpus];
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            cpuToNode[cpu] = topology.NodeOfCpu(cpu);
            _normalKindOfCpu[cpu] = _heap.ZoneOf(topology.MemoryNodeFor(cpuToNode[cpu]), ZoneType.Normal).Index;
        }

        ReadOnlySpan<Zone> zones = _heap.Zones;
        _kinds = new CpuCacheSet[zones.Length];
        for (int i = 0; i < zones.Length; i++)
        {
            Debug.Assert(zones[i].Index == i);
            _kinds[i] = new CpuCacheSet(new ZonePageBackend(pages, zones[i]), cpuToNode, high, batch);
        }
        _registry = new MagazineRegistry(_kinds, magazineCapacity);
        _drainWork = _registry.RegisterDrainWork([.. Enumerable.Range(0, _kinds.Length)]);
        pages.DrainCachesBeforeFailing = DrainAll;
    }

    /// <summary>The page allocator behind the caches.</summary>
    public PageAllocator Pages => _pages;

    /// <summary>The magazines' registry (drain counters, reaping).</summary>
    public MagazineRegistry Registry => _registry;

    /// <summary>The per-CPU caches' counters summed over every zone kind (benchmarks report them per operation).</summary>
    public CpuCacheStats CpuCacheStats()
    {
        CpuCacheStats total = default;
        foreach (CpuCacheSet kind in _kinds)
            total += kind.GetStats();
        return total;
    }

    /// <summary>Bytes of native memory the page caches take (per-CPU caches and magazine sets), racy.</summary>
    public long MetadataBytes
    {
        get
        {
            long bytes = _registry.MetadataBytes;
            foreach (CpuCacheSet kind in _kinds)
                bytes += kind.MetadataBytes;
            return bytes;
        }
    }

    /// <summary>
    /// Allocates 2^<paramref name="order"/> pages: order-0 requests with no explicit node under the
    /// local policy go through the caches, everything else through the zonelist walk.
    /// </summary>
    /// <returns>The first page, or null when no eligible zone could serve (after draining the caches).</returns>
    public void* AllocPages(int order, PageAllocFlags flags = PageAllocFlags.None, int node = -1)
    {
        if (_useMagazines && order == 0 && node < 0 && (flags & ~PageAllocFlags.Movable) == 0 && !PageAllocator.MayHaveThreadPolicy)
        {
            void* page = TryAllocFromMagazine(_registry.Current, flags);
            if (page != null)
                return page;
        }
        return AllocPagesSlow(order, flags, node);
    }

    /// <summary>Frees pages from <see cref="AllocPages"/>; order-0 pages go into the caches.</summary>
    /// <exception cref="InvalidOperationException">Not a live block of that order from this heap (named in the message).</exception>
    public void FreePages(void* p, int order)
    {
        if (order == 0 && (_useMagazines ? TryFreeToMagazine(_registry.Current, p) : TryFreeToCpuCache(PlatformCpu.Current(), p)))
            return;
        FreePagesSlow(p, order);
    }

    /// <summary>
    /// Opens the calling thread's handle on these caches (see <see cref="ThreadPageCache"/>): its
    /// magazine set, or with magazines off its CPU, looked up once instead of on every call.
    /// </summary>
    public ThreadPageCache OpenThreadCache() => new(this, _registry.Current);

    /// <summary>False: per-CPU caches only.</summary>
    internal bool UsesMagazines => _useMagazines;

    /// <summary>
    /// The magazine fast path of an order-0 page for the owner of <paramref name="set"/>: the
    /// InAllocator/Pending protocol, a pop, one descriptor byte; no atomics, no CPU lookup (the home
    /// kind is cached in the set).
    /// </summary>
    /// <returns>The page, or null when the magazine is empty or work is pending on it (take the slow path).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void* TryAllocFromMagazine(MagazineSet* set, PageAllocFlags flags)
    {
        bool hit = false;
        nint item = 0;
        if (!MagazineSet.Enter(set))
            hit = MagazineSet.TryPop(set, Home(set) + MovableOffset(flags), out item);
        MagazineSet.Exit(set);
        return hit ? TakeCached(item) : null;
    }

    /// <summary><see cref="TryAllocFromCpuCache(int, PageAllocFlags)"/> on the CPU cached in the owner's <paramref name="set"/> (no thread-static read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void* TryAllocFromCpuCache(MagazineSet* set, PageAllocFlags flags) => TryAllocFromCpuCache(Home(set), flags);

    /// <summary><see cref="TryFreeToCpuCache(int, void*)"/> on the CPU cached in the owner's <paramref name="set"/> (no thread-static read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryFreeToCpuCache(MagazineSet* set, void* p) => TryFreeToCpuCache(Home(set), p);

    /// <summary>The per-CPU cache fast path of an order-0 page (magazines off): one CAS on <paramref name="cpu"/>'s cache word.</summary>
    /// <returns>The page, or null when the caches and the zone are out of pages for this request.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void* TryAllocFromCpuCache(int cpu, PageAllocFlags flags)
    {
        return _kinds[KindFor(cpu, flags)].TryPopFast(cpu, out nint item) ? TakeCached(item) : null;
    }

    /// <summary>
    /// The magazine fast path of an order-0 free for the owner of <paramref name="set"/>: a live
    /// order-0 page of an online block goes onto its zone's magazine.
    /// </summary>
    /// <returns>False when the page must take the slow path (bad pointer, full magazine, pending work, isolated block).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryFreeToMagazine(MagazineSet* set, void* p)
    {
        if (!IsAllocatedOrder0Page(p, out int page))
            return false;
        ref PageDescriptor d = ref _descriptors[page];

        bool pushed = false;
        if (!MagazineSet.Enter(set))
        {
            // The block state is read inside the scope: see MagazineRegistry.Free for the race.
            int block = page >> _pagesPerBlockShift;
            byte entry = _blocks.Read(block);
            if (MemoryBlockTable.StateOf(entry) == BlockState.Online)
            {
                d.State = PageState.Cached;
                pushed = MagazineSet.TryPush(set, KindOfBlock(block, entry), (nint)p);
                if (!pushed)
                    d.State = PageState.Allocated;
            }
        }
        MagazineSet.Exit(set);
        return pushed;
    }

    /// <summary>The per-CPU cache fast path of an order-0 free (magazines off).</summary>
    /// <returns>False when the pointer is not a live order-0 page of this heap (the slow path reports it).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryFreeToCpuCache(int cpu, void* p)
    {
        if (!IsAllocatedOrder0Page(p, out int page))
            return false;
        ref PageDescriptor d = ref _descriptors[page];
        // The zone bit of a block does not change while one of its pages is allocated, so the kind
        // may be read here; the Online check runs while the cache word is held, as the drain requires.
        int block = page >> _pagesPerBlockShift;
        d.State = PageState.Cached;
        _kinds[KindOfBlock(block, _blocks.Read(block))].PushFast(cpu, (nint)p, new OnlineBlockCheck(_blocks, block));
        return true;
    }

    // A page just taken from a cache is this thread's now: its descriptor byte is owner-only until it is freed.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void* TakeCached(nint item)
    {
        _descriptors[PageOf(item)].State = PageState.Allocated;
        return (void*)item;
    }

    // The fast frees' pointer check: the start of an allocated order-0 page of this heap. Anything else
    // (other orders, cached pages, foreign or interior pointers) goes to the slow path, which reports.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsAllocatedOrder0Page(void* p, out int page)
    {
        nuint offset = (nuint)((byte*)p - _base);
        page = (int)(offset >> HeapLayout.PageShift);
        if (offset >= _sizeBytes || (offset & (HeapLayout.PageSize - 1)) != 0)
            return false;
        ref PageDescriptor d = ref _descriptors[page];
        return d.State == PageState.Allocated && d.Order == 0;
    }

    private void* AllocPagesSlow(int order, PageAllocFlags flags, int node)
    {
        if (order == 0 && node < 0 && (flags & ~PageAllocFlags.Movable) == 0 && !PageAllocator.MayHaveThreadPolicy)
        {
            int cpu = PlatformCpu.Current();
            if (TryPop(KindFor(cpu, flags), cpu, out nint item))
                return TakeCached(item);
        }
        return _pages.AllocPages(order, flags, node);
    }

    private void FreePagesSlow(void* p, int order)
    {
        if (order == 0 && _heap.TryLocate(p, out PageLocation location) && ((nuint)p & (HeapLayout.PageSize - 1)) == 0)
        {
            ref PageDescriptor d = ref _heap.Descriptor(location.Page);
            if (d.State == PageState.Cached)
                PageThrowHelper.ThrowBadFree(p, order, "the page is already free (double free into a cache)");
            if (d.State == PageState.Allocated && d.Order == 0)
            {
                d.State = PageState.Cached;
                Push(_heap.ZoneOf(location.Node, location.Zone).Index, (nint)p);
                return;
            }
        }
        // Everything else (bad pointers included, which it reports) is the zone's.
        _pages.FreePages(p, order);
    }

    // The owner's cached home: with magazines the kind of its CPU's local Normal zone, without them
    // (ThreadPageCache; the set's magazines stay unused) the CPU itself. Re-derived every
    // HomeCheckInterval fast-path operations, so a thread moved elsewhere follows.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(MagazineSet* set)
    {
        int plusOne = set->HomeKindPlusOne;
        if (--set->OpsUntilHomeCheck < 0 || plusOne == 0)
            plusOne = RefreshHome(set);
        return plusOne - 1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int RefreshHome(MagazineSet* set)
    {
        set->OpsUntilHomeCheck = HomeCheckInterval;
        int cpu = PlatformCpu.Current();
        int plusOne = (_useMagazines ? KindFor(cpu, PageAllocFlags.None) : cpu) + 1;
        set->HomeKindPlusOne = plusOne;
        return plusOne;
    }

    // The cache kind of a block's zone: kinds are zone indices, node * 2 + zone type (PageHeap.ZoneOf).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int KindOfBlock(int block, byte entry) =>
        ((block >> _blocksPerNodeShift) * 2) + (int)MemoryBlockTable.ZoneOf(entry);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MovableOffset(PageAllocFlags flags) => (int)(flags & PageAllocFlags.Movable) != 0 ? 1 : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int PageOf(nint item) => (int)((nuint)((byte*)item - _base) >> HeapLayout.PageShift);

    /// <summary>
    /// Empties every per-CPU cache and every thread's magazines back into the zones, exactly once
    /// per target (the deferred-work protocol for magazines of running threads).
    /// </summary>
    /// <returns>True when the caches held anything.</returns>
    public bool DrainAll()
    {
        long before = CachedPages();
        _registry.DrainAll(_drainWork);
        return before > 0;
    }

    /// <summary>
    /// Gives free memory back to the OS now (<c>malloc_trim</c>, <c>na_trim</c>): drains every per-CPU
    /// cache and every thread's magazines into the zones, then purges every free page of every zone
    /// with madvise(MADV_DONTNEED). The entry point for the facade's <c>Trim()</c>.
    /// </summary>
    /// <returns>Bytes purged by this call.</returns>
    public long Trim()
    {
        DrainAll();
        return _pages.Trim();
    }

    /// <summary>Pages sitting in per-CPU caches and magazines now (racy: a statistic).</summary>
    public long CachedPages()
    {
        long total = 0;
        for (int kind = 0; kind < _kinds.Length; kind++)
            total += _kinds[kind].TotalCount + _registry.CountMagazineItems(kind);
        return total;
    }

    /// <summary>Pages of zone <paramref name="zoneIndex"/> sitting in per-CPU caches and in magazines now (racy: a statistic).</summary>
    public (long CpuCaches, long Magazines) CachedPagesOfZone(int zoneIndex) =>
        (_kinds[zoneIndex].TotalCount, _registry.CountMagazineItems(zoneIndex));

    /// <summary>Flushes the calling thread's magazines (a thread about to exit).</summary>
    public void FlushCurrentThread() => _registry.FlushCurrentThread();

    /// <inheritdoc/>
    public void Dispose()
    {
        _pages.DrainCachesBeforeFailing = null;
        _registry.Dispose();
        foreach (CpuCacheSet kind in _kinds)
            kind.Dispose();
        _pages.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int KindFor(int cpu, PageAllocFlags flags)
    {
        int[] table = _normalKindOfCpu;
        int normal = (uint)cpu < (uint)table.Length ? table[cpu] : table[0];
        return normal + ((flags & PageAllocFlags.Movable) != 0 ? 1 : 0);
    }

    // The page caches' cacheable check: the block's table byte, without the backend's interface call.
    private readonly struct OnlineBlockCheck(MemoryBlockTable blocks, int block) : ICacheableCheck
    {
        public bool IsCacheable(nint item) => MemoryBlockTable.StateOf(blocks.Read(block)) == BlockState.Online;
    }

    private bool TryPop(int kind, int cpu, out nint item) =>
        _useMagazines ? _registry.TryAllocate(kind, out item) : _kinds[kind].TryPop(cpu, out item);

    private void Push(int kind, nint item)
    {
        if (_useMagazines)
            _registry.Free(kind, item);
        else
            _kinds[kind].Push(PlatformCpu.Current(), item);
    }
}
