using System.Collections.Immutable;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Objects;

/// <summary>
/// The malloc layer over one page allocator: small objects (up to 32 KiB) from slabs behind per-CPU
/// caches and per-thread magazines, large allocations (up to the largest buddy block) as page runs,
/// huge ones as their own node-bound mappings. Owns its <see cref="PageAllocator"/>. Thread-safe.
/// </summary>
/// <remarks>
/// <para><b>Three levels</b> for small objects, as the design's Caches section: a thread's magazine
/// per size class (owner-only, no atomics: the fast path is a thread-static load, a table load, the
/// <c>InAllocator</c> store, one <c>Pending</c> load and a pop or push); a per-CPU cache per size class
/// (one <see cref="CpuCacheSet"/> per class, one cache per CPU, taken with one CAS), refilled from and
/// flushed to that class's <see cref="SlabCache"/> in batches; the slabs under a (class, node) lock.</para>
/// <para><b>Node locality.</b> A CPU's caches hold only objects of that CPU's memory node. A magazine
/// holds objects of its thread's home node only: the home is re-derived from the CPU at every refill,
/// on every slow path and every <see cref="HomeCheckInterval"/> fast-path allocations (a fast-path free
/// takes only objects of the magazines' node, so it needs no check), and when it changed the magazines
/// are flushed first. A free of another node's object skips the magazine and
/// goes to a per-CPU cache of that node (one CAS, no lock), so objects always return to their node.</para>
/// <para><b>Bad frees</b> are reported through <see cref="BadFreeAction"/>: not-ours, interior and
/// page-level double frees at once from the page descriptors; a second free into the same magazine at
/// once through a key written into freed objects (glibc tcache's e->key); a double free through two
/// caches when the object reaches its slab (its bitmap bit is already set), reported by the next free,
/// trim or flush on the thread that found it; and under <c>on_bad_free=check</c> every free at once,
/// by an atomic on a bitmap of the objects handed to users. A reported free changes nothing.</para>
/// </remarks>
internal sealed unsafe partial class ObjectHeap : IDisposable
{
    /// <summary>Fast-path allocations between re-checks of the thread's node.</summary>
    public const int HomeCheckInterval = 64;

    /// <summary>The descriptor flags of the head page of a large run (slab pages use 1..class count).</summary>
    public const byte LargeRunFlag = 0xFF;

    /// <summary>The largest allocation served from the buddy allocator (4 MiB): larger ones are mapped.</summary>
    public const int MaxLargeBytes = HeapLayout.PageSize << PageHeap.MaxOrder;

    // Written into every freed small object (its first word, or from 2 KiB up a line chosen by its page:
    // FreeKeyOf) and cleared when it is handed out again:
    // a free that finds it there scans its magazine for a double free (glibc tcache's key). Random per
    // process so user data is unlikely to carry it; a false match only costs the scan.
    private static readonly nuint s_freeKey = (nuint)(ulong)Random.Shared.NextInt64(1L << 32, long.MaxValue) | 1;

    // The block-table byte of an Online block of a Normal zone (slabs only ever live there).
    private const byte OnlineNormalBlock = (byte)BlockState.Online;

    private readonly PageAllocator _pages;
    private readonly PageHeap _heap;
    private readonly NumaTopology _topology;
    private readonly IPlatform _platform;
    private readonly SlabHeap _slabs;
    private readonly CpuCacheSet[] _caches;
    private readonly MagazineRegistry _registry;
    private readonly HugeMappings _huge;
    private readonly Func<bool>? _previousDrainHook;
    private readonly BadFreeAction _onBadFree;
    private readonly bool _check;
    private readonly BindMode _bindMode;

    // The fast paths' constants, in fields so they are loads off this object. The registry id the fast
    // paths accept: the registry's, or -1 under on_bad_free=check, whose every operation is a slow one
    // (ids start at 1, a retired set has 0), so check mode costs the fast path nothing.
    private readonly long _fastPathRegistryId;
    private readonly byte* _base;
    private readonly nuint _sizeBytes;
    private readonly PageDescriptor* _descriptors;
    private readonly byte* _blockStates;
    private readonly int _blockShift;
    private readonly int _nodeShift;
    // The class table and free key again as fields: under NativeAOT a static read on the fast path
    // costs a class-constructor check (a load, a compare, a branch) that a field of this object does not.
    private readonly ObjectClassInfo* _classInfo = ObjectClassTable.Info;
    private readonly ushort* _magazineOffsetOfSize8 = ObjectClassTable.MagazineOffsetOfSize8;
    private readonly nuint _freeKey = s_freeKey;

