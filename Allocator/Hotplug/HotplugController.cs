using System.Collections.Immutable;
using System.Globalization;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Hotplug;

/// <summary>
/// Offline and online of memory blocks, zones and nodes (the kernel's offline_pages / online_pages),
/// one operation at a time, with listeners, progress, rollback and a history. Thread-safe.
/// </summary>
/// <remarks>
/// <para><b>One at a time.</b> A second operation while one runs gets <see cref="HotplugStatus.InProgress"/>
/// at once (a CAS on <c>_running</c>), never a wait and never a deadlock. Growth does not take this
/// gate: it goes on for every zone that is not being taken offline.</para>
/// <para><b>Offline order</b> (mirrors offline_pages): validate → notify GoingOffline (vetoable) →
/// isolate the blocks (zone growth refused meanwhile for a zone or node target) → rebuild the
/// zonelists if a zone lost its last online block → rounds of: drain every cache (participants),
/// migrate the movable buffers out, and, under each zone lock, commit if every page of the blocks
/// is free on the isolated lists. Unmovable pages still in use after two rounds → roll back, Busy;
/// pinned buffers → retry until the timeout, then roll back, TimedOut. Commit = remove the pages,
/// mark the blocks Offline, decommit them (PROT_NONE), zone or node admin-down, rebuild, notify
/// Offline. Rollback = un-isolate, clear the growth refusal, rebuild, notify CancelOffline; every
/// handle is back in Normal because each migration ends in Normal or Freed.</para>
/// </remarks>
internal sealed unsafe class HotplugController
{
    private const int HistoryCapacity = 256;
    private const int BusyGraceRounds = 2;

    private readonly PageAllocator _pages;
    private readonly PageHeap _heap;
    private readonly MovableHeap? _movable;
    private readonly IOfflineDrainParticipant[] _participants;
    private readonly Lock _listenersLock = new();
    private readonly Lock _historyLock = new();
    private readonly Queue<HotplugHistoryEntry> _history = new();
    private HotplugListener[] _listeners = [];
    private int _running;
    private long _operations;

    /// <summary>Creates the controller over the page allocator, its movable heap and the cache layers to drain.</summary>
    public HotplugController(PageAllocator pages, MovableHeap? movable, params IOfflineDrainParticipant[] participants)
    {
        ArgumentNullException.ThrowIfNull(pages);
        ArgumentNullException.ThrowIfNull(participants);
        _pages = pages;
        _heap = pages.Heap;
        _movable = movable;
        _participants = (IOfflineDrainParticipant[])participants.Clone();
    }

    /// <summary>Test hook: called at each <see cref="OfflineStep"/> on the operating thread (a test blocks or frees in it).</summary>
    internal Action<OfflineStep>? TestHookAtStep { get; set; }

    /// <summary>Finished operations (InProgress answers included), oldest first, at most the last 256.</summary>
    public ImmutableArray<HotplugHistoryEntry> History
    {
        get
        {
            lock (_historyLock)
            {
                return [.. _history];
            }
        }
    }

    /// <summary>Operations run or refused so far.</summary>
    public long Operations => Interlocked.Read(ref _operations); // Atomic 64-bit read of a counter.

