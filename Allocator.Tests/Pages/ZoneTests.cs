using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>A zone's eligibility checks, watermarks, isolation and counters.</summary>
public sealed unsafe class ZoneTests
{
    [Test]
    public void AMovableZone_RefusesUnmovableRequests_AndServesMovableOnes()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 4, 4, 4));
        Zone movable = heap.ZoneOf(0, ZoneType.Movable);
        Assert.That(movable.TryAllocate(0, PageAllocFlags.None), Is.EqualTo(PageDescriptor.NoPage));
        int page = movable.TryAllocate(0, PageAllocFlags.Movable);
        Assert.That(page, Is.Not.EqualTo(PageDescriptor.NoPage));
        Assert.That(heap.TryLocate(heap.AddressOfPage(page), out PageLocation where), Is.True);
        Assert.That(where.Zone, Is.EqualTo(ZoneType.Movable));
    }

    [Test]
    public void AnAdminDownZone_ServesNothing()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 4));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        normal.AdminDown = true;
        Assert.That(normal.TryAllocate(0, PageAllocFlags.None), Is.EqualTo(PageDescriptor.NoPage));
        normal.AdminDown = false;
        Assert.That(normal.TryAllocate(0, PageAllocFlags.None), Is.Not.EqualTo(PageDescriptor.NoPage));
    }

    [Test]
    public void AZoneThatCannotGrow_StopsAtItsMinWatermark()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 4));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        List<int> taken = TestHeaps.Drain(normal, 0);
        ZoneStats s = normal.Snapshot();
        Assert.That(s.FreePages, Is.EqualTo(s.Watermarks.Min));
        Assert.That(taken, Has.Count.EqualTo(TestHeaps.PagesPerBlock - s.Watermarks.Min));
        Assert.That(s.Allocations, Is.EqualTo(taken.Count));
        normal.FreeBatch(taken.ToArray(), 0);
        TestHeaps.AssertReconciled(heap);
        Assert.That(normal.Snapshot().Frees, Is.EqualTo(taken.Count));
    }

    [Test]
    public void AnIsolatedBlock_IsNeverServed_AndItsFreedPagesGoToTheIsolatedLists()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(8, 8));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        // Take a page from each block first, so frees into the isolated block can be seen.
        List<int> before = TestHeaps.Drain(normal, 0);
        int inBlock1 = before.First(p => heap.Layout.BlockOfPage(p) == 1);
        normal.FreeBatch(before.Where(p => p != inBlock1).ToArray(), 0);

        Assert.That(normal.TryIsolateBlock(1), Is.True);
        Assert.That(normal.TryIsolateBlock(1), Is.False, "already isolated");
        Assert.That(heap.Blocks.State(1), Is.EqualTo(BlockState.Isolated));
        Assert.That(heap.IsIsolated(heap.AddressOfPage(inBlock1)), Is.True);
        Assert.That(heap.IsCacheable(heap.AddressOfPage(inBlock1)), Is.False);
        Assert.That(normal.CountIsolatedFree(1), Is.EqualTo(TestHeaps.PagesPerBlock - 1));

        List<int> during = TestHeaps.Drain(normal, 0);
        Assert.That(during.All(p => heap.Layout.BlockOfPage(p) == 0), Is.True, "nothing served from the isolated block");

        normal.Free(inBlock1, 0, heap.AddressOfPage(inBlock1));
        Assert.That(normal.CountIsolatedFree(1), Is.EqualTo(TestHeaps.PagesPerBlock), "the whole block is free: it could go offline");

        normal.FreeBatch(during.ToArray(), 0);
        Assert.That(normal.TryUnisolateBlock(1), Is.True);
        Assert.That(heap.Blocks.State(1), Is.EqualTo(BlockState.Online));
        TestHeaps.AssertReconciled(heap);
        Assert.That(normal.Snapshot().IsolatedFreePages, Is.Zero);
    }

    [Test]
    public void TheSnapshot_ReportsBuddyinfoColumnsAndWatermarksForTheManagedSize()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(8, 8));
        ZoneStats s = heap.ZoneOf(0, ZoneType.Normal).Snapshot();
        Assert.That(s.ManagedPages, Is.EqualTo(2 * TestHeaps.PagesPerBlock));
        Assert.That(s.FreeBlocksPerOrder[PageHeap.MaxOrder], Is.EqualTo(2));
        Assert.That(s.Watermarks, Is.EqualTo(Watermarks.ForZone(2 * TestHeaps.PagesPerBlock)));
        Assert.That(s.OnlineBlocks, Is.EqualTo(2));
    }
}