    // CPU tables (possible CPUs): the memory node a CPU's caches hold; per node a CPU whose caches hold
    // it (-1 when no CPU does: its objects go straight to the slabs); the CPU used for ids out of range.
    private readonly int[] _memoryNodeOfCpu;
    private readonly int[] _cacheCpuOfNode;
    private readonly int _fallbackCpu;

    // Slow-path events per CPU (see CountEvent), EventStride longs apart so CPUs never share a line.
    private const int EventStride = 16;
    private const int MagazineMissEvent = 0, CrossNodeFreeEvent = 1;
    private readonly long[] _events;

    private long _largeAllocations;
    private long _largePages;
    private long _badFrees;
    private int _disposed;
    private readonly Lock _idleLock = new(); // one ReleaseIdle at a time, and none while Dispose runs
    private readonly int[] _idleCounts; // per (class, cpu): the cache's count at the last ReleaseIdle

    /// <summary>Builds the object layer over <paramref name="pages"/>, which this object then owns.</summary>
    /// <param name="pages">The page allocator (heap, zonelists, policies).</param>
    /// <param name="platform">The platform the heap was built on (side tables and huge mappings use it).</param>
    /// <param name="options">The options the heap was built from (bad-free handling, bind mode).</param>
    /// <exception cref="PlatformException">A side table could not be reserved.</exception>
    public ObjectHeap(PageAllocator pages, IPlatform platform, AllocatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(pages);
        ArgumentNullException.ThrowIfNull(platform);
        ArgumentNullException.ThrowIfNull(options);
        _pages = pages;
        _heap = pages.Heap;
        _topology = _heap.Topology;
        _platform = platform;
        _onBadFree = options.OnBadFree;
        _check = options.OnBadFree == BadFreeAction.Check;
        _bindMode = options.Bind == BindPolicy.Strict ? BindMode.Strict : BindMode.Preferred;

        HeapLayout layout = _heap.Layout;
        _base = layout.Base;
        _sizeBytes = layout.SizeBytes;
        _descriptors = _heap.Descriptors;
        _blockStates = _heap.Blocks.Entries;
        _blockShift = layout.BlockShift;
        _nodeShift = layout.BlockShift + layout.BlocksPerNodeShift;

        int cpus = _topology.PossibleCpuCount;
        _memoryNodeOfCpu = new int[cpus];
        _events = new long[(cpus + 1) * EventStride]; // + 1: the first line is no CPU's (the array header shares it)
        _cacheCpuOfNode = new int[_topology.NodeCount];
        Array.Fill(_cacheCpuOfNode, -1);
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            int node = _topology.MemoryNodeFor(_topology.NodeOfCpu(cpu));
            _memoryNodeOfCpu[cpu] = node;
            if (_cacheCpuOfNode[node] < 0)
                _cacheCpuOfNode[node] = cpu;
        }
        // NodeOfCpu maps ids out of range to node 0: use a CPU whose caches hold node 0's memory node.
        _fallbackCpu = Math.Max(_cacheCpuOfNode[_topology.MemoryNodeFor(0)], 0);

        _slabs = new SlabHeap(pages, platform, _check);
        _huge = new HugeMappings(platform);
        int classes = ObjectClassTable.Count;
        _caches = new CpuCacheSet[classes];
        var capacities = new int[classes];
        try
        {
            for (int c = 0; c < classes; c++)
            {
                int batch = ObjectClassTable.BatchOf(c);
                _caches[c] = new CpuCacheSet(_slabs.Class(c), _memoryNodeOfCpu, ObjectClassTable.CpuCacheHighOf(c), batch);
                capacities[c] = ObjectClassTable.MagazineCapacityOf(c);
            }
            _registry = new MagazineRegistry(_caches, capacities);
        }
        catch
        {
            foreach (CpuCacheSet? caches in _caches)
                caches?.Dispose();
            _huge.Dispose();
            _slabs.Dispose();
            throw;
        }
        Debug.Assert(MagazineSet.StrideBytes(capacities.Max()) == ObjectClassTable.MagazineStrideBytes, "the class table's magazine offsets match the sets");
        _fastPathRegistryId = _check ? -1 : _registry.Id;

