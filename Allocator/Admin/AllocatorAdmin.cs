using System.Text.Json;
using Numalloc.Caches;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Objects;
using Numalloc.Pages;
using Numalloc.Topology;

namespace Numalloc.Admin;

/// <summary>
/// The in-process admin API (the control socket and the C ABI are built on it): topology, statistics,
/// memory blocks, offline and online of blocks, zones and nodes, cache drains, trim, watermarks and
/// hotplug listeners. Thread-safe; every call may run while allocation runs. Reached as
/// <c>NumaAllocator.Admin</c>.
/// </summary>
/// <remarks>
/// Hotplug calls run on the calling thread and return a <see cref="HotplugResult"/>; they never
/// throw for a wrong target or state (that is <see cref="HotplugStatus.Invalid"/> with a message), only
/// for a negative timeout. One hotplug operation runs at a time: a second gets
/// <see cref="HotplugStatus.InProgress"/> at once.
/// </remarks>
public sealed class AllocatorAdmin
{
    private readonly CachedPageAllocator _caches;
    private readonly MovableHeap? _movable;
    private readonly HotplugController _hotplug;
    private readonly PageHeap _heap;

    internal AllocatorAdmin(CachedPageAllocator caches, MovableHeap? movable, HotplugController hotplug)
    {
        ArgumentNullException.ThrowIfNull(caches);
        ArgumentNullException.ThrowIfNull(hotplug);
        _caches = caches;
        _movable = movable;
        _hotplug = hotplug;
        _heap = caches.Pages.Heap;
    }

    /// <summary>
    /// Builds the admin API over the page-level core: the page caches, the movable heap, and a hotplug
    /// controller that drains the page caches and every <paramref name="otherCaches"/> (the object layer).
    /// </summary>
    internal static AllocatorAdmin Create(CachedPageAllocator caches, MovableHeap? movable, params IOfflineDrainParticipant[] otherCaches)
    {
        ArgumentNullException.ThrowIfNull(caches);
        ArgumentNullException.ThrowIfNull(otherCaches);
        IOfflineDrainParticipant[] participants = [new PageCacheDrainParticipant(caches), .. otherCaches];
        return new AllocatorAdmin(caches, movable, new HotplugController(caches.Pages, movable, participants));
    }

    /// <summary>The hotplug controller (tests, the control socket).</summary>
    internal HotplugController Hotplug => _hotplug;

    /// <summary>The object layer over this heap, for the memory figures of <see cref="GetStats"/>; null reports pages only.</summary>
    internal ObjectHeap? Objects { get; set; }

    /// <summary>Runs first in <see cref="Trim"/>: the upper layers (objects) flush their caches and release empty slabs to the zones.</summary>
    internal Action? BeforeTrim { get; set; }

    /// <summary>The NUMA topology the allocator was built for.</summary>
    public NumaTopology Topology => _heap.Topology;

    /// <summary>The number of memory blocks (ids 0..BlockCount-1).</summary>
    public int BlockCount => _heap.Layout.BlockCount;

    /// <summary>The memory block size in bytes.</summary>
    public long BlockBytes => (long)_heap.Layout.BlockBytes;

    /// <summary>Every memory block with its node, zone and state, like <c>/sys/devices/system/memory</c>.</summary>
    public IReadOnlyList<MemoryBlockInfo> GetBlocks()
    {
        var blocks = new MemoryBlockInfo[_heap.Layout.BlockCount];
        for (int b = 0; b < blocks.Length; b++)
        {
            byte entry = _heap.Blocks.Read(b);
            blocks[b] = new MemoryBlockInfo(b, _heap.Layout.NodeOfBlock(b), MemoryBlockTable.ZoneOf(entry), MemoryBlockTable.StateOf(entry));
        }
        return blocks;
    }

    /// <summary>A full statistics snapshot (see <see cref="AllocatorStats"/>).</summary>
    public AllocatorStats GetStats()
    {
        var snapshot = _caches.Pages.Snapshot();
        var nodes = new List<NodeStatsInfo>(snapshot.Heap.Nodes.Length);
        foreach (NodeStats node in snapshot.Heap.Nodes)
        {
            var zones = new List<ZoneStatsInfo>(node.Zones.Length);
            foreach (ZoneStats z in node.Zones)
            {
                (long pcp, long magazines) = _caches.CachedPagesOfZone(z.Index);
                zones.Add(new ZoneStatsInfo(z.Node, z.Type, z.FreePages, z.IsolatedFreePages, z.ManagedPages, [.. z.FreeBlocksPerOrder],
                    z.Watermarks, z.OnlineBlocks, z.IsolatedBlocks, z.MaxBlocks, pcp, magazines, z.Allocations, z.Frees,
                    z.Growths, z.GrowthFailures, z.AdminDown, z.GoingOffline));
            }
            NumaStat s = node.NumaStat;
            nodes.Add(new NodeStatsInfo(node.Node, new NumaStatInfo(s.NumaHit, s.NumaMiss, s.NumaForeign, s.InterleaveHit, s.LocalNode, s.OtherNode), zones));
        }
        var blocks = snapshot.Heap.Blocks.Select(b => new MemoryBlockInfo(b.Id, b.Node, b.Zone, b.State)).ToList();
        MagazineCounters c = _caches.Registry.Counters;
        MovableStats m = _movable?.Stats ?? default;
        var history = _hotplug.History.Select(h => new HotplugHistoryInfo(h.Operation, h.Target.ToString(), h.Result.Status, h.Result.Count,
            h.Result.Message, h.StartedUtc, h.Result.Duration.TotalMilliseconds, h.Result.Blocks.Length, h.Result.PagesMigrated, h.Result.Rounds)).ToList();
        return new AllocatorStats(DateTime.UtcNow, nodes, blocks,
            new ZonelistStatsInfo(snapshot.ZonelistGeneration, snapshot.ZonelistReaderRestarts),
            new DrainStatsInfo(c.Requests, c.DoneRemotely, c.DoneByOwner, c.Coalesced, c.SetsReaped),
            new MovableStatsInfo(m.LiveBuffers, m.Migrated, m.PagesMigrated, m.PinnedRollbacks, m.NoRoomRollbacks, m.FreesCompletedByMigrator),
            history, GetMemoryStats(snapshot.Heap));
    }

