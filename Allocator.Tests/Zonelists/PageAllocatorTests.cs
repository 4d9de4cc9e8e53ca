using Numalloc.Pages;
using Numalloc.Tests.Pages;
using Numalloc.Zonelists;
using static Numalloc.Tests.Zonelists.ZonelistTestSupport;

namespace Numalloc.Tests.Zonelists;

/// <summary>The page API's slow path (the cache-drain hook) and its stats snapshot.</summary>
public sealed unsafe class PageAllocatorTests
{
    [Test]
    public void AFailingAllocation_CallsTheDrainHookOnce_AndRetriesWhenItFreedSomething()
    {
        using PageAllocator allocator = Allocator(1, TestHeaps.Options(4, 4));
        List<int> all = TestHeaps.Drain(allocator.Heap.ZoneOf(0, ZoneType.Normal), 0);
        int calls = 0;
        allocator.DrainCachesBeforeFailing = () =>
        {
            calls++;
            // Stands in for a cache handing its pages back to the zone.
            allocator.FreePages(allocator.Heap.AddressOfPage(all[^1]), 0);
            all.RemoveAt(all.Count - 1);
            return true;
        };
        void* p = allocator.AllocPages(0);
        Assert.That(p != null, "served after the drain");
        Assert.That(calls, Is.EqualTo(1));

        allocator.DrainCachesBeforeFailing = () =>
        {
            calls++;
            return false;
        };
        Assert.That(allocator.AllocPages(0) == null, "nothing drained: the failure stands");
        Assert.That(calls, Is.EqualTo(2), "called once per failing allocation");
        allocator.FreePages(p, 0);
        allocator.Heap.ZoneOf(0, ZoneType.Normal).FreeBatch(all.ToArray(), 0);
        TestHeaps.AssertReconciled(allocator.Heap);
    }

    [Test, Category("Stress"), NonParallelizable, CancelAfter(60_000)]
    public void SnapshotsTakenWhileAnotherThreadAllocates_AreEachConsistent(CancellationToken token)
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 16));
        var worker = new Thread(() =>
        {
            var held = new List<nint>();
            for (int i = 0; i < 20_000; i++)
            {
                if (held.Count < 256 && i % 3 != 2)
                {
                    void* p = allocator.AllocPages(1);
                    if (p != null)
                        held.Add((nint)p);
                }
                else if (held.Count > 0)
                {
                    allocator.FreePages((void*)held[^1], 1);
                    held.RemoveAt(held.Count - 1);
                }
            }
            foreach (nint p in held)
                allocator.FreePages((void*)p, 1);
        });
        worker.Start();
        int snapshots = 0;
        while (worker.IsAlive && snapshots < 100_000 && !token.IsCancellationRequested)
        {
            PageAllocatorStats stats = allocator.Snapshot();
            foreach (NodeStats node in stats.Heap.Nodes)
            {
                foreach (ZoneStats z in node.Zones)
                {
                    long fromOrders = z.FreeBlocksPerOrder.Select((count, order) => count << order).Sum();
                    Assert.That(fromOrders, Is.EqualTo(z.FreePages), "buddyinfo columns add up to the free pages");
                    Assert.That(z.FreePages, Is.LessThanOrEqualTo(z.ManagedPages));
                }
            }
            snapshots++;
        }
        worker.Join();
        Assert.That(snapshots, Is.GreaterThan(0));
        PageAllocatorStats end = allocator.Snapshot();
        Assert.That(end.Heap.Nodes.Sum(n => n.NumaStat.NumaHit + n.NumaStat.NumaMiss),
            Is.EqualTo(end.Heap.Nodes.Sum(n => n.Zones.Sum(z => z.Allocations))), "every allocation counted once in numastat");
        TestHeaps.AssertReconciled(allocator.Heap);
    }
}