        // Before a page allocation fails for good, the zonelist walk also empties the object caches
        // and gives empty slabs back (after whatever hook was there).
        _previousDrainHook = pages.DrainCachesBeforeFailing;
        Func<bool>? previous = _previousDrainHook;
        pages.DrainCachesBeforeFailing = () => (previous?.Invoke() ?? false) | DrainForMemory();
        _idleCounts = new int[_caches.Length * cpus];
        pages.Heap.BeforePurgeTick = () => ReleaseIdle();
    }

    /// <summary>The page allocator underneath.</summary>
    public PageAllocator Pages => _pages;

    /// <summary>The slabs.</summary>
    public SlabHeap Slabs => _slabs;

    /// <summary>The magazines' registry (protocol counters, reaping).</summary>
    public MagazineRegistry Registry => _registry;

    /// <summary>
    /// Bytes of native memory the object layer takes besides the objects: slab metadata tables,
    /// per-CPU caches, magazine sets and the class tables; racy.
    /// </summary>
    public long MetadataBytes
    {
        get
        {
            long bytes = _slabs.MetadataBytes + _registry.MetadataBytes
                + ((long)ObjectClassTable.Count * sizeof(ObjectClassInfo)) + (((SizeClasses.MaxSmallSize >> 3) + 1) * sizeof(ushort));
            foreach (CpuCacheSet caches in _caches)
                bytes += caches.MetadataBytes;
            return bytes;
        }
    }

    /// <summary>The topology.</summary>
    public NumaTopology Topology => _topology;

    /// <summary>The per-CPU caches of a size class.</summary>
    public CpuCacheSet CpuCaches(int sizeClass) => _caches[sizeClass];

    /// <summary>Bad frees reported (not counting double frees found at a slab, see <see cref="SlabHeap.DoubleFrees"/>).</summary>
    public long BadFrees => Interlocked.Read(ref _badFrees);

    /// <summary>
    /// Empties every thread's magazines (the deferred-work protocol: owners outside the allocator are
    /// drained by this thread, owners inside drain themselves at their exit) and every per-CPU object
    /// cache (remotely, under their state words) into the slabs. For hot-remove: run it after the
    /// blocks are isolated, then <see cref="ReleaseEmptySlabs"/>.
    /// </summary>
    /// <param name="timeoutMs">How long to wait for owners inside the allocator; negative = forever.</param>
    /// <returns>True when every magazine was drained within the timeout (the per-CPU caches are drained either way).</returns>
    internal bool DrainCaches(int timeoutMs = Timeout.Infinite)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _registry.DrainAll(MagazineRegistry.DrainAllWork, timeoutMs);
    }

    /// <summary>
    /// Gives every empty slab whose memory block passes <paramref name="blockFilter"/> back to its zone
    /// (pages of isolated blocks land on the zone's isolated lists). For hot-remove, after
    /// <see cref="DrainCaches"/>; slabs that still hold live objects stay (the offline then reports Busy).
    /// </summary>
    /// <returns>Pages given back.</returns>
    internal long ReleaseEmptySlabs(Func<int, bool> blockFilter)
    {
        ArgumentNullException.ThrowIfNull(blockFilter);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _slabs.ReleaseEmpty(blockFilter);
    }

    /// <summary>
    /// Flushes the calling thread's magazines, reaps the magazines of exited threads, drains every
    /// per-CPU object cache and gives every empty slab back to its zone. Other live threads' magazines
    /// are left alone (see <see cref="DrainCaches"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">A double free was found when its object reached its slab (report mode).</exception>
    public void Trim()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        MagazineSet* set = _registry.Current;
        using (MagazineScope scope = MagazineSet.EnterScope(set))
        {
            if (!scope.Bypass)
                FlushAllMagazines(set);
        }
        _registry.Reap();
        foreach (CpuCacheSet caches in _caches)
            caches.DrainAll();
        _slabs.ReleaseEmpty(null);
        ReportDeferred();
    }

    /// <summary>
    /// The purger's step before each tick (about decay_ms / 8): flushes the magazines of exited
    /// threads, drains each per-CPU cache whose count did not change since the previous step (its CPU
    /// stopped using the class), and, when either gave anything back, releases every empty slab. So
    /// what a spike leaves parked becomes dirty pages, which the decay then purges; before, an exited
    /// thread's magazines and an idle CPU's caches held their objects until a trim (after the mixed
    /// trace: 4.7 MiB in caches and 6 MiB free in slabs, beside a live set of zero).
    /// </summary>
    /// <returns>Objects given back from caches (reaped magazines not counted).</returns>
    internal long ReleaseIdle()
    {
        lock (_idleLock)
        {
            if (_disposed != 0)
                return 0;
            bool gaveBack = _registry.Reap() > 0;
            long drained = 0;
            int cpus = _memoryNodeOfCpu.Length;
            for (int c = 0; c < _caches.Length; c++)
            {
                for (int cpu = 0; cpu < cpus; cpu++)
                {
                    ref int last = ref _idleCounts[(c * cpus) + cpu];
                    int count = _caches[c].CountAt(cpu);
                    // Unchanged across a whole tick: idle (a busy CPU that pushed and popped exactly as
                    // often is drained too, which costs it one refill).
                    if (count > 0 && count == last)
                    {
                        drained += _caches[c].Drain(cpu);
                        count = _caches[c].CountAt(cpu);
                    }
                    last = count;
                }
            }
            if (gaveBack || drained > 0)
                _slabs.ReleaseEmpty(null);
            return drained;
        }
    }

    /// <summary>Flushes the calling thread's magazines and forgets them (a thread about to exit).</summary>
    /// <exception cref="InvalidOperationException">A double free was found when its object reached its slab (report mode).</exception>
    public void FlushCurrentThread()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _registry.FlushCurrentThread();
        ReportDeferred();
    }

    /// <summary>Objects in every per-CPU cache and magazine now (racy: a statistic).</summary>
    public long CachedObjects()
    {
        long total = 0;
        for (int c = 0; c < _caches.Length; c++)
            total += _caches[c].TotalCount + _registry.CountMagazineItems(c);
        return total;
    }

    /// <summary>A snapshot of the object layer's counters (racy across classes, consistent per (class, node)).</summary>
    public ObjectHeapStats Snapshot()
    {
        var classes = ImmutableArray.CreateBuilder<SizeClassStats>(_caches.Length);
        for (int c = 0; c < _caches.Length; c++)
        {
            SlabCache cache = _slabs.Class(c);
            long slabs = 0, free = 0;
            for (int node = 0; node < _slabs.NodeCount; node++)
            {
                SlabCacheNode n = cache.NodeAt(node);
                lock (n.Lock)
                {
                    slabs += n.Slabs;
                    free += n.FreeObjects;
                }
            }
            long cached = _caches[c].TotalCount + _registry.CountMagazineItems(c);
            classes.Add(new SizeClassStats(c, cache.ObjectSize, cache.ObjectsPerSlab, slabs, slabs << cache.SlabOrder,
                (slabs * cache.ObjectsPerSlab) - free - cached, free, cached));
        }
        return new ObjectHeapStats(classes.MoveToImmutable(), Interlocked.Read(ref _largeAllocations), Interlocked.Read(ref _largePages),
            _huge.Count, _huge.Bytes, BadFrees, _slabs.DoubleFrees, _slabs.SlabsCarved, _slabs.SlabsReleased,
            MagazineMisses, CrossNodeFrees);
    }

    // Counted on slow paths only (the fast paths stay free of shared writes). Atomic: two threads can
    // share a CPU id between preemptions; the line is that CPU's, so the add is uncontended.
    private void CountEvent(int cpu, int slot) => Interlocked.Increment(ref _events[((cpu + 1) * EventStride) + slot]);

    /// <summary>Small allocations that found their magazine empty (racy sum over CPUs).</summary>
    public long MagazineMisses => SumEvents(MagazineMissEvent);

    /// <summary>Small objects freed on a CPU of another node than theirs (racy sum over CPUs).</summary>
    public long CrossNodeFrees => SumEvents(CrossNodeFreeEvent);

    private long SumEvents(int slot)
    {
        long total = 0;
        for (int i = EventStride + slot; i < _events.Length; i += EventStride)
            total += Interlocked.Read(ref _events[i]);
        return total;
    }

    /// <summary>
    /// Flushes every magazine, then gives everything back: huge mappings, side tables, the page heap.
    /// No other thread may use the heap any more.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) // once only, even if two threads race
            return;
        _pages.Heap.BeforePurgeTick = null;
        lock (_idleLock)
        {
            // Waits for a ReleaseIdle in progress; later ones see _disposed.
        }
        _pages.DrainCachesBeforeFailing = _previousDrainHook;
        _registry.Dispose();
        foreach (CpuCacheSet caches in _caches)
            caches.Dispose();
        _huge.Dispose();
        _slabs.Dispose();
        _pages.Dispose();
    }

    /// <summary>
    /// The allocation slow path's last resort (and the page walk's hook): drains every cache and gives
    /// empty slabs back, so memory parked for reuse can serve the request that is about to fail.
    /// Call it holding no slab lock and no cache word; from inside the allocator only at the outermost frame.
    /// </summary>
    /// <returns>True when anything came back.</returns>
    private bool DrainForMemory()
    {
        if (_disposed != 0)
            return false;
        long cached = CachedObjects();
        _registry.DrainAll(MagazineRegistry.DrainAllWork, timeoutMs: 1000);
        long pages = _slabs.ReleaseEmpty(null);
        return cached > 0 || pages > 0;
    }

    // The owner, inside and not bypassing: every magazine back to the slabs.
    private void FlushAllMagazines(MagazineSet* set)
    {
        for (int c = 0; c < _caches.Length; c++)
        {
            if (MagazineSet.CountOf(set, c) != 0)
                _registry.FlushMagazine(set, c);
        }
    }

    // The calling thread's CPU as an index into the per-CPU tables (ids out of range fold to one that
    // serves node 0's memory node, the node NodeOfCpu gives them).
    private int CurrentCpu()
    {
        int cpu = PlatformCpu.Current();
        return (uint)cpu < (uint)_memoryNodeOfCpu.Length ? cpu : _fallbackCpu;
    }

    // A CPU whose caches hold node's objects: the calling thread's own when it serves that node, else
    // the node's first; -1 when no CPU serves the node.
    private int CacheCpuFor(int node, int cpu) => _memoryNodeOfCpu[cpu] == node ? cpu : _cacheCpuOfNode[node];

    /*
     * Re-deriving the home node (owner, inside, not bypassing). Race: none with other threads: the home
     * and the countdown are owner-only. The rule that keeps what the fast path hands out node-local: a
     * magazine holds objects of its home only, so a changed home first flushes every magazine to the
     * slabs (whose lists are per node) and only then adopts the new node.
     */
    private int RefreshHome(MagazineSet* set, int cpu)
    {
        int node = _memoryNodeOfCpu[cpu];
        set->OpsUntilHomeCheck = HomeCheckInterval;
        int old = set->HomeKindPlusOne - 1;
        if (old != node)
        {
            if (old >= 0)
                FlushAllMagazines(set);
            set->HomeKindPlusOne = node + 1;
        }
        return node;
    }

    // Reports a double free that a slab found on this thread earlier (after the work that found it).
    private void ReportDeferred()
    {
        if (_slabs.TakeReport(out nint address))
            ReportBadFree((void*)address, "it was already free when it reached its slab: a double free through two threads' caches (found by a later flush)", count: false);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ReportBadFree(void* p, string what, bool count = true)
    {
        if (count)
            Interlocked.Increment(ref _badFrees); // Atomic only: a statistic.
        ObjectThrowHelper.ReportBadFree(p, what, _onBadFree);
    }
}

