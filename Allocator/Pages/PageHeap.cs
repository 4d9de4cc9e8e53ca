using System.Numerics;
using System.Diagnostics;
using System.Collections.Immutable;
using Numalloc.Platform;
using Numalloc.Topology;

namespace Numalloc.Pages;

/// <summary>
/// The page heap: one contiguous block-aligned reservation sliced into node spans and memory
/// blocks, the block-state table, the page descriptors, and per node its zones. Owns its memory;
/// dispose it to give everything back. Thread-safe.
/// </summary>
/// <remarks>
/// Layout: each node owns a span of <c>2^k</c> blocks, <c>2^k</c> the smallest power of two at or
/// above normal_max + movable_max in blocks, so <c>node = block &gt;&gt; k</c>. Blocks of a span
/// start Absent; <c>normal=</c> and <c>movable=</c> blocks are onlined at construction, the rest by
/// growth or an operator. Descriptors: one reservation for the whole heap, committed one block's
/// worth when that block is first onlined, never decommitted (bad-free checks read them).
/// <para>
/// Purging (decay_ms, like jemalloc's dirty_decay_ms): free pages stay resident ("dirty") for
/// <see cref="DecayMs"/> after their free, then go back to the OS through madvise(MADV_DONTNEED)
/// (<see cref="IPlatform.Purge"/>): they stay mapped and read back as zero. A background thread
/// (<see cref="BackgroundPurger"/>) runs <see cref="PurgeTick()"/> every decay/8 (10 ms to 1 s); it
/// also advances the purge clock that frees stamp their blocks with, so a block is purged between
/// one tick before and one tick after its decay ends. decay_ms = 0 purges at the free, on the freeing
/// thread after the zone lock is released; -1 never purges by time. <see cref="Trim"/> purges every
/// free page now, whatever decay_ms says.
/// </para>
/// </remarks>
internal sealed unsafe class PageHeap : IDisposable
{
    /// <summary>The largest buddy order (4 KiB &lt;&lt; 10 = 4 MiB).</summary>
    public const int MaxOrder = 10;

    private readonly IPlatform _platform;
    private readonly BindMode _bindMode;
    private readonly Zone[] _zones;
    private readonly nuint _descriptorBytes;
    private readonly long _clockOriginMs = Environment.TickCount64;
    private readonly BackgroundPurger? _purger;
    private PageDescriptor* _descriptors;
    private int _disposed;

    // The purge clock: ms since the heap was built on a wrapping 32-bit count, advanced by each
    // purge tick (as jiffies by the timer tick) so that a free stamps its block with one field load.
    private uint _purgeClockMs;

    /// <summary>Reserves the heap for <paramref name="topology"/> and onlines the initial blocks.</summary>
    /// <exception cref="ConfigException">The options are invalid.</exception>
    /// <exception cref="ArgumentException">The heap would exceed 2^31 pages.</exception>
    /// <exception cref="PlatformException">The reservation or an initial online failed (nothing is kept).</exception>
    public PageHeap(AllocatorOptions options, NumaTopology topology, IPlatform platform)
        : this(options, topology, platform, startPurger: true)
    {
    }

