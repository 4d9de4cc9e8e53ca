using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>Zones growing by onlining their node's Absent blocks under the growth lock.</summary>
public sealed unsafe class GrowthTests
{
    [Test]
    public void AZoneUnderAnAllocationLoop_GrowsFromOneBlockToItsMax_AndTheStatsSaySo()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 32));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        var onlineSeen = new List<int> { normal.Snapshot().OnlineBlocks };
        var taken = new List<int>();
        int page;
        while ((page = normal.TryAllocate(2, PageAllocFlags.None)) != PageDescriptor.NoPage)
        {
            taken.Add(page);
            int online = normal.Snapshot().OnlineBlocks;
            if (online != onlineSeen[^1])
                onlineSeen.Add(online);
        }
        ZoneStats s = normal.Snapshot();
        Assert.That(onlineSeen, Is.EqualTo(Enumerable.Range(1, 8)), "one block at a time, up to normal_max (8 blocks)");
        Assert.That(s.Growths, Is.EqualTo(7));
        Assert.That(s.ManagedPages, Is.EqualTo(8L * TestHeaps.PagesPerBlock));
        Assert.That(s.FreePages - 4, Is.LessThan(s.Watermarks.Min), "stopped only at the min watermark of a full-size zone");
        Assert.That(heap.Snapshot().Blocks.Count(b => b.State == BlockState.Online), Is.EqualTo(8));
        normal.FreeBatch(taken.ToArray(), 2);
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void GrowthOfAnAdminDownOrGoingOfflineZone_IsRefused()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 32));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        normal.AdminDown = true;
        Assert.That(heap.TryGrow(normal, 0), Is.False);
        normal.AdminDown = false;
        normal.GoingOffline = true;
        Assert.That(heap.TryGrow(normal, 0), Is.False);
        List<int> taken = TestHeaps.Drain(normal, 0);
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(1), "a going-offline zone does not grow under load either");
        Assert.That(taken, Has.Count.EqualTo(TestHeaps.PagesPerBlock - normal.Snapshot().Watermarks.Min));
        normal.GoingOffline = false;
        Assert.That(heap.TryGrow(normal, 0), Is.True);
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(2));
    }

    [Test]
    public void AFragmentedZone_WantsGrowthForAnOrderItCannotServe_ThoughItHasFreePagesAboveLow()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 32));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        List<int> taken = TestHeaps.Drain(normal, 0);
        // Free every other page: half the zone is free, far above low, and not one order-1 block exists.
        var kept = new List<int>();
        foreach (int page in taken)
        {
            if (page % 2 == 0)
                normal.Free(page, 0, heap.AddressOfPage(page));
            else
                kept.Add(page);
        }
        Assert.That(normal.Snapshot().FreePages, Is.GreaterThan(normal.Snapshot().Watermarks.Low));

        // The pages the min watermark kept free are fewer than a whole block: no block of MaxOrder is free.
        const int order = PageHeap.MaxOrder;
        Assert.That(normal.NeedsGrowth(8), Is.False, "enough free pages");
        Assert.That(normal.NeedsGrowth(8, order), Is.True, "but no block of that order: growth, not a spurious failure");
        Assert.That(heap.TryGrow(normal, 8, order), Is.False, "at normal_max growth fails; it no longer claims success");
        Assert.That(normal.TryAllocate(order, PageAllocFlags.None), Is.EqualTo(PageDescriptor.NoPage));

        normal.FreeBatch(kept.ToArray(), 0);
        Assert.That(normal.NeedsGrowth(8, order), Is.False, "coalesced again");
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void AZoneWithFreeMemoryAboveLow_DoesNotGrow()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 32));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        Assert.That(heap.TryGrow(normal, 0), Is.True, "nothing needed: success without a new block");
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(1));
    }

    [Test]
    public void AFragmentedZone_WithPlentyFreeButNoBlockOfTheOrder_GrowsToServeIt()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 32));
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        // No reserve, and no growth while the block is emptied: every one of its pages can be taken.
        normal.SetWatermarks(new Watermarks(0, 0, 0));
        normal.GoingOffline = true;
        List<int> taken = TestHeaps.Drain(normal, 0);
        normal.GoingOffline = false;
        Assert.That(taken, Has.Count.EqualTo(TestHeaps.PagesPerBlock));
        // Every other page back: half the block free, not one pair of buddies among it.
        var kept = new List<int>();
        foreach (int page in taken)
        {
            if ((page & 1) == 0)
                normal.Free(page, 0, heap.AddressOfPage(page));
            else
                kept.Add(page);
        }
        Assert.That(normal.Snapshot().FreePages, Is.EqualTo(TestHeaps.PagesPerBlock / 2));

        int big = normal.TryAllocate(3, PageAllocFlags.None);

        Assert.That(big, Is.Not.EqualTo(PageDescriptor.NoPage), "an order-3 request is served, not failed while half the zone is free");
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(2), "by growing one block");
        normal.Free(big, 3, heap.AddressOfPage(big));
        normal.FreeBatch(kept.ToArray(), 0);
        TestHeaps.AssertReconciled(heap);
    }

    [Test, Category("Stress"), NonParallelizable, CancelAfter(60_000)]
    public void AnOperatorOnliningBlocksWhileGrowthRuns_NeverOnlinesABlockTwice(CancellationToken token)
    {
        const int Rounds = 30;
        long totalOperator = 0, totalGrowth = 0;
        for (int round = 0; round < Rounds && !token.IsCancellationRequested; round++)
        {
            using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 64)); // 16-block span, max 16
            Zone normal = heap.ZoneOf(0, ZoneType.Normal);
            var operatorOnlined = new List<int>();
            var allocated = new List<int>();
            using var start = new Barrier(2);
            var op = new Thread(() =>
            {
                start.SignalAndWait(token);
                for (int block = 1; block <= 15; block++) // the same direction growth scans in: they contend
                {
                    if (heap.TryOnlineBlock(block, ZoneType.Normal))
                        operatorOnlined.Add(block);
                }
            });
            op.Start();
            start.SignalAndWait(token);
            int page;
            while ((page = normal.TryAllocate(4, PageAllocFlags.None)) != PageDescriptor.NoPage)
                allocated.Add(page);
            op.Join();

            HeapStats stats = heap.Snapshot();
            ZoneStats zone = stats.Zone(0, ZoneType.Normal);
            int onlineInTable = stats.Blocks.Count(b => b.State == BlockState.Online);
            Assert.That(onlineInTable, Is.EqualTo(16), "every block ends online");
            Assert.That(operatorOnlined.Distinct().Count(), Is.EqualTo(operatorOnlined.Count));
            Assert.That(1 + zone.Growths + operatorOnlined.Count, Is.EqualTo(onlineInTable), "each block onlined exactly once");
            Assert.That(zone.ManagedPages, Is.EqualTo(16L * TestHeaps.PagesPerBlock), "no block's pages added twice");
            Assert.That(allocated.Distinct().Count(), Is.EqualTo(allocated.Count));
            normal.FreeBatch(allocated.ToArray(), 4);
            TestHeaps.AssertReconciled(heap);
            totalOperator += operatorOnlined.Count;
            totalGrowth += zone.Growths;
        }
        TestContext.Out.WriteLine($"over {Rounds} rounds: {totalOperator} blocks onlined by the operator, {totalGrowth} by growth");
        Assert.That(token.IsCancellationRequested, Is.False, "all rounds ran");
    }

    [Test]
    public void AnOperatorOnline_OfABlockThatIsAlreadyOnline_IsRefused()
    {
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 8, 0, 8));
        Assert.That(heap.TryOnlineBlock(0, ZoneType.Movable), Is.False);
        Assert.That(heap.TryOnlineBlock(3, ZoneType.Movable), Is.True);
        Assert.That(heap.TryOnlineBlock(3, ZoneType.Normal), Is.False);
        Assert.That(heap.Snapshot().Blocks[3], Is.EqualTo(new BlockInfo(3, 0, BlockState.Online, ZoneType.Movable)));
        Assert.That(heap.ZoneOf(0, ZoneType.Movable).Snapshot().ManagedPages, Is.EqualTo(TestHeaps.PagesPerBlock));
    }
}