    /// <summary>Registers a listener; dispose the result to unregister.</summary>
    public IDisposable Register(HotplugListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_listenersLock)
        {
            _listeners = [.. _listeners, listener];
        }
        return new Registration(this, listener);
    }

    /// <summary>Takes a block, a zone or a node offline (see the class remarks).</summary>
    /// <param name="target">What to take offline (for a block, its zone is whatever it was onlined into).</param>
    /// <param name="timeoutMs">How long to keep retrying pinned movable buffers, in ms (0: one round).</param>
    /// <param name="progress">Called on this thread at each phase and between migrated buffers; may be null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeoutMs"/> is negative (nothing was done).</exception>
    public HotplugResult Offline(HotplugTarget target, int timeoutMs, Action<HotplugProgress>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(timeoutMs);
        return Run("offline", target, () => OfflineCore(target, timeoutMs, progress));
    }

    /// <summary>
    /// Brings a block (into <see cref="HotplugTarget.Zone"/>, like online_kernel / online_movable), a
    /// zone (its node's Offline blocks that last belonged to it) or a node back online: commit and bind
    /// outside, then pages and zonelists in one seqcount write section; notifies Online.
    /// </summary>
    public HotplugResult Online(HotplugTarget target) => Run("online", target, () => OnlineCore(target));

    private HotplugResult Run(string operation, HotplugTarget target, Func<HotplugResult> body)
    {
        Interlocked.Increment(ref _operations); // Atomic only: a statistic.
        DateTime started = DateTime.UtcNow;
        long start = Stopwatch.GetTimestamp();
        HotplugResult result;
        // Full fence (CAS): one operation at a time; the winner's view of every block state starts after
        // the previous operation's release below.
        if (Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            result = Result(HotplugStatus.InProgress, 0, "another hotplug operation is running");
        }
        else
        {
            try
            {
                result = body();
            }
            finally
            {
                // Release: everything this operation changed is visible to the next one's CAS.
                Volatile.Write(ref _running, 0);
            }
        }
        result = result with { Duration = Stopwatch.GetElapsedTime(start) };
        lock (_historyLock)
        {
            if (_history.Count == HistoryCapacity)
                _history.Dequeue();
            _history.Enqueue(new HotplugHistoryEntry(operation, target, result, started));
        }
        return result;
    }

    private HotplugResult OfflineCore(HotplugTarget target, int timeoutMs, Action<HotplugProgress>? progress)
    {
        // 1. Validate.
        if (!TryResolveOffline(target, out Zone[] zones, out string? invalid))
            return Result(HotplugStatus.Invalid, 0, invalid!);
        ImmutableArray<int> announced = OnlineBlocksOf(target, zones);
        if (LeavesNoNormalMemory(announced))
            return Result(HotplugStatus.Invalid, 0, $"{target} holds the last online Normal memory");

        // 2. Notify GoingOffline (vetoable).
        if (!NotifyGoingOffline(target, announced, out string? vetoer))
        {
            Notify(HotplugEvent.CancelOffline, target, announced);
            return Result(HotplugStatus.Cancelled, 0, $"vetoed by {vetoer}");
        }

        // 3. Isolate: growth refused for a whole-zone target first, then the blocks listed under the
        // growth lock (a grower holding it finishes its block first, and none starts after).
        bool wholeZones = target.Kind != HotplugTargetKind.Block;
        var blocks = new List<int>();
        if (wholeZones)
        {
            foreach (Zone zone in zones)
            {
                lock (_heap.Nodes[zone.Node].GrowthLock)
                {
                    zone.GoingOffline = true;
                    CollectOnlineBlocks(zone, blocks);
                }
            }
        }
        else
        {
            blocks.Add(target.Id);
        }
        var isolated = new List<int>(blocks.Count);
        foreach (int block in blocks)
        {
            if (ZoneOfBlock(block).TryIsolateBlock(block))
                isolated.Add(block);
        }
        if (!wholeZones && isolated.Count == 0)
        {
            Notify(HotplugEvent.CancelOffline, target, announced);
            return Result(HotplugStatus.Invalid, 0, $"{target} is no longer online");
        }

        // 4. Zonelists: a zone that lost its last online block (and cannot grow) drops out.
        _pages.Zonelists.Rebuild();
        TestHookAtStep?.Invoke(OfflineStep.Isolated);
        progress?.Invoke(new HotplugProgress(HotplugPhase.Isolated, 0, 0, 0, 0));

        // 5-7. Rounds of drain, migrate, commit check.
        long deadline = Stopwatch.GetTimestamp() + (timeoutMs * Stopwatch.Frequency / 1000);
        var retry = new Dictionary<int, (long Word, long At)>();
        long pagesMigrated = 0;
        int busyRounds = 0;
        for (int round = 1; ; round++)
        {
            TestHookAtStep?.Invoke(OfflineStep.DrainBegun);
            foreach (IOfflineDrainParticipant participant in _participants)
                participant.DrainForOffline(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(isolated));
            TestHookAtStep?.Invoke(OfflineStep.Drained);
            progress?.Invoke(new HotplugProgress(HotplugPhase.Drained, round, 0, pagesMigrated, 0));

            Scan scan = ScanBlocks(isolated);
            progress?.Invoke(new HotplugProgress(HotplugPhase.Migrating, round, scan.MovablePages, pagesMigrated, scan.InUsePages));
            foreach ((int page, int slot, int order) in scan.Movable)
            {
                if (!MayRetry(retry, slot))
                    continue;
                MigrationOutcome outcome = _movable!.MigrateOne(slot, page);
                if (outcome == MigrationOutcome.Migrated)
                    pagesMigrated += 1L << order;
                if (outcome is MigrationOutcome.Pinned or MigrationOutcome.NoRoom)
                    retry[slot] = (_movable.WordOf(slot), Stopwatch.GetTimestamp());
                else
                    retry.Remove(slot);
                // Between buffers: no buffer is MigratePending now.
                progress?.Invoke(new HotplugProgress(HotplugPhase.Migrating, round, scan.MovablePages, pagesMigrated, scan.InUsePages));
            }
            TestHookAtStep?.Invoke(OfflineStep.Migrated);

            if (TryCommit(isolated))
            {
                if (wholeZones)
                {
                    foreach (Zone zone in zones)
                    {
                        zone.AdminDown = true; // before GoingOffline clears, so growth stays refused throughout
                        zone.GoingOffline = false;
                    }
                }
                _pages.Zonelists.Rebuild();
                ImmutableArray<int> done = [.. isolated];
                progress?.Invoke(new HotplugProgress(HotplugPhase.Committed, round, 0, pagesMigrated, 0));
                Notify(HotplugEvent.Offline, target, done);
                return new HotplugResult(HotplugStatus.Ok, 0, $"{target}: {done.Length} block(s) offline", done, pagesMigrated, round, TimeSpan.Zero);
            }

            Scan left = ScanBlocks(isolated);
            bool timedOut = Stopwatch.GetTimestamp() >= deadline;
            if (left.UnmovablePages > 0 && (++busyRounds >= BusyGraceRounds || timedOut))
            {
                RollBack(target, zones, wholeZones, isolated, announced, round, pagesMigrated, progress);
                return new HotplugResult(HotplugStatus.Busy, left.UnmovablePages, $"{target}: {left.UnmovablePages} unmovable page(s) in use", [], pagesMigrated, round, TimeSpan.Zero);
            }
            if (timedOut)
            {
                RollBack(target, zones, wholeZones, isolated, announced, round, pagesMigrated, progress);
                return new HotplugResult(HotplugStatus.TimedOut, left.Movable.Count, $"{target}: {left.Movable.Count} movable buffer(s) still pinned after {timeoutMs} ms", [], pagesMigrated, round, TimeSpan.Zero);
            }
            if (left.Movable.Count > 0 && left.UnmovablePages == 0)
                Thread.Yield(); // pinned buffers: give their holders the CPU before the next round
        }
    }

    // The retry rule of handle.pml: a buffer whose migration rolled back is retried only after its
    // word changed (a pin holder made progress) or one more window passed, never back to back.
    private bool MayRetry(Dictionary<int, (long Word, long At)> retry, int slot)
    {
        if (!retry.TryGetValue(slot, out var last))
            return true;
        return _movable!.WordOf(slot) != last.Word || Stopwatch.GetTimestamp() - last.At >= _movable.MigratePendingWindowTicks;
    }

    private void RollBack(HotplugTarget target, Zone[] zones, bool wholeZones, List<int> isolated, ImmutableArray<int> announced,
        int round, long pagesMigrated, Action<HotplugProgress>? progress)
    {
        foreach (int block in isolated)
        {
            bool restored = ZoneOfBlock(block).TryUnisolateBlock(block);
            Debug.Assert(restored, "only this operation changes an isolated block");
        }
        if (wholeZones)
        {
            foreach (Zone zone in zones)
                zone.GoingOffline = false;
        }
        _pages.Zonelists.Rebuild();
        progress?.Invoke(new HotplugProgress(HotplugPhase.RolledBack, round, 0, pagesMigrated, 0));
        Notify(HotplugEvent.CancelOffline, target, announced);
    }

    /*
     * The commit. Race: frees of the blocks' pages (from users, cache flushes, the migrator) run
     * concurrently. Rule: nothing can allocate from an isolated block and the caches were drained
     * after isolation, so a block found all free under its zone lock stays all free; check every
     * block first, then take each out under its zone lock (which re-checks), then decommit.
     */
    private bool TryCommit(List<int> isolated)
    {
        foreach (int block in isolated)
        {
            if (ZoneOfBlock(block).CountIsolatedFree(block) != _heap.Layout.PagesPerBlock)
                return false;
        }
        foreach (int block in isolated)
        {
            bool offline = ZoneOfBlock(block).TryOfflineIsolatedBlock(block);
            Debug.Assert(offline, "an all-free isolated block stays all free");
        }
        foreach (int block in isolated)
            _heap.TryDecommitOfflineBlock(block);
        return true;
    }

    private readonly record struct Scan(List<(int Page, int Slot, int Order)> Movable, long MovablePages, long UnmovablePages)
    {
        public long InUsePages => MovablePages + UnmovablePages;
    }

    // Walks the descriptors of the blocks: movable buffer heads (with their slots) and unmovable pages
    // in use. Racy against frees (which run under the zone lock): only a hint; the commit re-checks.
    private Scan ScanBlocks(List<int> blocks)
    {
        var movable = new List<(int, int, int)>();
        long movablePages = 0, unmovablePages = 0;
        foreach (int block in blocks)
        {
            int page = _heap.Layout.FirstPageOfBlock(block);
            int end = page + _heap.Layout.PagesPerBlock;
            while (page < end)
            {
                ref PageDescriptor d = ref _heap.Descriptor(page);
                // Acquire: the state is read before the owner (MarkHead writes owner, then state).
                var state = (PageState)Volatile.Read(ref Unsafe.As<PageState, byte>(ref d.State));
                int order = Math.Min((int)d.Order, PageHeap.MaxOrder);
                switch (state)
                {
                    case PageState.Free or PageState.Isolated:
                        page += 1 << order;
                        continue;
                    case PageState.Movable when _movable is not null && _movable.IsSlot(d.Owner):
                        movable.Add((page, (int)d.Owner, order));
                        movablePages += 1L << order;
                        page += 1 << order;
                        continue;
                    case PageState.Allocated or PageState.Slab or PageState.Cached or PageState.Movable:
                        unmovablePages += 1L << order;
                        page += 1 << order;
                        continue;
                    default:
                        page++;
                        continue;
                }
            }
        }
        return new Scan(movable, movablePages, unmovablePages);
    }

    private HotplugResult OnlineCore(HotplugTarget target)
    {
        var blocks = new List<int>();
        var zonesUp = new List<Zone>();
        switch (target.Kind)
        {
            case HotplugTargetKind.Block:
                if ((uint)target.Id >= (uint)_heap.Layout.BlockCount)
                    return Result(HotplugStatus.Invalid, 0, $"block {target.Id} does not exist (blocks are 0..{_heap.Layout.BlockCount - 1})");
                if (!Enum.IsDefined(target.Zone))
                    return Result(HotplugStatus.Invalid, 0, $"zone {(int)target.Zone} does not exist");
                BlockState state = _heap.Blocks.State(target.Id);
                if (state is not (BlockState.Offline or BlockState.Absent))
                    return Result(HotplugStatus.Invalid, 0, $"block {target.Id} is {state}, not Offline or Absent");
                blocks.Add(target.Id);
                Zone into = _heap.ZoneOf(_heap.Layout.NodeOfBlock(target.Id), target.Zone);
                if (into.AdminDown)
                    zonesUp.Add(into);
                break;
            case HotplugTargetKind.Zone:
            case HotplugTargetKind.Node:
                if (!TryNode(target.Id, out string? bad))
                    return Result(HotplugStatus.Invalid, 0, bad!);
                if (target.Kind == HotplugTargetKind.Zone && !Enum.IsDefined(target.Zone))
                    return Result(HotplugStatus.Invalid, 0, $"zone {(int)target.Zone} does not exist");
                foreach (Zone zone in _heap.Nodes[target.Id].Zones)
                {
                    if (target.Kind == HotplugTargetKind.Zone && zone.Type != target.Zone)
                        continue;
                    if (zone.AdminDown)
                        zonesUp.Add(zone);
                    int first = _heap.Layout.FirstBlockOfNode(target.Id);
                    for (int b = first; b < first + _heap.Layout.BlocksPerNode; b++)
                    {
                        if (_heap.Blocks.Read(b) == MemoryBlockTable.Encode(BlockState.Offline, zone.Type))
                            blocks.Add(b);
                    }
                }
                if (zonesUp.Count == 0 && (target.Kind == HotplugTargetKind.Zone || blocks.Count == 0))
                    return Result(HotplugStatus.Invalid, 0, $"{target} is already online");
                break;
            default:
                return Result(HotplugStatus.Invalid, 0, $"unknown target kind {(int)target.Kind}");
        }

        var prepared = new List<int>(blocks.Count);
        foreach (int block in blocks)
        {
            if (_heap.TryPrepareOnline(block, target.Kind == HotplugTargetKind.Block ? target.Zone : MemoryBlockTable.ZoneOf(_heap.Blocks.Read(block))))
                prepared.Add(block);
        }
        if (prepared.Count == 0 && blocks.Count > 0)
            return Result(HotplugStatus.Invalid, 0, $"{target}: the platform refused to commit the block(s) or another online took them");
        _pages.Zonelists.PublishOnline(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(prepared), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(zonesUp));
        ImmutableArray<int> done = [.. prepared];
        Notify(HotplugEvent.Online, target, done);
        string note = prepared.Count < blocks.Count ? $" ({blocks.Count - prepared.Count} block(s) refused by the platform)" : string.Empty;
        return new HotplugResult(HotplugStatus.Ok, 0, $"{target}: {done.Length} block(s) online{note}", done, 0, 0, TimeSpan.Zero);
    }

    private bool TryResolveOffline(HotplugTarget target, out Zone[] zones, out string? invalid)
    {
        zones = [];
        invalid = null;
        switch (target.Kind)
        {
            case HotplugTargetKind.Block:
                if ((uint)target.Id >= (uint)_heap.Layout.BlockCount)
                {
                    invalid = $"block {target.Id} does not exist (blocks are 0..{_heap.Layout.BlockCount - 1})";
                    return false;
                }
                byte entry = _heap.Blocks.Read(target.Id);
                if (MemoryBlockTable.StateOf(entry) != BlockState.Online)
                {
                    invalid = $"block {target.Id} is {MemoryBlockTable.StateOf(entry)}, not Online";
                    return false;
                }
                zones = [ZoneOfBlock(target.Id)];
                return true;
            case HotplugTargetKind.Zone:
                if (!TryNode(target.Id, out invalid))
                    return false;
                if (!Enum.IsDefined(target.Zone))
                {
                    invalid = $"zone {(int)target.Zone} does not exist";
                    return false;
                }
                Zone z = _heap.ZoneOf(target.Id, target.Zone);
                if (z.AdminDown)
                {
                    invalid = $"{target} is already offline";
                    return false;
                }
                zones = [z];
                return true;
            case HotplugTargetKind.Node:
                if (!TryNode(target.Id, out invalid))
                    return false;
                zones = [.. _heap.Nodes[target.Id].Zones.Where(zone => !zone.AdminDown)];
                if (zones.Length == 0)
                {
                    invalid = $"{target} is already offline";
                    return false;
                }
                return true;
            default:
                invalid = $"unknown target kind {(int)target.Kind}";
                return false;
        }
    }

    private bool TryNode(int node, out string? invalid)
    {
        invalid = (uint)node < (uint)_heap.Nodes.Length ? null : $"node {node} does not exist (nodes are 0..{_heap.Nodes.Length - 1})";
        return invalid is null;
    }

    private ImmutableArray<int> OnlineBlocksOf(HotplugTarget target, Zone[] zones)
    {
        if (target.Kind == HotplugTargetKind.Block)
            return [target.Id];
        var blocks = new List<int>();
        foreach (Zone zone in zones)
            CollectOnlineBlocks(zone, blocks);
        return [.. blocks];
    }

    private void CollectOnlineBlocks(Zone zone, List<int> into)
    {
        int first = _heap.Layout.FirstBlockOfNode(zone.Node);
        byte online = MemoryBlockTable.Encode(BlockState.Online, zone.Type);
        for (int b = first; b < first + _heap.Layout.BlocksPerNode; b++)
        {
            if (_heap.Blocks.Read(b) == online)
                into.Add(b);
        }
    }

    // The last online Normal memory may not go: unmovable allocations would have nowhere to live.
    private bool LeavesNoNormalMemory(ImmutableArray<int> blocks)
    {
        int normalOnline = 0;
        foreach (Zone zone in _heap.Zones)
        {
            if (zone.Type == ZoneType.Normal)
                normalOnline += zone.OnlineBlocks;
        }
        int leaving = 0;
        byte online = MemoryBlockTable.Encode(BlockState.Online, ZoneType.Normal);
        foreach (int block in blocks)
        {
            if (_heap.Blocks.Read(block) == online)
                leaving++;
        }
        return leaving > 0 && normalOnline - leaving <= 0;
    }

    private Zone ZoneOfBlock(int block)
    {
        byte entry = _heap.Blocks.Read(block);
        return _heap.ZoneOf(_heap.Layout.NodeOfBlock(block), MemoryBlockTable.ZoneOf(entry));
    }

    private bool NotifyGoingOffline(HotplugTarget target, ImmutableArray<int> blocks, out string? vetoer)
    {
        var notification = new HotplugNotification(HotplugEvent.GoingOffline, target, blocks);
        // Acquire: a registration's array is read whole (copy-on-write under _listenersLock).
        foreach (HotplugListener listener in Volatile.Read(ref _listeners))
        {
            bool agreed;
            try
            {
                agreed = listener.OnGoingOffline(notification);
            }
#pragma warning disable CA1031 // a listener's failure is its veto, never the allocator's crash
            catch (Exception)
#pragma warning restore CA1031
            {
                agreed = false;
            }
            if (!agreed)
            {
                vetoer = listener.GetType().Name;
                return false;
            }
        }
        vetoer = null;
        return true;
    }

    private void Notify(HotplugEvent kind, HotplugTarget target, ImmutableArray<int> blocks)
    {
        var notification = new HotplugNotification(kind, target, blocks);
        // Acquire: a registration's array is read whole (copy-on-write under _listenersLock).
        foreach (HotplugListener listener in Volatile.Read(ref _listeners))
        {
            try
            {
                switch (kind)
                {
                    case HotplugEvent.Offline:
                        listener.OnOffline(notification);
                        break;
                    case HotplugEvent.CancelOffline:
                        listener.OnCancelOffline(notification);
                        break;
                    case HotplugEvent.Online:
                        listener.OnOnline(notification);
                        break;
                }
            }
#pragma warning disable CA1031 // the operation has happened; a listener's failure cannot undo it
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private static HotplugResult Result(HotplugStatus status, long count, string message) =>
        new(status, count, message, [], 0, 0, TimeSpan.Zero);

    private void Unregister(HotplugListener listener)
    {
        lock (_listenersLock)
        {
            _listeners = [.. _listeners.Where(l => l != listener)];
        }
    }

    private sealed class Registration(HotplugController owner, HotplugListener listener) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) // once only, even if two threads race
                owner.Unregister(listener);
        }
    }
}