    /// <summary>
    /// Reserves the heap; with <paramref name="startPurger"/> false no background thread purges by
    /// decay, and only explicit <see cref="PurgeTick(uint)"/> calls do (deterministic tests).
    /// </summary>
    /// <exception cref="ConfigException">The options are invalid.</exception>
    /// <exception cref="ArgumentException">The heap would exceed 2^31 pages.</exception>
    /// <exception cref="PlatformException">The reservation or an initial online failed (nothing is kept).</exception>
    internal PageHeap(AllocatorOptions options, NumaTopology topology, IPlatform platform, bool startPurger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(platform);
        options.Validate();
        _platform = platform;
        _bindMode = options.Bind == BindPolicy.Strict ? BindMode.Strict : BindMode.Preferred;
        DecayMs = options.DecayMs;
        Topology = topology;

        int normalMax = checked((int)options.BlocksFor(options.NormalMaxBytes));
        int movableMax = checked((int)options.BlocksFor(options.MovableMaxBytes));
        int blocksPerNodeShift = 0;
        while ((1L << blocksPerNodeShift) < normalMax + movableMax)
            blocksPerNodeShift++;
        int blockShift = BitOperations.Log2((ulong)options.BlockBytes);
        long pages = ((long)topology.NodeCount << blocksPerNodeShift) << (blockShift - HeapLayout.PageShift);
        if (pages > int.MaxValue)
            PageThrowHelper.ThrowHeapTooLarge(pages);

        nuint blockBytes = (nuint)1 << blockShift;
        nuint heapBytes = (nuint)topology.NodeCount << (blocksPerNodeShift + blockShift);
        byte* heapBase = (byte*)platform.Reserve(heapBytes, blockBytes);
        Layout = new HeapLayout(heapBase, topology.NodeCount, blockShift, blocksPerNodeShift);
        try
        {
            _descriptorBytes = (nuint)pages * (nuint)sizeof(PageDescriptor);
            _descriptors = (PageDescriptor*)platform.Reserve(_descriptorBytes, 0);
            Blocks = new MemoryBlockTable(Layout.BlockCount);

            var nodes = new NumaNodeState[topology.NodeCount];
            _zones = new Zone[topology.NodeCount * 2];
            for (int n = 0; n < nodes.Length; n++)
            {
                var distances = ImmutableArray.CreateBuilder<int>(nodes.Length);
                for (int m = 0; m < nodes.Length; m++)
                    distances.Add(topology.Distance(n, m));
                nodes[n] = new NumaNodeState(n, topology.Nodes[n].Cpus, distances.MoveToImmutable());
                nodes[n].Zones[(int)ZoneType.Normal] = _zones[n * 2] = new Zone(this, n, ZoneType.Normal, normalMax);
                nodes[n].Zones[(int)ZoneType.Movable] = _zones[(n * 2) + 1] = new Zone(this, n, ZoneType.Movable, movableMax);
            }
            Nodes = [.. nodes];

            int normalStart = (int)options.BlocksFor(options.NormalBytes);
            int movableStart = (int)options.BlocksFor(options.MovableBytes);
            for (int n = 0; n < nodes.Length; n++)
            {
                int block = Layout.FirstBlockOfNode(n);
                for (int i = 0; i < normalStart; i++)
                    OnlineCore(block++, ZoneType.Normal);
                for (int i = 0; i < movableStart; i++)
                    OnlineCore(block++, ZoneType.Movable);
            }
            if (startPurger && DecayMs > 0)
                _purger = new BackgroundPurger(this, BackgroundPurger.IntervalFor(DecayMs));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The heap arithmetic.</summary>
    public HeapLayout Layout { get; }

    /// <summary>How long free pages stay resident before they are purged, in ms: 0 = at the free, -1 = never.</summary>
    public int DecayMs { get; }

    /// <summary>The background purger's tick in ms, or 0 when none runs.</summary>
    public int PurgeIntervalMs => _purger?.IntervalMs ?? 0;

    /// <summary>The purge clock now (ms, wrapping): what a free stamps its block with.</summary>
    internal uint PurgeClockMs => _purgeClockMs; // a plain load: a stale value only makes a stamp one tick older

    /// <summary>decay_ms = 0: the zone purges after every free.</summary>
    internal bool PurgesAtFree => DecayMs == 0;

    /// <summary>The block-state table.</summary>
    public MemoryBlockTable Blocks { get; } = null!;

    /// <summary>The topology the heap was built for.</summary>
    public NumaTopology Topology { get; }

    /// <summary>The nodes, by logical id.</summary>
    public ImmutableArray<NumaNodeState> Nodes { get; }

    /// <summary>The descriptor table (page i's descriptor is element i).</summary>
    public PageDescriptor* Descriptors => _descriptors;

    /// <summary>
    /// Bytes committed for page metadata: the descriptors of every block ever onlined (committed at
    /// its first online, kept after an offline) and the block-state table; racy.
    /// </summary>
    public long MetadataBytes
    {
        get
        {
            long blocks = 0;
            for (int b = 0; b < Layout.BlockCount; b++)
                blocks += MemoryBlockTable.StateOf(Blocks.Read(b)) == BlockState.Absent ? 0 : 1;
            return (blocks * Layout.PagesPerBlock * sizeof(PageDescriptor)) + Layout.BlockCount;
        }
    }

    /// <summary>Every zone, by <see cref="Zone.Index"/> (node * 2 + type).</summary>
    public ReadOnlySpan<Zone> Zones => _zones;

    /// <summary>The zone of <paramref name="type"/> on <paramref name="node"/>.</summary>
    public Zone ZoneOf(int node, ZoneType type) => _zones[(node * 2) + (int)type];

    /// <summary>A page's descriptor.</summary>
    public ref PageDescriptor Descriptor(int page) => ref _descriptors[page];

    /// <summary>The address of a page.</summary>
    public void* AddressOfPage(int page) => Layout.AddressOfPage(page);

    /// <summary>
    /// Where <paramref name="p"/> lies: node, block, zone, block state and page, by subtraction,
    /// shifts and one table load. False when it is not inside the heap's reservation.
    /// </summary>
    public bool TryLocate(void* p, out PageLocation location)
    {
        if (!Layout.Contains(p))
        {
            location = default;
            return false;
        }
        int page = Layout.PageOf(p);
        int block = Layout.BlockOfPage(page);
        byte entry = Blocks.Read(block);
        location = new PageLocation(Layout.NodeOfBlock(block), block, MemoryBlockTable.ZoneOf(entry), MemoryBlockTable.StateOf(entry), page);
        return true;
    }

    /// <summary>
    /// Whether the page at <paramref name="p"/> belongs to an Isolated block (going offline): the
    /// cache layer must not keep such pages and returns them to the zone instead. A racy hint; the
    /// zone re-checks under its lock.
    /// </summary>
    public bool IsIsolated(void* p) =>
        Layout.Contains(p) && Blocks.State(Layout.BlockOfPage(Layout.PageOf(p))) == BlockState.Isolated;

    /// <summary>
    /// Whether a free page at <paramref name="p"/> may be kept in a cache: its block is Online (not
    /// Isolated, going offline). A racy hint; the zone re-checks under its lock when the page comes back.
    /// </summary>
    public bool IsCacheable(void* p) =>
        Layout.Contains(p) && Blocks.State(Layout.BlockOfPage(Layout.PageOf(p))) == BlockState.Online;

    /// <summary>
    /// An operator's online: onlines the Absent (or Offline) block <paramref name="block"/> into the
    /// <paramref name="zone"/> zone of its node. Racing growth or another online for the same block,
    /// exactly one wins (CAS on the table byte).
    /// </summary>
    /// <returns>False when the block was not Absent/Offline, another changer won, or the platform failed (the block is back to its old state).</returns>
    public bool TryOnlineBlock(int block, ZoneType zone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, Layout.BlockCount);
        return TryOnlineCore(block, zone) == OnlineOutcome.Onlined;
    }

    /*
     * Growth. Race: several allocating threads see the same zone below its low watermark, and an
     * operator may online blocks of the same node at the same time. Rule: growers serialize on the
     * node's growth lock and re-check under it that the zone still needs and may grow (a second
     * grower finds the first one's block and stops); the block itself is claimed by CAS
     * Absent -> Onlining, so an operator's online (which does not take the growth lock) can never
     * take the same block. Growth never takes the hotplug lock and never reports Busy.
     */
    internal bool TryGrow(Zone zone, long neededPages, int order = -1)
    {
        NumaNodeState node = Nodes[zone.Node];
        lock (node.GrowthLock)
        {
            if (!zone.CanGrow)
                return false;
            if (!zone.NeedsGrowth(neededPages, order))
                return true;
            int first = Layout.FirstBlockOfNode(zone.Node);
            for (int block = first; block < first + Layout.BlocksPerNode; block++)
            {
                if (Blocks.State(block) != BlockState.Absent)
                    continue;
                switch (TryOnlineCore(block, zone.Type))
                {
                    case OnlineOutcome.Onlined:
                        zone.CountGrowth(succeeded: true);
                        return true;
                    case OnlineOutcome.PlatformFailed:
                        zone.CountGrowth(succeeded: false);
                        return false;
                    default:
                        continue; // an operator took it first
                }
            }
            return false;
        }
    }

    /// <summary>
    /// Frees the block of <paramref name="order"/> at <paramref name="p"/> after checking it is ours,
    /// page-aligned, in an Online or Isolated block, and heads an allocated block of that order.
    /// </summary>
    /// <exception cref="InvalidOperationException">Any check failed; the message names the address and the fault; nothing changed.</exception>
    public void FreePages(void* p, int order)
    {
        if (!Layout.Contains(p))
            PageThrowHelper.ThrowBadFree(p, order, "not a pointer into the page heap");
        if (((nuint)p & (HeapLayout.PageSize - 1)) != 0)
            PageThrowHelper.ThrowBadFree(p, order, "not page-aligned");
        if ((uint)order > MaxOrder)
            PageThrowHelper.ThrowBadFree(p, order, "order out of range");
        int page = Layout.PageOf(p);
        int block = Layout.BlockOfPage(page);
        byte entry = Blocks.Read(block);
        BlockState state = MemoryBlockTable.StateOf(entry);
        if (state is not (BlockState.Online or BlockState.Isolated))
            PageThrowHelper.ThrowBadFree(p, order, $"its memory block {block} is {state}");
        ZoneOf(Layout.NodeOfBlock(block), MemoryBlockTable.ZoneOf(entry)).Free(page, order, p);
    }

    /// <summary>
    /// Returns every dirty free page of every zone to the OS now (madvise outside the zone locks),
    /// whatever decay_ms says. Pages in the cache layer are not free to the zones: drain them first
    /// (<c>CachedPageAllocator.Trim</c> does).
    /// </summary>
    /// <returns>Bytes purged by this call.</returns>
    public long Trim()
    {
        long pages = 0;
        foreach (Zone zone in _zones)
            pages += zone.Purge(all: true, 0, 0);
        return pages * HeapLayout.PageSize;
    }

    /// <summary>
    /// Runs on the purger thread before each of its ticks: the layers above give back what idle
    /// threads and CPUs park, so the decay can purge it (set by the object heap).
    /// </summary>
    internal Action? BeforePurgeTick { get; set; }

    /// <summary>One purger tick at the real clock (what the background thread runs), after <see cref="BeforePurgeTick"/>.</summary>
    /// <returns>Bytes purged.</returns>
    internal long PurgeTick()
    {
        BeforePurgeTick?.Invoke();
        return PurgeTick((uint)(Environment.TickCount64 - _clockOriginMs));
    }

    /// <summary>
    /// One purger tick at <paramref name="nowMs"/> on the purge clock: advances the clock, then purges
    /// every dirty free block freed at least decay_ms before it. Tests drive decay with it.
    /// </summary>
    /// <returns>Bytes purged.</returns>
    internal long PurgeTick(uint nowMs)
    {
        // Volatile: later frees on any CPU stamp with the new time soon; nothing else is ordered by it.
        Volatile.Write(ref _purgeClockMs, nowMs);
        if (DecayMs < 0)
            return 0;
        long pages = 0;
        foreach (Zone zone in _zones)
            pages += zone.Purge(all: false, nowMs, DecayMs);
        return pages * HeapLayout.PageSize;
    }

    /// <summary>madvise(MADV_DONTNEED) on a free block the caller took off the lists.</summary>
    /// <returns>False when the OS refused (the block keeps its pages).</returns>
    internal bool TryPurgeBlock(int page, int order)
    {
        void* address = Layout.AddressOfPage(page);
        nuint bytes = (nuint)HeapLayout.PageSize << order;
        try
        {
            _platform.Purge(address, bytes);
            if (OperatingSystem.IsWindows())
            {
                // Windows purges by decommit + recommit, which forgets the preferred node.
                _platform.Bind(address, bytes, Topology.Nodes[Layout.NodeOfBlock(Layout.BlockOfPage(page))].PhysicalNode, _bindMode);
            }
            return true;
        }
        catch (PlatformException)
        {
            return false;
        }
    }

    /// <summary>
    /// Decommits an Offline block and makes it inaccessible (a touch faults). Its descriptors stay mapped.
    /// </summary>
    /// <returns>False when the platform refused (the block stays Offline but committed).</returns>
    internal bool TryDecommitOfflineBlock(int block)
    {
        Debug.Assert(Blocks.State(block) == BlockState.Offline, "only Offline blocks are decommitted");
        try
        {
            _platform.Decommit(Layout.AddressOfBlock(block), Layout.BlockBytes);
            return true;
        }
        catch (PlatformException)
        {
            return false;
        }
    }

    /// <summary>
    /// Frees a run of <paramref name="pageCount"/> allocated pages at the page-aligned heap address
    /// <paramref name="p"/> through its zone (<see cref="Zone.TryFreeRun"/>, which checks the head against
    /// <paramref name="expectedFlags"/> when non-zero).
    /// </summary>
    /// <returns>False when <paramref name="p"/> is not in an Online or Isolated block, or the head check failed; nothing changed.</returns>
    internal bool TryFreeRun(void* p, int pageCount, byte expectedFlags)
    {
        if (!Layout.Contains(p) || ((nuint)p & (HeapLayout.PageSize - 1)) != 0)
            return false;
        int page = Layout.PageOf(p);
        int block = Layout.BlockOfPage(page);
        byte entry = Blocks.Read(block);
        if (MemoryBlockTable.StateOf(entry) is not (BlockState.Online or BlockState.Isolated))
            return false;
        return ZoneOf(Layout.NodeOfBlock(block), MemoryBlockTable.ZoneOf(entry)).TryFreeRun(page, pageCount, expectedFlags);
    }

    /// <summary>A snapshot of every node, zone and block; safe while allocation runs.</summary>
    public HeapStats Snapshot()
    {
        var nodes = ImmutableArray.CreateBuilder<NodeStats>(Nodes.Length);
        foreach (NumaNodeState node in Nodes)
        {
            var stat = new NumaStat(node.Read(NumaStatItem.NumaHit), node.Read(NumaStatItem.NumaMiss),
                node.Read(NumaStatItem.NumaForeign), node.Read(NumaStatItem.InterleaveHit),
                node.Read(NumaStatItem.LocalNode), node.Read(NumaStatItem.OtherNode));
            nodes.Add(new NodeStats(node.Id, stat, [node.Zones[0].Snapshot(), node.Zones[1].Snapshot()]));
        }
        var blocks = ImmutableArray.CreateBuilder<BlockInfo>(Layout.BlockCount);
        for (int b = 0; b < Layout.BlockCount; b++)
        {
            byte entry = Blocks.Read(b);
            blocks.Add(new BlockInfo(b, Layout.NodeOfBlock(b), MemoryBlockTable.StateOf(entry), MemoryBlockTable.ZoneOf(entry)));
        }
        return new HeapStats(nodes.MoveToImmutable(), blocks.MoveToImmutable());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) // once only, even if two threads race
            return;
        // The purger first: a tick must never madvise a range after it was released (and perhaps
        // mapped again by someone else).
        _purger?.Dispose();
        if (Layout.Base is not null)
            _platform.Release(Layout.Base, Layout.SizeBytes);
        if (_descriptors is not null)
            _platform.Release(_descriptors, _descriptorBytes);
        _descriptors = null;
        Blocks?.Dispose();
    }