    private MemoryStatsInfo GetMemoryStats(HeapStats heap)
    {
        long slabBytes = 0, inUse = 0, freeInSlabs = 0, cached = 0, large = 0, huge = 0, objectMetadata = 0;
        if (Objects is { } objects)
        {
            ObjectHeapStats o = objects.Snapshot();
            foreach (SizeClassStats c in o.Classes)
            {
                slabBytes += c.SlabPages * HeapLayout.PageSize;
                inUse += c.ObjectsInUse * c.ObjectSize;
                freeInSlabs += c.ObjectsFreeInSlabs * c.ObjectSize;
                cached += c.ObjectsCached * c.ObjectSize;
            }
            large = o.LargePages * HeapLayout.PageSize;
            huge = o.HugeBytes;
            objectMetadata = objects.MetadataBytes;
        }
        long pageMetadata = _heap.MetadataBytes;
        long cacheMetadata = _caches.MetadataBytes;
        return new MemoryStatsInfo(slabBytes, inUse, freeInSlabs, cached, large, huge, heap.DirtyPages * HeapLayout.PageSize,
            heap.PurgedBytes, pageMetadata + objectMetadata + cacheMetadata, pageMetadata, objectMetadata, cacheMetadata);
    }

    /// <summary>A statistics snapshot as JSON (snake_case names, enums as strings).</summary>
    public string GetStatsJson() => ToJson(GetStats());

    /// <summary>Serializes a snapshot to JSON with the source-generated serializer.</summary>
    public static string ToJson(AllocatorStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        return JsonSerializer.Serialize(stats, AdminJsonContext.Default.AllocatorStats);
    }

    /// <summary>Reads a snapshot back from <see cref="ToJson"/>'s output.</summary>
    /// <exception cref="JsonException">Not a stats document.</exception>
    public static AllocatorStats? FromJson(string json) => JsonSerializer.Deserialize(json, AdminJsonContext.Default.AllocatorStats);

    /// <summary>Takes memory block <paramref name="block"/> offline (migrating its movable buffers).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeoutMs"/> is negative.</exception>
    public HotplugResult OfflineBlock(int block, int timeoutMs, Action<HotplugProgress>? progress = null) =>
        _hotplug.Offline(HotplugTarget.Block(block), timeoutMs, progress);

    /// <summary>Takes every online block of a zone offline; the zone stays down (no growth, out of the zonelists) until onlined.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeoutMs"/> is negative.</exception>
    public HotplugResult OfflineZone(int node, ZoneType zone, int timeoutMs, Action<HotplugProgress>? progress = null) =>
        _hotplug.Offline(HotplugTarget.ZoneOf(node, zone), timeoutMs, progress);

    /// <summary>Takes every zone of a node offline; the node stays down until onlined.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeoutMs"/> is negative.</exception>
    public HotplugResult OfflineNode(int node, int timeoutMs, Action<HotplugProgress>? progress = null) =>
        _hotplug.Offline(HotplugTarget.Node(node), timeoutMs, progress);

    /// <summary>Onlines an Offline (or Absent) block into <paramref name="zone"/> of its node (online_kernel / online_movable).</summary>
    public HotplugResult OnlineBlock(int block, ZoneType zone) => _hotplug.Online(HotplugTarget.Block(block, zone));

    /// <summary>Brings an admin-down zone back with the blocks that last belonged to it.</summary>
    public HotplugResult OnlineZone(int node, ZoneType zone) => _hotplug.Online(HotplugTarget.ZoneOf(node, zone));

    /// <summary>Brings every admin-down zone of a node back with its offline blocks.</summary>
    public HotplugResult OnlineNode(int node) => _hotplug.Online(HotplugTarget.Node(node));

    /// <summary>Empties every per-CPU cache and every thread's magazines back into the zones (exactly once per thread).</summary>
    public void DrainCaches() => _caches.DrainAll();

    /// <summary>Empties every cache into the zones, then gives every free page back to the OS now (madvise).</summary>
    /// <returns>Bytes purged by this call.</returns>
    public long Trim()
    {
        BeforeTrim?.Invoke();
        return _caches.Trim();
    }

    /// <summary>Sets a zone's min/low/high watermarks in pages (kept until set again).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown node or zone, or not 0 &lt;= min &lt;= low &lt;= high.</exception>
    public void SetWatermarks(int node, ZoneType zone, Watermarks watermarks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, _heap.Nodes.Length);
        if (!Enum.IsDefined(zone))
            throw new ArgumentOutOfRangeException(nameof(zone), zone, "Zones are Normal and Movable.");
        _heap.ZoneOf(node, zone).SetWatermarks(watermarks);
    }

    /// <summary>Registers a hotplug listener; dispose the result to unregister.</summary>
    public IDisposable RegisterListener(HotplugListener listener) => _hotplug.Register(listener);

    /// <summary>The last hotplug operations (at most 256), oldest first.</summary>
    public IReadOnlyList<HotplugHistoryEntry> History => _hotplug.History;
}
