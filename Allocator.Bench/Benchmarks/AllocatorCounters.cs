using Numalloc.Caches;
using Numalloc.Objects;
using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// The allocator's own event counters at one moment: what <c>MemoryDiagnoser</c> cannot see in native
/// memory. Two readings taken around a known number of operations give the counts per operation.
/// </summary>
/// <param name="CacheRefills">Batch refills of the per-CPU caches from slabs or zones: the misses of the caches.</param>
/// <param name="CacheFlushes">Batch flushes of the per-CPU caches back to slabs or zones (drains included).</param>
/// <param name="BackendDirect">Operations that found every per-CPU cache of the node held and went to the backend.</param>
/// <param name="ZoneAllocations">Blocks handed out by the zones (buddy allocator, under the zone lock).</param>
/// <param name="ZonelistRestarts">Zonelist walks restarted because a rewrite overlapped them.</param>
/// <param name="MagazineMisses">Small allocations that found the thread's magazine empty (0 for the page caches).</param>
/// <param name="CrossNodeFrees">Small objects freed on a CPU of another node than theirs: the remote frees (0 for the page caches).</param>
internal readonly record struct AllocatorCounters(
    long CacheRefills, long CacheFlushes, long BackendDirect, long ZoneAllocations, long ZonelistRestarts,
    long MagazineMisses = 0, long CrossNodeFrees = 0)
{
    /// <summary>Reads the object heap's caches (every size class) and its page allocator.</summary>
    public static AllocatorCounters Read(NumaAllocator allocator)
    {
        ObjectHeap heap = allocator.Heap;
        CpuCacheStats s = default;
        for (int c = 0; c < SizeClasses.Count; c++)
            s += heap.CpuCaches(c).GetStats();
        return new AllocatorCounters(s.Refills, s.Flushes, s.BackendDirect, ZoneAllocationsOf(heap.Pages), heap.Pages.Zonelists.ReaderRestarts,
            heap.MagazineMisses, heap.CrossNodeFrees);
    }

    /// <summary>Reads the page caches of <paramref name="pages"/> and the page allocator under them.</summary>
    public static AllocatorCounters Read(CachedPageAllocator pages)
    {
        CpuCacheStats s = pages.CpuCacheStats();
        return new AllocatorCounters(s.Refills, s.Flushes, s.BackendDirect, ZoneAllocationsOf(pages.Pages), pages.Pages.Zonelists.ReaderRestarts);
    }

    /// <summary>What happened between <paramref name="before"/> and <paramref name="after"/>, per one of <paramref name="operations"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="operations"/> is not positive.</exception>
    public static CountersPerOperation PerOperation(AllocatorCounters before, AllocatorCounters after, long operations)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(operations);
        double n = operations;
        return new CountersPerOperation(
            (after.CacheRefills - before.CacheRefills) / n,
            (after.CacheFlushes - before.CacheFlushes) / n,
            (after.BackendDirect - before.BackendDirect) / n,
            (after.ZoneAllocations - before.ZoneAllocations) / n,
            (after.ZonelistRestarts - before.ZonelistRestarts) / n,
            (after.MagazineMisses - before.MagazineMisses) / n,
            (after.CrossNodeFrees - before.CrossNodeFrees) / n);
    }

    /// <summary>Runs <paramref name="operations"/> operations (in <paramref name="run"/>) between two readings: the counters per operation.</summary>
    public static CountersPerOperation Measure(Func<AllocatorCounters> read, Action run, long operations)
    {
        AllocatorCounters before = read();
        run();
        return PerOperation(before, read(), operations);
    }

    private static long ZoneAllocationsOf(PageAllocator pages)
    {
        long total = 0;
        foreach (NodeStats node in pages.Snapshot().Heap.Nodes)
        {
            foreach (ZoneStats zone in node.Zones)
                total += zone.Allocations;
        }
        return total;
    }
}

/// <summary>
/// <see cref="AllocatorCounters"/> per benchmark operation (one allocation and its free). Written by the
/// benchmark process as JSON, read by the host's <see cref="AllocatorCountersColumn"/>.
/// </summary>
internal sealed record CountersPerOperation(
    double CacheRefills, double CacheFlushes, double BackendDirect, double ZoneAllocations, double ZonelistRestarts,
    double MagazineMisses = 0, double CrossNodeFrees = 0);
