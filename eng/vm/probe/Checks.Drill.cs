using System.Diagnostics;
using System.Globalization;
using Numalloc.Admin;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Topology;

namespace Numalloc.VmProbe;

internal sealed unsafe partial class Checks
{
    // The node whose Movable zone the drill offlines; its nearest node by the distance row differs
    // from the nearest by the column (d(1,2)=16 < d(1,0)=17, but d(0,1)=16 < d(2,1)=17), so a
    // migration that read the matrix mirrored would land on the wrong node.
    private const int DrillNode = 1;

    // Movable buffers the main thread leaves in the drill node's Movable zone before the offline.
    private static readonly int[] s_residentBytes = [4 << 10, 20 << 10, 64 << 10, 256 << 10, 1 << 20, 3 << 20];

    // Generous for TCG: an offline waits out pins (about a millisecond each) a few rounds at most.
    private const int OfflineTimeoutMs = 60_000;

    /// <summary>
    /// The hot-remove drill inside the guest: a heap with a Movable zone on every node; one worker per
    /// CPU allocates, checks and frees small and large allocations and movable buffers while the main
    /// thread offlines node 1's Movable zone (Ok), checks that every buffer that lived there now lives
    /// (move_pages) on the nearest node by the distance matrix that has room, bytes intact, and onlines
    /// the zone again. Then an offline of node 1's Normal zone, which holds live allocations, returns
    /// Busy and rolls back. The workers see no allocation failure and no changed byte throughout.
    /// </summary>
    private void DrillOfflinesAMovableZoneUnderLoad()
    {
        using NumaAllocator allocator = NewAllocator(SmallHeap);
        AllocatorAdmin admin = allocator.Admin;
        NumaTopology topology = admin.Topology;
        if (topology.NodeCount <= DrillNode + 1)
        {
            _tap.Comment("fewer than three nodes: the drill does not run");
            return;
        }

        // Buffers in the drill node's Movable zone, and live allocations in its Normal zone.
        var residents = new List<(MovableBuffer Buffer, int Seed)>();
        var pinned = new List<(nint Address, int Bytes, int Seed)>();
        for (int i = 0; i < 12; i++)
        {
            int bytes = s_residentBytes[i % s_residentBytes.Length];
            MovableBuffer buffer = allocator.AllocateMovable(bytes, DrillNode);
            using (MovablePin pin = buffer.Pin())
                Pattern.Fill(pin.Span, 1000 + i);
            residents.Add((buffer, 1000 + i));
        }

        foreach (nuint bytes in new nuint[] { 64, 64, 64, 512, 4096, LargeObjectBytes })
        {
            void* p = allocator.AllocateOnNode(bytes, DrillNode);
            Pattern.Fill(new Span<byte>(p, (int)bytes), 2000 + pinned.Count);
            pinned.Add(((nint)p, (int)bytes, 2000 + pinned.Count));
        }

        var before = new List<string>();
        foreach ((MovableBuffer buffer, int seed) in residents)
            CheckResident(allocator, buffer, seed, DrillNode, ZoneType.Movable, before);
        _tap.Report(before.Count == 0,
            $"drill: {residents.Count} movable buffers for node {DrillNode} live in its Movable zone, on node {DrillNode} (move_pages)",
            string.Join('\n', before));
        // On regardless: under --misbind the drill's own placement checks must be seen failing too.

        var workers = new List<DrillWorker>();
        for (int node = 0; node < topology.NodeCount; node++)
        {
            foreach (int cpu in topology.Nodes[node].Cpus)
                workers.Add(new DrillWorker(allocator, cpu, seed: 17 + cpu));
        }

        foreach (DrillWorker worker in workers)
            worker.Start();
        try
        {
            WaitForLoad(workers);
            int expected = NearestWithRoom(admin, DrillNode, residents.Sum(r => r.Buffer.Length));
            DrillMovableOffline(allocator, residents, expected);
            DrillNormalOfflineIsBusy(allocator, pinned, residents);
        }
        finally
        {
            foreach (DrillWorker worker in workers)
                worker.StopAndJoin();
        }

        long ops = workers.Sum(w => w.Operations);
        long failures = workers.Sum(w => w.Failures);
        long mismatches = workers.Sum(w => w.Mismatches);
        var problems = workers.SelectMany(w => w.Problems).ToList();
        MovableStatsInfo movable = admin.GetStats().Movable;
        _tap.Report(ops > 0 && failures == 0 && mismatches == 0 && problems.Count == 0,
            $"drill: {workers.Count} workers through both offlines: no allocation failure, no changed byte",
            string.Create(CultureInfo.InvariantCulture,
                $"{ops} operations, {failures} allocation failures, {mismatches} mismatches; buffers migrated {movable.Migrated}, pinned rollbacks {movable.PinnedRollbacks}, no-room rollbacks {movable.NoRoomRollbacks}")
            + (problems.Count == 0 ? string.Empty : "\n" + string.Join('\n', problems)));
        FreeAll(allocator, residents, pinned);
    }

