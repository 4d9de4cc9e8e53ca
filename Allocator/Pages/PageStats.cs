using System.Collections.Immutable;

namespace Numalloc.Pages;

/// <summary>One zone at the moment of a snapshot (each zone read under its own lock).</summary>
/// <remarks>
/// Purging: <see cref="DirtyPages"/> are free pages that may still be resident (an upper bound: a
/// dirty block that merged with a purged buddy counts whole); <see cref="PurgingPages"/> are free
/// pages a purge batch has off the lists right now (not in <see cref="FreePages"/>);
/// <see cref="PurgedPages"/> counts every page returned to the OS since the heap was built, in
/// <see cref="Purges"/> madvise calls; <see cref="PurgeFailures"/> counts refused calls.
/// </remarks>
internal sealed record ZoneStats(
    int Node,
    ZoneType Type,
    int Index,
    long FreePages,
    long IsolatedFreePages,
    long ManagedPages,
    ImmutableArray<long> FreeBlocksPerOrder,
    Watermarks Watermarks,
    int OnlineBlocks,
    int IsolatedBlocks,
    int MaxBlocks,
    long Allocations,
    long Frees,
    long Growths,
    long GrowthFailures,
    long IsolatedServes,
    bool AdminDown,
    bool GoingOffline,
    long DirtyPages,
    long PurgingPages,
    long PurgedPages,
    long Purges,
    long PurgeFailures);

/// <summary>A node's numastat counters, with the kernel's meanings (see <see cref="NumaStatItem"/>).</summary>
internal sealed record NumaStat(long NumaHit, long NumaMiss, long NumaForeign, long InterleaveHit, long LocalNode, long OtherNode);

/// <summary>One node at the moment of a snapshot.</summary>
internal sealed record NodeStats(int Node, NumaStat NumaStat, ImmutableArray<ZoneStats> Zones);

/// <summary>One memory block: its id, node, state and the zone it was onlined into.</summary>
internal readonly record struct BlockInfo(int Id, int Node, BlockState State, ZoneType Zone);

/// <summary>The page heap at the moment of a snapshot: every node, zone and block.</summary>
internal sealed record HeapStats(ImmutableArray<NodeStats> Nodes, ImmutableArray<BlockInfo> Blocks)
{
    /// <summary>The zone of <paramref name="type"/> on <paramref name="node"/>.</summary>
    public ZoneStats Zone(int node, ZoneType type) => Nodes[node].Zones[(int)type];

    /// <summary>Bytes returned to the OS by purging since the heap was built, over every zone.</summary>
    public long PurgedBytes => SumOverZones(static z => z.PurgedPages) * HeapLayout.PageSize;

    /// <summary>Free pages that may still be resident, over every zone.</summary>
    public long DirtyPages => SumOverZones(static z => z.DirtyPages);

    private long SumOverZones(Func<ZoneStats, long> pick)
    {
        long total = 0;
        foreach (NodeStats node in Nodes)
        {
            foreach (ZoneStats zone in node.Zones)
                total += pick(zone);
        }
        return total;
    }
}