    private enum OnlineOutcome
    {
        Onlined,
        NotAvailable,
        PlatformFailed,
    }

    private OnlineOutcome TryOnlineCore(int block, ZoneType zone)
    {
        try
        {
            return OnlineCore(block, zone) ? OnlineOutcome.Onlined : OnlineOutcome.NotAvailable;
        }
        catch (PlatformException)
        {
            return OnlineOutcome.PlatformFailed;
        }
    }

    /*
     * Onlining a block. Race: growth and an operator's online for the same block. Rule: claim it by
     * CAS Absent/Offline -> Onlining(zone); only the claimer commits and binds it; the zone flips it
     * Onlining -> Online under its lock as it adds the pages. On a platform failure the claimer puts
     * back the old byte (CAS Onlining -> old), so the block is Absent again and nothing leaked.
     */
    private bool OnlineCore(int block, ZoneType zone)
    {
        if (!PrepareOnline(block, zone))
            return false;
        FinishOnline(block);
        return true;
    }

    /// <summary>
    /// The slow half of an online, for a caller that publishes the pages inside its own section (the
    /// zonelist builder's write section): claims the Absent/Offline <paramref name="block"/> for
    /// <paramref name="zone"/>, commits and binds it. Follow a true with <see cref="FinishOnline"/>.
    /// </summary>
    /// <returns>False when the block was not available or the platform failed (the block is back to its old state).</returns>
    internal bool TryPrepareOnline(int block, ZoneType zone)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, Layout.BlockCount);
        try
        {
            return PrepareOnline(block, zone);
        }
        catch (PlatformException)
        {
            return false;
        }
    }

    /// <summary>The fast half of an online: the claimed block's pages go on its zone's free lists and it turns Online.</summary>
    internal void FinishOnline(int block)
    {
        byte entry = Blocks.Read(block);
        Debug.Assert(MemoryBlockTable.StateOf(entry) == BlockState.Onlining, "only a prepared block is finished");
        ZoneOf(Layout.NodeOfBlock(block), MemoryBlockTable.ZoneOf(entry)).AddOnlinedBlock(block);
    }

    private bool PrepareOnline(int block, ZoneType zone)
    {
        byte old = Blocks.Read(block);
        BlockState oldState = MemoryBlockTable.StateOf(old);
        if (oldState is not (BlockState.Absent or BlockState.Offline))
            return false;
        byte claimed = MemoryBlockTable.Encode(BlockState.Onlining, zone);
        if (!Blocks.TryChange(block, old, claimed))
            return false;
        byte* memory = Layout.AddressOfBlock(block);
        bool committed = false;
        try
        {
            if (oldState == BlockState.Absent)
            {
                // First online: this block's descriptors (never decommitted afterwards).
                nuint descriptorBytes = (nuint)Layout.PagesPerBlock * (nuint)sizeof(PageDescriptor);
                _platform.Commit(_descriptors + Layout.FirstPageOfBlock(block), descriptorBytes);
            }
            _platform.Commit(memory, Layout.BlockBytes);
            committed = true;
            _platform.Bind(memory, Layout.BlockBytes, Topology.Nodes[Layout.NodeOfBlock(block)].PhysicalNode, _bindMode);
        }
        catch (PlatformException)
        {
            if (committed)
                TryDecommit(memory, Layout.BlockBytes);
            bool restored = Blocks.TryChange(block, claimed, old);
            Debug.Assert(restored, "nobody else changes a claimed block");
            throw;
        }
        return true;
    }

    private void TryDecommit(void* memory, nuint bytes)
    {
        try
        {
            _platform.Decommit(memory, bytes);
        }
        catch (PlatformException)
        {
            // The block stays committed but Absent; a later online commits it again. Nothing leaks
            // beyond the reservation the heap owns anyway.
        }
    }
}
