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

    [Test]
    public void TheTailOfALargeRun_IsServedLast_SoTheRunMergesWholeWhenFreed()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 4));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        const int RunPages = 107; // an order-7 block (128 pages) whose 21-page tail goes back at once
        const byte RunFlag = 0xFF;
        int run = normal.TryAllocate(7, PageAllocFlags.None);
        heap.Descriptor(run).Flags = RunFlag;
        heap.Descriptor(run).Owner = RunPages;
        Assert.That(normal.TryFreeRun(run + RunPages, 128 - RunPages, 0), Is.True);

        // Small blocks come from elsewhere while elsewhere has room: the tail is not split up.
        var small = new List<int>();
        for (int i = 0; i < 300; i++)
            small.Add(normal.TryAllocate(i % 3, PageAllocFlags.None));
        Assert.That(small, Has.None.InRange(run, run + 127), "no small block from the run's tail");

        Assert.That(normal.TryFreeRun(run, RunPages, RunFlag), Is.True);
        ref PageDescriptor merged = ref heap.Descriptor(run & ~127);
        Assert.That(merged.State, Is.EqualTo(PageState.Free), "the run and its tail merged again");
        Assert.That(merged.Order, Is.GreaterThanOrEqualTo(7));
        for (int i = 0; i < small.Count; i++)
            normal.Free(small[i], i % 3, heap.AddressOfPage(small[i]));
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void TheTailOfALargeRun_IsStillServed_WhenNothingElseIsFree_AndItIsPurged()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 4));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        int run = normal.TryAllocate(7, PageAllocFlags.None);
        heap.Descriptor(run).Flags = 0xFF;
        heap.Descriptor(run).Owner = 100;
        Assert.That(normal.TryFreeRun(run + 100, 28, 0), Is.True);
        Assert.That(normal.Snapshot().DirtyPages, Is.EqualTo(28), "the tail counts as dirty");
        Assert.That(heap.Trim(), Is.EqualTo(28L * HeapLayout.PageSize), "purging finds the tail's lists too");

        List<int> rest = TestHeaps.Drain(normal, 0);
        ZoneStats s = normal.Snapshot();
        Assert.That(s.FreePages, Is.EqualTo(s.Watermarks.Min), "every page above min was served, the tail's included");
        Assert.That(rest, Has.Some.InRange(run + 100, run + 127));
        normal.FreeBatch(rest.ToArray(), 0);
        Assert.That(normal.TryFreeRun(run, 100, 0xFF), Is.True);
        TestHeaps.AssertReconciled(heap);
        Assert.That(normal.Snapshot().FreeBlocksPerOrder[PageHeap.MaxOrder], Is.EqualTo(TestHeaps.PagesPerBlock >> PageHeap.MaxOrder), "whole again");
    }
}
