using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;

namespace Numalloc.Tests.Pages;

/// <summary>Small heaps (4 MiB blocks) over simulated topologies for the page-layer tests.</summary>
internal static unsafe class TestHeaps
{
    public const long MiB = 1024 * 1024;
    public const long BlockBytes = 4 * MiB;
    public const int PagesPerBlock = (int)(BlockBytes / 4096);

    private static readonly Lazy<NumaTopology> s_machine = new(() => NumaTopology.Discover());

    public static NumaTopology Simulated(int nodes, int[,]? distances = null) =>
        NumaTopology.Simulated(nodes, 2, distances, s_machine.Value);

    public static AllocatorOptions Options(long normalMiB, long normalMaxMiB, long movableMiB = 0, long movableMaxMiB = 0) => new()
    {
        BlockBytes = BlockBytes,
        NormalBytes = normalMiB * MiB,
        NormalMaxBytes = normalMaxMiB * MiB,
        MovableBytes = movableMiB * MiB,
        MovableMaxBytes = movableMaxMiB * MiB,
    };

    public static PageHeap Heap(int nodes, AllocatorOptions options, IPlatform? platform = null) =>
        new(options, Simulated(nodes), platform ?? PlatformFactory.Default);

    /// <summary>Takes blocks of <paramref name="order"/> from a zone until it refuses.</summary>
    public static List<int> Drain(Zone zone, int order, PageAllocFlags flags = PageAllocFlags.None)
    {
        var pages = new List<int>();
        int page;
        while ((page = zone.TryAllocate(order, flags)) != PageDescriptor.NoPage)
            pages.Add(page);
        return pages;
    }

    /// <summary>Every zone's allocatable free pages equal its managed pages: nothing leaked or doubled.</summary>
    public static void AssertReconciled(PageHeap heap)
    {
        foreach (Zone zone in heap.Zones)
        {
            ZoneStats s = zone.Snapshot();
            Assert.That(s.FreePages + s.IsolatedFreePages, Is.EqualTo(s.ManagedPages), $"zone {s.Node}/{s.Type}: free == managed");
            Assert.That(s.ManagedPages, Is.EqualTo((long)(s.OnlineBlocks + s.IsolatedBlocks) * PagesPerBlock), $"zone {s.Node}/{s.Type}: managed == blocks");
            Assert.That(s.IsolatedServes, Is.Zero, $"zone {s.Node}/{s.Type}: never served from an isolated block");
        }
    }
}