    // Offline the drill node's Movable zone; every resident must end on `expected`, intact; online again.
    private void DrillMovableOffline(NumaAllocator allocator, List<(MovableBuffer Buffer, int Seed)> residents, int expected)
    {
        AllocatorAdmin admin = allocator.Admin;
        var phases = new PhaseClock();
        long drainsBefore = allocator.Heap.Registry.Counters.Requests;
        AllocatorStats statsBefore = admin.GetStats();
        HotplugResult offline = admin.OfflineZone(DrillNode, ZoneType.Movable, OfflineTimeoutMs, phases.Record);
        long drains = allocator.Heap.Registry.Counters.Requests - drainsBefore;
        string target = ZoneDeltas(statsBefore, admin.GetStats(), expected);
        List<MemoryBlockInfo> blocks = BlocksOf(admin, DrillNode, ZoneType.Movable);
        bool allOffline = blocks.Count > 0 && blocks.All(b => b.State == BlockState.Offline);
        _tap.Report(offline.Status == HotplugStatus.Ok && allOffline,
            $"drill: offline of node {DrillNode}'s Movable zone under load returns Ok and leaves its blocks Offline",
            string.Create(CultureInfo.InvariantCulture,
                $"{offline.Status}: {offline.Message}; {offline.PagesMigrated} pages migrated in {offline.Rounds} round(s), {offline.Duration.TotalMilliseconds:F0} ms; ")
            + "blocks: " + string.Join(", ", blocks.Select(b => $"{b.Id} {b.State}")) + "\nphases (ms from the call): " + phases + string.Create(CultureInfo.InvariantCulture, $"; object-cache drain requests meanwhile: {drains}; node {expected}'s zones meanwhile: {target}"));

        var wrong = new List<string>();
        foreach ((MovableBuffer buffer, int seed) in residents)
            CheckResident(allocator, buffer, seed, expected, zone: null, wrong);
        _tap.Report(wrong.Count == 0,
            $"drill: every buffer of node {DrillNode}'s Movable zone now lives on node {expected}, its nearest node with room by distance (move_pages), bytes intact",
            string.Join('\n', wrong));

        HotplugResult online = admin.OnlineZone(DrillNode, ZoneType.Movable);
        var back = new List<string>();
        if (online.Status != HotplugStatus.Ok)
            back.Add($"online: {online.Status}: {online.Message}");
        MovableBuffer fresh = allocator.AllocateMovable(64 << 10, DrillNode);
        using (MovablePin pin = fresh.Pin())
            Pattern.Fill(pin.Span, 3000);
        CheckResident(allocator, fresh, 3000, DrillNode, ZoneType.Movable, back);
        fresh.Free();
        _tap.Report(back.Count == 0,
            $"drill: online of node {DrillNode}'s Movable zone returns Ok, and a new movable buffer for node {DrillNode} lives there again",
            string.Join('\n', back));
    }

