using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Tests.Zonelists;

/// <summary>Page allocators over simulated topologies, and numastat deltas.</summary>
internal static unsafe class ZonelistTestSupport
{
    /// <summary>Four nodes with unequal distances: from 1 the order is 1, 3, 0, 2; from 2 it is 2, 1, 0, 3.</summary>
    public static readonly int[,] FourNodeDistances =
    {
        { 10, 20, 30, 40 },
        { 20, 10, 25, 15 },
        { 30, 25, 10, 35 },
        { 40, 15, 35, 10 },
    };

    public static PageAllocator Allocator(int nodes, AllocatorOptions options, int[,]? distances = null) =>
        new(options, TestHeaps.Simulated(nodes, distances), PlatformFactory.Default);

    public static int CpuOf(NumaTopology topology, int node) => topology.Nodes[node].Cpus[0];

    public static PageLocation Locate(PageAllocator allocator, void* p)
    {
        Assert.That(allocator.Heap.TryLocate(p, out PageLocation where), Is.True, "a page of the heap");
        return where;
    }

    public static NumaStat[] NumaStats(PageAllocator allocator) =>
        allocator.Snapshot().Heap.Nodes.Select(n => n.NumaStat).ToArray();

    public static NumaStat[] Delta(NumaStat[] before, NumaStat[] after) =>
        before.Zip(after, (b, a) => new NumaStat(a.NumaHit - b.NumaHit, a.NumaMiss - b.NumaMiss, a.NumaForeign - b.NumaForeign,
            a.InterleaveHit - b.InterleaveHit, a.LocalNode - b.LocalNode, a.OtherNode - b.OtherNode)).ToArray();

    public static NumaStat Zero => new(0, 0, 0, 0, 0, 0);
}
