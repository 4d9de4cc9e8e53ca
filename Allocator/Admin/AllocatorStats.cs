using Numalloc.Hotplug;
using Numalloc.Pages;

namespace Numalloc.Admin;

/// <summary>A full statistics snapshot, read without stopping allocation (each zone under its own lock).</summary>
/// <param name="TakenUtc">When the snapshot was taken.</param>
/// <param name="Nodes">Per node: numastat and its zones.</param>
/// <param name="Blocks">Every memory block, like <c>/sys/devices/system/memory</c>.</param>
/// <param name="Zonelists">Zonelist generation and reader restarts.</param>
/// <param name="Drains">The deferred-work (drain) counters of the page caches' magazines.</param>
/// <param name="Movable">Movable buffers and migration counters.</param>
/// <param name="Hotplug">The last hotplug operations, oldest first.</param>
/// <param name="Memory">Where the heap's memory is: slabs, caches, large runs, free dirty pages, metadata.</param>
public sealed record AllocatorStats(
    DateTime TakenUtc,
    IReadOnlyList<NodeStatsInfo> Nodes,
    IReadOnlyList<MemoryBlockInfo> Blocks,
    ZonelistStatsInfo Zonelists,
    DrainStatsInfo Drains,
    MovableStatsInfo Movable,
    IReadOnlyList<HotplugHistoryInfo> Hotplug,
    MemoryStatsInfo? Memory = null);

/// <summary>One node.</summary>
/// <param name="Node">The node id.</param>
/// <param name="NumaStat">The node's numastat counters.</param>
/// <param name="Zones">Normal, then Movable.</param>
public sealed record NodeStatsInfo(int Node, NumaStatInfo NumaStat, IReadOnlyList<ZoneStatsInfo> Zones);

/// <summary>The kernel's numastat counters (pages), with its meanings.</summary>
/// <param name="NumaHit">Allocated here as intended.</param>
/// <param name="NumaMiss">Allocated here although another node was intended.</param>
/// <param name="NumaForeign">Intended here but allocated elsewhere.</param>
/// <param name="InterleaveHit">Interleaving got the node it chose.</param>
/// <param name="LocalNode">Allocated here by a thread on this node.</param>
/// <param name="OtherNode">Allocated here by a thread on another node.</param>
public sealed record NumaStatInfo(long NumaHit, long NumaMiss, long NumaForeign, long InterleaveHit, long LocalNode, long OtherNode);

/// <summary>One zone, like <c>/proc/zoneinfo</c> and a <c>/proc/buddyinfo</c> row.</summary>
/// <param name="Node">Its node.</param>
/// <param name="Zone">Normal or Movable.</param>
/// <param name="FreePages">Free pages on the allocatable lists.</param>
/// <param name="IsolatedFreePages">Free pages of blocks going offline.</param>
/// <param name="ManagedPages">Pages of its Online and Isolated blocks.</param>
/// <param name="FreeBlocksPerOrder">Free blocks per buddy order 0..10.</param>
/// <param name="Watermarks">min / low / high, in pages.</param>
/// <param name="OnlineBlocks">Blocks Online in it.</param>
/// <param name="IsolatedBlocks">Blocks going offline.</param>
/// <param name="MaxBlocks">The growth limit.</param>
/// <param name="PcpPages">Pages in its per-CPU caches.</param>
/// <param name="MagazinePages">Pages in threads' magazines.</param>
/// <param name="Allocations">Blocks handed out.</param>
/// <param name="Frees">Blocks taken back.</param>
/// <param name="Growths">Blocks onlined by growth.</param>
/// <param name="GrowthFailures">Growths the platform refused.</param>
/// <param name="AdminDown">An operator took it down.</param>
/// <param name="GoingOffline">An offline of it runs now.</param>
public sealed record ZoneStatsInfo(
    int Node,
    ZoneType Zone,
    long FreePages,
    long IsolatedFreePages,
    long ManagedPages,
    IReadOnlyList<long> FreeBlocksPerOrder,
    Watermarks Watermarks,
    int OnlineBlocks,
    int IsolatedBlocks,
    int MaxBlocks,
    long PcpPages,
    long MagazinePages,
    long Allocations,
    long Frees,
    long Growths,
    long GrowthFailures,
    bool AdminDown,
    bool GoingOffline);

/// <summary>One memory block.</summary>
/// <param name="Id">The block id (what offline/online of a block take).</param>
/// <param name="Node">Its node.</param>
/// <param name="Zone">The zone it was (last) onlined into; Normal for an Absent block.</param>
/// <param name="State">Absent, Onlining, Online, Isolated or Offline.</param>
public sealed record MemoryBlockInfo(int Id, int Node, ZoneType Zone, BlockState State);