    // Offline the drill node's Normal zone while live allocations sit in it: Busy, and nothing changed.
    private void DrillNormalOfflineIsBusy(NumaAllocator allocator, List<(nint Address, int Bytes, int Seed)> pinned, List<(MovableBuffer Buffer, int Seed)> residents)
    {
        AllocatorAdmin admin = allocator.Admin;
        var phases = new PhaseClock();
        HotplugResult offline = admin.OfflineZone(DrillNode, ZoneType.Normal, OfflineTimeoutMs, phases.Record);
        var wrong = new List<string>();
        if (offline.Status != HotplugStatus.Busy)
            wrong.Add($"offline returned {offline.Status}: {offline.Message}");
        List<MemoryBlockInfo> blocks = BlocksOf(admin, DrillNode, ZoneType.Normal);
        if (blocks.Count == 0 || blocks.Any(b => b.State != BlockState.Online))
            wrong.Add("Normal blocks after the rollback: " + string.Join(", ", blocks.Select(b => $"{b.Id} {b.State}")));
        foreach ((nint address, int bytes, int seed) in pinned)
        {
            int bad = Pattern.FirstMismatch(new ReadOnlySpan<byte>((void*)address, bytes), seed);
            if (bad >= 0)
                wrong.Add($"live allocation of {bytes} B differs at byte {bad}");
            if (allocator.NodeOf((void*)address) != DrillNode)
                wrong.Add($"live allocation of {bytes} B: NodeOf says {allocator.NodeOf((void*)address)}");
        }

        // The zone serves again: small and large allocations for the node land on it.
        var fresh = new List<nint>();
        for (int i = 0; i < 64; i++)
            fresh.Add((nint)allocator.AllocateOnNode(SmallObjectBytes, DrillNode));
        CheckObjects(allocator, fresh, SmallObjectBytes, DrillNode, "small after the rollback", wrong);
        void* large = allocator.AllocateOnNode(LargeObjectBytes, DrillNode);
        CheckRange(allocator, large, LargeObjectBytes, DrillNode, "large after the rollback", wrong);
        foreach (nint p in fresh)
            allocator.Free((void*)p);
        allocator.Free(large);

        // The residents were not part of it: still intact wherever the first offline put them.
        foreach ((MovableBuffer buffer, int seed) in residents)
        {
            using MovablePin pin = buffer.Pin();
            int bad = Pattern.FirstMismatch(pin.Span, seed);
            if (bad >= 0)
                wrong.Add($"movable buffer of {buffer.Length} B differs at byte {bad}");
        }

        _tap.Report(wrong.Count == 0,
            $"drill: offline of node {DrillNode}'s Normal zone with live allocations returns Busy and rolls back (blocks Online, bytes intact, the node serves again)",
            string.Create(CultureInfo.InvariantCulture, $"{offline.Status}: {offline.Message}; {offline.Rounds} round(s), {offline.Duration.TotalMilliseconds:F0} ms; phases (ms): {phases}")
            + (wrong.Count == 0 ? string.Empty : "\n" + string.Join('\n', wrong)));
    }