/// <summary>One size class at the moment of a snapshot.</summary>
/// <param name="Class">The class index.</param>
/// <param name="ObjectSize">Its object size in bytes.</param>
/// <param name="ObjectsPerSlab">Objects in one slab.</param>
/// <param name="Slabs">Slabs held, on every node.</param>
/// <param name="SlabPages">Pages those slabs take.</param>
/// <param name="ObjectsInUse">Objects with users (slab objects neither free in a slab nor cached; racy).</param>
/// <param name="ObjectsFreeInSlabs">Objects free inside the slabs.</param>
/// <param name="ObjectsCached">Objects in per-CPU caches and magazines (racy).</param>
internal sealed record SizeClassStats(int Class, int ObjectSize, int ObjectsPerSlab, long Slabs, long SlabPages,
    long ObjectsInUse, long ObjectsFreeInSlabs, long ObjectsCached);

/// <summary>The object layer at the moment of a snapshot.</summary>
/// <param name="Classes">Every size class.</param>
/// <param name="LargeAllocations">Live large allocations (page runs).</param>
/// <param name="LargePages">Pages they take.</param>
/// <param name="HugeMappings">Live huge mappings.</param>
/// <param name="HugeBytes">Bytes they map.</param>
/// <param name="BadFrees">Bad frees reported at once.</param>
/// <param name="SlabDoubleFrees">Double frees found when the object reached its slab.</param>
/// <param name="SlabsCarved">Slabs carved so far.</param>
/// <param name="SlabsReleased">Slabs given back so far.</param>
/// <param name="MagazineMisses">Small allocations that found the thread's magazine of their class empty and refilled it.</param>
/// <param name="CrossNodeFrees">Small objects freed on a CPU of another node than theirs (they go to a per-CPU cache of their node).</param>
internal sealed record ObjectHeapStats(ImmutableArray<SizeClassStats> Classes, long LargeAllocations, long LargePages,
    int HugeMappings, long HugeBytes, long BadFrees, long SlabDoubleFrees, long SlabsCarved, long SlabsReleased,
    long MagazineMisses, long CrossNodeFrees);
