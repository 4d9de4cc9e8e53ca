using System.Collections.Concurrent;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Tests.Zonelists;
using Numalloc.Zonelists;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Caches;

/// <summary>Order-0 pages through magazines and per-CPU caches in front of the zones.</summary>
[NonParallelizable]
public sealed unsafe class CachedPageAllocatorTests
{
    internal static CachedPageAllocator Create(int nodes, long normalMiB, long normalMaxMiB, bool useMagazines = true, long movableMiB = 0, long movableMaxMiB = 0) =>
        new(ZonelistTestSupport.Allocator(nodes, TestHeaps.Options(normalMiB, normalMaxMiB, movableMiB, movableMaxMiB)), useMagazines);

    [TestCase(true)]
    [TestCase(false)]
    public void PagesFromTheFastPath_AreOnTheNodeOfTheThreadsCpu(bool useMagazines)
    {
        using var cache = Create(4, 4, 16, useMagazines);
        var topology = cache.Pages.Heap.Topology;
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(ZonelistTestSupport.CpuOf(topology, n), () =>
            {
                var pages = new List<nint>();
                for (int i = 0; i < 200; i++)
                {
                    void* p = cache.AllocPages(0);
                    Assert.That(p != null);
                    pages.Add((nint)p);
                }
                foreach (nint p in pages)
                {
                    Assert.That(ZonelistTestSupport.Locate(cache.Pages, (void*)p).Node, Is.EqualTo(n));
                    cache.FreePages((void*)p, 0);
                }
                // The next allocations are served from the caches the frees filled: still node-local.
                void* again = cache.AllocPages(0);
                Assert.That(ZonelistTestSupport.Locate(cache.Pages, again).Node, Is.EqualTo(n));
                cache.FreePages(again, 0);
            });
        }
        cache.DrainAll();
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    [Test]
    public void FreeingACachedPageAgain_IsCaughtAtOnce_AndTheHeapStaysConsistent()
    {
        using var cache = Create(1, 4, 8);
        void* p = cache.AllocPages(0);
        cache.FreePages(p, 0);
        var ex = Assert.Throws<InvalidOperationException>(() => cache.FreePages(p, 0));
        Assert.That(ex!.Message, Does.Contain("double free"));
        cache.DrainAll();
        Assert.That(cache.CachedPages(), Is.Zero);
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    [Test]
    public void APageOfAnIsolatedBlock_FreedAfterTheIsolation_GoesToTheIsolatedListsNotACache()
    {
        using var cache = Create(1, 4, 4);
        PageHeap heap = cache.Pages.Heap;
        void* p = cache.AllocPages(0);
        PageLocation where = ZonelistTestSupport.Locate(cache.Pages, p);
        Zone zone = heap.ZoneOf(where.Node, where.Zone);

        // Isolate first, then drain (the offline's order), then the racing free arrives.
        Assert.That(zone.TryIsolateBlock(where.Block), Is.True);
        cache.DrainAll();
        long isolatedBefore = zone.CountIsolatedFree(where.Block);
        cache.FreePages(p, 0);

        Assert.That(zone.CountIsolatedFree(where.Block), Is.EqualTo(isolatedBefore + 1));
        Assert.That(cache.CachedPages(), Is.Zero, "the page did not enter a magazine or a per-CPU cache");
        Assert.That(zone.CountIsolatedFree(where.Block), Is.EqualTo(TestHeaps.PagesPerBlock), "the whole block is free: it could go offline");
        Assert.That(zone.TryUnisolateBlock(where.Block), Is.True);
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void DrainAll_ReachesIdleAndExitedThreadsMagazines_ExactlyOncePerRequest()
    {
        using var cache = Create(2, 4, 8);
        var parked = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var idle = new Thread(() =>
        {
            for (int i = 0; i < 20; i++)
                cache.FreePages(cache.AllocPages(0), 0);
            parked.Set();
            release.Wait();
        });
        idle.Start();
        parked.Wait();
        RunOnCpu(0, () =>
        {
            for (int i = 0; i < 20; i++)
                cache.FreePages(cache.AllocPages(0), 0);
        });
        Assert.That(cache.CachedPages(), Is.GreaterThan(0));

        cache.DrainAll();

        Assert.That(cache.CachedPages(), Is.Zero, "the idle thread's magazine and the exited thread's were emptied");
        MagazineCounters c = cache.Registry.Counters;
        Assert.That(c.Requests, Is.EqualTo(c.DoneRemotely + c.DoneByOwner + c.Coalesced));
        TestHeaps.AssertReconciled(cache.Pages.Heap);
        release.Set();
        idle.Join();
    }

    [Test]
    public void AnAllocationThatFindsTheZoneEmpty_DrainsTheCachesFirst_InsteadOfFailing()
    {
        using var cache = Create(1, 4, 4);
        PageHeap heap = cache.Pages.Heap;
        long usable = heap.Zones[0].Snapshot().FreePages - heap.Zones[0].Snapshot().Watermarks.Min;

        // Another thread takes everything, frees it into its magazine and caches, and goes idle.
        var parked = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var hoarder = new Thread(() =>
        {
            var mine = new List<nint>();
            void* p;
            while ((p = cache.AllocPages(0)) != null)
                mine.Add((nint)p);
            foreach (nint q in mine)
                cache.FreePages((void*)q, 0);
            parked.Set();
            release.Wait();
        });
        hoarder.Start();
        parked.Wait();
        Assert.That(cache.CachedPages(), Is.GreaterThan(0));

        var taken = new List<nint>();
        for (long i = 0; i < usable; i++)
        {
            void* p = cache.AllocPages(0);
            Assert.That(p != null, $"allocation {i} of {usable} failed while pages sat in another thread's caches");
            taken.Add((nint)p);
        }
        foreach (nint q in taken)
            cache.FreePages((void*)q, 0);
        release.Set();
        hoarder.Join();
        cache.DrainAll();
        TestHeaps.AssertReconciled(heap);
    }

    /// <summary>
    /// Producers allocate order-0 pages on virtual CPUs of four nodes and hand them through a queue
    /// to consumers that check a tag and free them; one more thread drains all caches now and then.
    /// Bounded by iterations. At the end: every page accounted for, drains exactly once per request,
    /// and every zone's free count back to its managed count.
    /// </summary>
    [Test, Category("Stress")]
    public void CrossThreadChurn_WithConcurrentDrains_Reconciles()
    {
        using var cache = Create(4, 4, 16, movableMiB: 4, movableMaxMiB: 8);
        var topology = cache.Pages.Heap.Topology;
        const int producers = 3, perProducer = 20_000;
        var queue = new BlockingCollection<(nint Page, long Tag)>(boundedCapacity: 512);
        long produced = 0, consumed = 0, failures = 0, badTags = 0;
        int producersLeft = producers;

        var threads = new List<Thread>();
        for (int t = 0; t < producers; t++)
        {
            int id = t;
            threads.Add(new Thread(() =>
            {
                var rng = new Random(id);
                for (int i = 0; i < perProducer; i++)
                {
                    VirtualCpu.Set(ZonelistTestSupport.CpuOf(topology, (id + i / 1000) % 4));
                    PageAllocFlags flags = rng.Next(4) == 0 ? PageAllocFlags.Movable : PageAllocFlags.None;
                    void* p = cache.AllocPages(0, flags);
                    if (p == null) { Interlocked.Increment(ref failures); continue; }
                    long tag = ((long)id << 32) | (uint)i;
                    *(long*)p = tag;
                    ((long*)p)[511] = ~tag;
                    Interlocked.Increment(ref produced);
                    queue.Add(((nint)p, tag));
                    if (rng.Next(8) == 0 && queue.TryTake(out var mine))
                        Consume(mine);
                }
                cache.FlushCurrentThread();
                if (Interlocked.Decrement(ref producersLeft) == 0)
                    queue.CompleteAdding();
            }));
        }
        threads.Add(new Thread(() =>
        {
            foreach (var item in queue.GetConsumingEnumerable())
                Consume(item);
        }));
        var drainer = new Thread(() =>
        {
            for (int i = 0; i < 200 && Volatile.Read(ref producersLeft) > 0; i++)
            {
                cache.DrainAll();
                Thread.Yield();
            }
        });

        void Consume((nint Page, long Tag) item)
        {
            long* p = (long*)item.Page;
            if (p[0] != item.Tag || p[511] != ~item.Tag)
                Interlocked.Increment(ref badTags);
            cache.FreePages(p, 0);
            Interlocked.Increment(ref consumed);
        }

        threads.ForEach(t => t.Start());
        drainer.Start();
        threads.ForEach(t => t.Join());
        drainer.Join();

        AssertHandOffStressReconciled(cache, produced, consumed, failures, badTags);
    }

    // The end of a page hand-off stress test, once its threads are joined: drain the caches, then
    // nothing failed or was handed out twice, every page produced was consumed, none is cached,
    // every drain request was served exactly once, and the heap's free pages reconcile.
    internal static void AssertHandOffStressReconciled(CachedPageAllocator cache, long produced, long consumed, long failures, long badTags)
    {
        cache.DrainAll();
        Assert.That(failures, Is.Zero, "no allocation failed: the heap has room to grow");
        Assert.That(badTags, Is.Zero, "no page was handed to two owners at once");
        Assert.That(consumed, Is.EqualTo(produced));
        Assert.That(cache.CachedPages(), Is.Zero);
        MagazineCounters c = cache.Registry.Counters;
        Assert.That(c.Requests, Is.EqualTo(c.DoneRemotely + c.DoneByOwner + c.Coalesced));
        TestContext.Out.WriteLine($"drains: requests {c.Requests}, remote {c.DoneRemotely}, by owner {c.DoneByOwner}, coalesced {c.Coalesced}, reaped {c.SetsReaped}");
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }
}
