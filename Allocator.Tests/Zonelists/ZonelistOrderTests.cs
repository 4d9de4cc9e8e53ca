using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Zonelists;
using static Numalloc.Tests.Zonelists.ZonelistTestSupport;

namespace Numalloc.Tests.Zonelists;

/// <summary>Which zones each zonelist names, in which order, and where requests land.</summary>
public sealed unsafe class ZonelistOrderTests
{
    private static string[] Names(Zone?[] list) =>
        list.TakeWhile(z => z is not null).Select(z => $"{z!.Node}{(z.Type == ZoneType.Normal ? "N" : "M")}").ToArray();

    [Test]
    public void FallbackLists_FollowTheNodesDistanceOrder_MovableBeforeNormalWithinANode()
    {
        using PageAllocator allocator = Allocator(4, TestHeaps.Options(4, 8, 4, 8), FourNodeDistances);
        ZonelistBuilder lists = allocator.Zonelists;
        Assert.That(Names(lists.ListFor(1, PageAllocFlags.Movable)), Is.EqualTo(new[] { "1M", "1N", "3M", "3N", "0M", "0N", "2M", "2N" }));
        Assert.That(Names(lists.ListFor(1, PageAllocFlags.None)), Is.EqualTo(new[] { "1N", "3N", "0N", "2N" }));
        Assert.That(Names(lists.ListFor(2, PageAllocFlags.None)), Is.EqualTo(new[] { "2N", "1N", "0N", "3N" }));
        Assert.That(Names(lists.ListFor(3, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly)), Is.EqualTo(new[] { "3M", "3N" }));
        Assert.That(Names(lists.ListFor(3, PageAllocFlags.ThisNodeOnly)), Is.EqualTo(new[] { "3N" }));
    }

    [Test]
    public void AZoneWithNoOnlineBlock_IsListedWhileItCanGrow_AndDropsOutWhenItCannot()
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 8, 0, 8));
        ZonelistBuilder lists = allocator.Zonelists;
        Assert.That(Names(lists.ListFor(0, PageAllocFlags.Movable)), Is.EqualTo(new[] { "0M", "0N", "1M", "1N" }), "empty but can grow");
        long generation = lists.Generation;
        allocator.Heap.ZoneOf(1, ZoneType.Movable).AdminDown = true;
        lists.Rebuild();
        Assert.That(Names(lists.ListFor(0, PageAllocFlags.Movable)), Is.EqualTo(new[] { "0M", "0N", "1N" }));
        Assert.That(lists.Generation, Is.EqualTo(generation + 1));
        allocator.Heap.ZoneOf(1, ZoneType.Normal).AdminDown = true;
        lists.Rebuild();
        Assert.That(Names(lists.ListFor(0, PageAllocFlags.Movable)), Is.EqualTo(new[] { "0M", "0N", "1N" }), "admin-down but with online blocks: still listed");

        using PageAllocator noMovable = Allocator(1, TestHeaps.Options(4, 8));
        Assert.That(Names(noMovable.Zonelists.ListFor(0, PageAllocFlags.Movable)), Is.EqualTo(new[] { "0N" }), "movable_max=0: never listed");
    }

    [Test]
    public void UnmovableRequests_NeverLandInAMovableZone()
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 8, 8, 16));
        var pages = new List<nint>();
        void* p;
        while ((p = allocator.AllocPages(0)) != null)
            pages.Add((nint)p);
        Assert.That(pages, Has.Count.GreaterThan(2 * TestHeaps.PagesPerBlock), "both nodes' Normal zones were used");
        Assert.That(pages.Select(q => Locate(allocator, (void*)q).Zone).Distinct(), Is.EqualTo(new[] { ZoneType.Normal }));
        foreach (nint q in pages)
            allocator.FreePages((void*)q, 0);
        TestHeaps.AssertReconciled(allocator.Heap);
    }

    [Test]
    public void MovableRequests_FillTheLocalMovableZoneFirst_ThenTheLocalNormalZone()
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 4, 4, 4));
        VirtualCpu.Set(CpuOf(allocator.Heap.Topology, 0));
        try
        {
            var landed = new List<(int Node, ZoneType Zone)>();
            var pages = new List<nint>();
            void* p;
            while ((p = allocator.AllocPages(0, PageAllocFlags.Movable)) != null)
            {
                pages.Add((nint)p);
                PageLocation where = Locate(allocator, p);
                if (landed.Count == 0 || landed[^1] != (where.Node, where.Zone))
                    landed.Add((where.Node, where.Zone));
            }
            Assert.That(landed, Is.EqualTo(new[] { (0, ZoneType.Movable), (0, ZoneType.Normal), (1, ZoneType.Movable), (1, ZoneType.Normal) }));
            foreach (nint q in pages)
                allocator.FreePages((void*)q, 0);
            TestHeaps.AssertReconciled(allocator.Heap);
        }
        finally
        {
            VirtualCpu.Clear();
        }
    }

    [Test]
    public void AZoneAtItsMax_FailsOverToTheNextZoneOfTheZonelist()
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 16));
        VirtualCpu.Set(CpuOf(allocator.Heap.Topology, 0));
        try
        {
            var pages = new List<nint>();
            PageLocation where;
            do
            {
                void* p = allocator.AllocPages(2);
                Assert.That(p != null, "node 1 still has room");
                pages.Add((nint)p);
                where = Locate(allocator, p);
            }
            while (where.Node == 0);
            ZoneStats node0 = allocator.Snapshot().Heap.Zone(0, ZoneType.Normal);
            Assert.That(node0.OnlineBlocks, Is.EqualTo(4), "node 0 grew to normal_max first");
            Assert.That(node0.Growths, Is.EqualTo(3));
            Assert.That(allocator.Snapshot().Heap.Zone(1, ZoneType.Normal).OnlineBlocks, Is.EqualTo(1));
            foreach (nint q in pages)
                allocator.FreePages((void*)q, 2);
            TestHeaps.AssertReconciled(allocator.Heap);
        }
        finally
        {
            VirtualCpu.Clear();
        }
    }
}

