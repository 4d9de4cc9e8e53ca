using System.Globalization;
using Numalloc.Admin;
using Numalloc.Caches;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Platform;

namespace Numalloc.Bench.Drill;

/// <summary>
/// The drill's default target: a simulated heap in this process (Normal and Movable zones on every
/// node, two virtual CPUs per node), the workload allocating from it through <see cref="NumaAllocator"/>,
/// and the scenario's steps run through its <see cref="NumaAllocator.Admin"/>.
/// </summary>
internal sealed unsafe class InProcessDrillTarget : IDrillTarget, IDrillHeap
{
    private const int CpusPerNode = 2;
    private const int FillBufferBytes = 64 * 1024;

    private readonly NumaAllocator _allocator;
    private readonly AllocatorAdmin _admin;
    // Per node: odd while a step that takes Normal memory of the node away runs; bumped at its start and end.
    private readonly int[] _disturbance;
    private readonly List<(MovableBuffer Buffer, ulong Tag)> _fill = [];
    private int _lastBlock = -1;

    public InProcessDrillTarget(DrillOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var heap = new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(options.Nodes, CpusPerNode),
            NormalBytes = 32 * AllocatorOptions.MiB,
            MovableBytes = 32 * AllocatorOptions.MiB,
            NormalMaxBytes = 512 * AllocatorOptions.MiB,
            MovableMaxBytes = 256 * AllocatorOptions.MiB,
            BlockBytes = 16 * AllocatorOptions.MiB,
        };
        _allocator = NumaAllocator.Create(heap);
        _admin = _allocator.Admin;
        _disturbance = new int[options.Nodes];
        Description = string.Create(CultureInfo.InvariantCulture,
            $"simulated heap: {options.Nodes} nodes x {CpusPerNode} virtual CPUs, Normal 32 MiB (max 512) and Movable 32 MiB (max 256) per node, 16 MiB blocks");
    }

    /// <summary>The allocator the drill runs against (tests look inside).</summary>
    internal NumaAllocator Allocator => _allocator;

    public string Description { get; }

    public IDrillHeap? Heap => this;

    public long? AllocationCount => null;

    public DrillOutcome Execute(DrillStep step, Action<long, long> progress)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(progress);
        Action<HotplugProgress> report = p => progress(p.PagesMigrated, p.PagesToMigrate);
        ZoneType zone = step.Zone == "movable" ? ZoneType.Movable : ZoneType.Normal;
        if (step.Kind == DrillStepKind.OnlineAll)
            return OnlineAll();

        int disturbed = step.Kind == DrillStepKind.Offline ? NodeWhoseNormalMemoryGoes(step) : -1;
        if (disturbed >= 0)
            Interlocked.Increment(ref _disturbance[disturbed]); // odd: strict failures on the node are explained from now
        try
        {
            HotplugResult result;
            switch (step.Kind, step.Target)
            {
                case (DrillStepKind.Offline, DrillTarget.Node):
                    result = _admin.OfflineNode(step.Node, step.TimeoutMs, report);
                    break;
                case (DrillStepKind.Offline, DrillTarget.Zone):
                    result = _admin.OfflineZone(step.Node, zone, step.TimeoutMs, report);
                    break;
                case (DrillStepKind.Offline, DrillTarget.Block):
                    int victim = step.Block == DrillStep.LastBlock ? _lastBlock : step.Block;
                    if (victim < 0)
                        return new DrillOutcome("invalid", "no block was onlined before", 0);
                    result = _admin.OfflineBlock(victim, step.TimeoutMs, report);
                    break;
                case (DrillStepKind.Online, DrillTarget.Node):
                    result = _admin.OnlineNode(step.Node);
                    break;
                case (DrillStepKind.Online, DrillTarget.Zone):
                    result = _admin.OnlineZone(step.Node, zone);
                    break;
                case (DrillStepKind.Online, DrillTarget.Block):
                    int block = step.Block == DrillStep.NewBlockOfNode ? AbsentBlockOf(step.Node) : step.Block;
                    if (block < 0)
                        return new DrillOutcome("invalid", $"node {step.Node} has no unused block", 0);
                    result = _admin.OnlineBlock(block, zone);
                    if (result.IsOk)
                    {
                        _lastBlock = block;
                        if (step.Fill)
                            return Outcome(result) with { Detail = $"block {block}, {Fill(block)} buffers placed in it" };
                    }
                    break;
                default:
                    return new DrillOutcome("invalid", "not a hotplug step", 0);
            }
            return Outcome(result);
        }
        finally
        {
            if (disturbed >= 0)
                Interlocked.Increment(ref _disturbance[disturbed]); // even again: the step is over
        }
    }

    private static DrillOutcome Outcome(HotplugResult result)
    {
        string? detail = result.Status switch
        {
            HotplugStatus.Busy => string.Create(CultureInfo.InvariantCulture, $"{result.Count} unmovable pages in use"),
            HotplugStatus.TimedOut => string.Create(CultureInfo.InvariantCulture, $"{result.Count} pinned buffers"),
            HotplugStatus.Ok when result.Blocks.Length > 0 => string.Create(CultureInfo.InvariantCulture, $"{result.Blocks.Length} blocks"),
            HotplugStatus.Ok => null,
            _ => result.Message,
        };
        return new DrillOutcome(AdminEndpoint.ResultName(result.Status), detail, result.PagesMigrated);
    }

    // The node whose Normal memory an offline step takes away (strict allocations there may then fail), or -1.
    private int NodeWhoseNormalMemoryGoes(DrillStep step) => step.Target switch
    {
        DrillTarget.Node => step.Node,
        DrillTarget.Zone when step.Zone == "normal" => step.Node,
        DrillTarget.Block => BlockInfo(step.Block == DrillStep.LastBlock ? _lastBlock : step.Block) is { Zone: ZoneType.Normal } b ? b.Node : -1,
        _ => -1,
    };

    private MemoryBlockInfo? BlockInfo(int block)
    {
        IReadOnlyList<MemoryBlockInfo> blocks = _admin.GetBlocks();
        return (uint)block < (uint)blocks.Count ? blocks[block] : null;
    }

    private int AbsentBlockOf(int node) =>
        _admin.GetBlocks().FirstOrDefault(b => b.Node == node && b.State == BlockState.Absent)?.Id ?? -1;

    // Admin-down zones come back whole (online zone); single offline blocks of zones that stayed up come
    // back one by one into the zone they last belonged to (online block).
    private DrillOutcome OnlineAll()
    {
        AllocatorStats stats = _admin.GetStats();
        var downZones = stats.Nodes.SelectMany(n => n.Zones).Where(z => z.AdminDown).Select(z => (z.Node, z.Zone)).ToHashSet();
        int zones = 0, blocks = 0;
        foreach ((int node, ZoneType zone) in downZones.Order())
        {
            HotplugResult result = _admin.OnlineZone(node, zone);
            if (!result.IsOk)
                return Outcome(result) with { Detail = $"online zone {node} {zone}: {result.Message}" };
            zones++;
        }
        foreach (MemoryBlockInfo block in _admin.GetBlocks().Where(b => b.State == BlockState.Offline))
        {
            HotplugResult result = _admin.OnlineBlock(block.Id, block.Zone);
            if (!result.IsOk)
                return Outcome(result) with { Detail = $"online block {block.Id}: {result.Message}" };
            blocks++;
        }
        return new DrillOutcome("ok", zones + blocks == 0 ? "nothing was offline" : $"{zones} zones, {blocks} blocks", 0);
    }

    // Movable buffers of the block's node until the block holds some (bounded): the next offline of the
    // block must migrate them. Buffers that landed elsewhere stay too; every one is checked at the end.
    private int Fill(int block)
    {
        int node = _admin.GetBlocks()[block].Node;
        PageHeap heap = _allocator.Heap.Pages.Heap;
        int inBlock = 0;
        for (int i = 0; i < 512 && inBlock < 64; i++)
        {
            MovableBuffer? buffer = _allocator.TryAllocateMovable(FillBufferBytes, node);
            if (buffer is null)
                break;
            ulong tag = (ulong)(_fill.Count + 1) * 0x9E3779B97F4A7C15UL;
            using (MovablePin pin = buffer.Pin())
            {
                FillPattern(pin.Span, tag);
                if (heap.TryLocate((void*)pin.Address, out PageLocation where) && heap.Layout.BlockOfPage(where.Page) == block)
                    inBlock++;
            }
            _fill.Add((buffer, tag));
        }
        return inBlock;
    }

    private static void FillPattern(Span<byte> span, ulong tag)
    {
        for (int i = 0; i < span.Length; i++)
            span[i] = (byte)((tag >> ((i & 7) * 8)) + (ulong)(i >> 3));
    }

    public IReadOnlyList<string> VerifyAndRelease()
    {
        var mismatches = new List<string>();
        for (int i = 0; i < _fill.Count; i++)
        {
            (MovableBuffer buffer, ulong tag) = _fill[i];
            using (MovablePin pin = buffer.Pin())
            {
                Span<byte> span = pin.Span;
                for (int b = 0; b < span.Length; b++)
                {
                    if (span[b] != (byte)((tag >> ((b & 7) * 8)) + (ulong)(b >> 3)))
                    {
                        mismatches.Add($"fill buffer #{i} ({span.Length} B, movable) at the end: first difference at byte {b}");
                        break;
                    }
                }
            }
            buffer.Free();
        }
        _fill.Clear();
        return mismatches;
    }

    public DrillCounters ReadCounters()
    {
        AllocatorStats stats = _admin.GetStats();
        MagazineCounters objects = _allocator.Heap.Registry.Counters;
        return new DrillCounters(
            stats.Drains.DoneRemotely + objects.DoneRemotely,
            stats.Drains.DoneByOwner + objects.DoneByOwner,
            stats.Drains.Coalesced + objects.Coalesced,
            stats.Zonelists.ReaderRestarts,
            stats.Movable.PagesMigrated);
    }

    // IDrillHeap: the workload's calls.
    public void* TryAllocate(nuint size) => _allocator.TryAllocate(size);

    public void* TryAllocateOnNode(nuint size, int node, out bool failureExpected)
    {
        int before = Volatile.Read(ref _disturbance[node]);
        void* p = _allocator.TryAllocateOnNode(size, node);
        // A step that takes the node's Normal memory away was running before, during or after the call.
        failureExpected = p == null && (before != Volatile.Read(ref _disturbance[node]) || (before & 1) != 0);
        return p;
    }

    public void Free(void* p) => _allocator.Free(p);

    public int NodeOf(void* p) => _allocator.NodeOf(p);

    public IDrillMovable? TryAllocateMovable(int size) =>
        _allocator.TryAllocateMovable(size) is { } buffer ? new Movable(buffer) : null;

    public void RunOn(int node) => VirtualCpu.Set((node * CpusPerNode) + (Environment.CurrentManagedThreadId % CpusPerNode));

    public void FlushThread() => _allocator.FlushCurrentThread();

    public void Dispose() => _allocator.Dispose();

    private sealed class Movable(MovableBuffer buffer) : IDrillMovable
    {
        public int Length => buffer.Length;

        public byte* Pin() => buffer.PinRaw();

        public void Unpin() => buffer.UnpinRaw();

        public void Free() => buffer.Free();
    }
}