    // One movable buffer: pinned, its logical node (and zone, when given), its pages' physical node and its bytes.
    private void CheckResident(NumaAllocator allocator, MovableBuffer buffer, int seed, int node, ZoneType? zone, List<string> wrong)
    {
        using MovablePin pin = buffer.Pin();
        void* p = (void*)pin.Address;
        string what = string.Create(CultureInfo.InvariantCulture, $"buffer of {buffer.Length >> 10} KiB");
        if (!allocator.Heap.Pages.Heap.TryLocate(p, out PageLocation location))
        {
            wrong.Add($"{what}: not in the heap");
            return;
        }

        if (location.Node != node || (zone is { } z && location.Zone != z))
            wrong.Add($"{what}: in node {location.Node}'s {location.Zone} zone, expected node {node}{(zone is null ? string.Empty : "'s " + zone + " zone")}");
        nuint bytes = ((nuint)buffer.Length + PageProbe.PageBytes - 1) & ~(nuint)(PageProbe.PageBytes - 1);
        int[] where = PageProbe.NodesOf(_platform, p, bytes);
        if (!PageProbe.AllOn(where, allocator.Admin.Topology.Nodes[node].PhysicalNode))
            wrong.Add($"{what}: pages on {PageProbe.Describe(where)}, expected node {node}");
        int bad = Pattern.FirstMismatch(pin.Span, seed);
        if (bad >= 0)
            wrong.Add($"{what}: differs at byte {bad}");
    }

    /// <summary>
    /// The node a migration off <paramref name="from"/> must pick: the first other node by distance
    /// (<see cref="NumaTopology.NodesByDistance"/>, the kernel's row) whose zones can take
    /// <paramref name="bytes"/> (free pages now plus the blocks they may still grow by).
    /// </summary>
    private static int NearestWithRoom(AllocatorAdmin admin, int from, long bytes)
    {
        AllocatorStats stats = admin.GetStats();
        long pagesPerBlock = admin.BlockBytes / PageProbe.PageBytes;
        foreach (int node in admin.Topology.NodesByDistance(from))
        {
            if (node == from)
                continue;
            long room = stats.Nodes[node].Zones.Sum(z => z.FreePages + ((long)(z.MaxBlocks - z.OnlineBlocks) * pagesPerBlock));
            if (room * PageProbe.PageBytes >= bytes)
                return node;
        }

        return from;
    }

    // What an offline did to one node's zones: growth and failed growth, for the diagnostic (where the migrations went).
    private static string ZoneDeltas(AllocatorStats before, AllocatorStats after, int node) =>
        string.Join("; ", after.Nodes[node].Zones.Zip(before.Nodes[node].Zones, (a, b) => string.Create(CultureInfo.InvariantCulture,
            $"{a.Zone} +{a.Allocations - b.Allocations} allocations, +{a.Growths - b.Growths} growths, +{a.GrowthFailures - b.GrowthFailures} failed growths, {a.FreePages} pages free, {a.OnlineBlocks}/{a.MaxBlocks} blocks")));

    // The zone's blocks that exist: an Absent block (room to grow, never onlined) reads as Normal and is no one's.
    private static List<MemoryBlockInfo> BlocksOf(AllocatorAdmin admin, int node, ZoneType zone) =>
        [.. admin.GetBlocks().Where(b => b.Node == node && b.Zone == zone && b.State != BlockState.Absent)];

    /// <summary>When an offline reached each phase of each round, for the diagnostic: where its time goes.</summary>
    private sealed class PhaseClock
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<string> _marks = [];
        private (HotplugPhase Phase, int Round) _last = ((HotplugPhase)(-1), -1);
        private double _lastMs;
        private int _buffers;
        private double _slowestBufferMs;

        // Called on the offlining thread only. The Migrating phase repeats after each buffer: only its
        // first report is a mark; the gaps between the others time one buffer's migration each.
        public void Record(HotplugProgress progress)
        {
            double now = _clock.Elapsed.TotalMilliseconds;
            if ((progress.Phase, progress.Round) == _last)
            {
                _buffers++;
                _slowestBufferMs = Math.Max(_slowestBufferMs, now - _lastMs);
            }
            else
            {
                _last = (progress.Phase, progress.Round);
                _marks.Add(string.Create(CultureInfo.InvariantCulture, $"{progress.Phase}#{progress.Round} {now:F0}"));
            }

            _lastMs = now;
        }

        public override string ToString() =>
            string.Join(", ", _marks) + string.Create(CultureInfo.InvariantCulture,
                $", returned {_clock.Elapsed.TotalMilliseconds:F0}; {_buffers} buffer(s) migrated or tried, the slowest in {_slowestBufferMs:F0}");
    }

    // Waits until every worker has done some work, so the offline meets load and not idle threads.
    private static void WaitForLoad(List<DrillWorker> workers)
    {
        var clock = Stopwatch.StartNew();
        while (workers.Any(w => w.OperationsSoFar < 200) && clock.Elapsed < TimeSpan.FromSeconds(20))
            Thread.Sleep(10);
    }

    private static void FreeAll(NumaAllocator allocator, List<(MovableBuffer Buffer, int Seed)> residents, List<(nint Address, int Bytes, int Seed)> pinned)
    {
        foreach ((MovableBuffer buffer, _) in residents)
            buffer.Free();
        foreach ((nint address, _, _) in pinned)
            allocator.Free((void*)address);
    }
}