/// <summary>An operator's online publishes the block's pages and the rewritten lists in one write section.</summary>
public sealed unsafe class ZonelistOnlineTests
{
    [Test]
    public void OnliningABlockIntoAnUnlistedZone_ListsItInTheSameGeneration()
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 4, 0, 4));
        ZonelistBuilder lists = allocator.Zonelists;
        Zone n1Movable = allocator.Heap.ZoneOf(1, ZoneType.Movable);
        n1Movable.AdminDown = true;
        lists.Rebuild();
        Assert.That(lists.ListFor(1, PageAllocFlags.Movable).TakeWhile(z => z is not null), Does.Not.Contain(n1Movable));

        long generation = lists.Generation;
        int block = allocator.Heap.Layout.FirstBlockOfNode(1) + 1;
        Assert.That(lists.OnlineBlock(block, ZoneType.Movable), Is.True);
        Assert.That(lists.Generation, Is.EqualTo(generation + 1), "one write section");
        Assert.That(lists.ListFor(1, PageAllocFlags.Movable).TakeWhile(z => z is not null), Does.Contain(n1Movable));
        Assert.That(n1Movable.Snapshot().ManagedPages, Is.EqualTo(TestHeaps.PagesPerBlock));
        Assert.That(lists.OnlineBlock(block, ZoneType.Movable), Is.False, "already online");
        Assert.That(lists.Generation, Is.EqualTo(generation + 1), "a refused online publishes nothing");

        n1Movable.AdminDown = false;
        void* p = allocator.AllocPages(0, PageAllocFlags.Movable, 1);
        Assert.That(Locate(allocator, p), Is.EqualTo(new PageLocation(1, block, ZoneType.Movable, BlockState.Online, Locate(allocator, p).Page)));
        allocator.FreePages(p, 0);
        TestHeaps.AssertReconciled(allocator.Heap);
    }
}