/// <summary>The zonelists' seqcount.</summary>
/// <param name="Generation">Completed rewrites.</param>
/// <param name="ReaderRestarts">Walks restarted because a rewrite overlapped them.</param>
public sealed record ZonelistStatsInfo(long Generation, long ReaderRestarts);

/// <summary>
/// The drain protocol's counters. At quiescence <c>Requests == DoneRemotely + DoneByOwner + Coalesced</c>:
/// every request ran exactly once.
/// </summary>
/// <param name="Requests">Work bits requested, one per bit per thread's magazine set.</param>
/// <param name="DoneRemotely">Run by the requester (or the reaper) while the owner was outside.</param>
/// <param name="DoneByOwner">Run by the owning thread at its outermost exit.</param>
/// <param name="Coalesced">Merged into a request not yet claimed.</param>
/// <param name="SetsReaped">Magazine sets of exited threads reaped.</param>
public sealed record DrainStatsInfo(long Requests, long DoneRemotely, long DoneByOwner, long Coalesced, long SetsReaped);

/// <summary>Movable buffers.</summary>
/// <param name="LiveBuffers">Allocated and not freed.</param>
/// <param name="Migrated">Buffers moved.</param>
/// <param name="PagesMigrated">Pages moved.</param>
/// <param name="PinnedRollbacks">Migrations that gave up a window because of pins.</param>
/// <param name="NoRoomRollbacks">Migrations that found no room.</param>
/// <param name="FreesCompletedByMigrator">Frees that raced a migration.</param>
public sealed record MovableStatsInfo(int LiveBuffers, long Migrated, long PagesMigrated, long PinnedRollbacks, long NoRoomRollbacks, long FreesCompletedByMigrator);

/// <summary>One hotplug operation of the history.</summary>
/// <param name="Operation">"offline" or "online".</param>
/// <param name="Target">"block 5", "node 1 movable", "node 2".</param>
/// <param name="Status">The result.</param>
/// <param name="Count">Busy: unmovable pages; TimedOut: pinned buffers.</param>
/// <param name="Message">What happened.</param>
/// <param name="StartedUtc">When it began.</param>
/// <param name="DurationMs">How long it took.</param>
/// <param name="Blocks">Blocks it changed.</param>
/// <param name="PagesMigrated">Pages it migrated.</param>
/// <param name="Rounds">Drain-and-migrate rounds.</param>
public sealed record HotplugHistoryInfo(string Operation, string Target, HotplugStatus Status, long Count, string Message, DateTime StartedUtc, double DurationMs, int Blocks, long PagesMigrated, int Rounds);

/// <summary>
/// Where the heap's memory is, in bytes (racy across its parts). Objects are counted at their class
/// size, so <c>ObjectBytesInUse</c> includes the rounding of requests up to their class.
/// </summary>
/// <param name="SlabBytes">Pages held by slabs of every size class.</param>
/// <param name="ObjectBytesInUse">Slab objects with users.</param>
/// <param name="SlabFreeBytes">Free objects inside slabs (partial and kept empty slabs).</param>
/// <param name="CachedObjectBytes">Objects parked in per-CPU caches and thread magazines.</param>
/// <param name="LargeBytes">Pages of live large runs, rounded up to whole pages (the rest of each run's buddy block went back to the zone).</param>
/// <param name="HugeBytes">Direct mappings above the largest buddy block.</param>
/// <param name="DirtyBytes">Free pages that may still be resident (an upper bound), waiting for their decay.</param>
/// <param name="PurgedBytes">Bytes returned to the OS by purging since the heap was built.</param>
/// <param name="MetadataBytes">Native memory committed for metadata: the sum of the next three.</param>
/// <param name="PageMetadataBytes">Page descriptors of every block ever onlined, and the block table.</param>
/// <param name="ObjectMetadataBytes">Slab metadata tables, object per-CPU caches and magazine sets, class tables.</param>
/// <param name="PageCacheMetadataBytes">Page per-CPU caches and page magazine sets.</param>
public sealed record MemoryStatsInfo(long SlabBytes, long ObjectBytesInUse, long SlabFreeBytes, long CachedObjectBytes,
    long LargeBytes, long HugeBytes, long DirtyBytes, long PurgedBytes,
    long MetadataBytes, long PageMetadataBytes, long ObjectMetadataBytes, long PageCacheMetadataBytes);
