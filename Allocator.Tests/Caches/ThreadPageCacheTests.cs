using System.Collections.Concurrent;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Tests.Zonelists;
using static Numalloc.Tests.Caches.CachedPageAllocatorTests;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Caches;

/// <summary>Order-0 pages through a thread's own <see cref="ThreadPageCache"/> handle.</summary>
[NonParallelizable]
public sealed unsafe class ThreadPageCacheTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void AHandle_ServesPagesOfItsThreadsNode_AndItsFreesFillThatNodesCaches(bool useMagazines)
    {
        using var cache = Create(4, 4, 16, useMagazines, movableMiB: 4, movableMaxMiB: 8);
        var topology = cache.Pages.Heap.Topology;
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(ZonelistTestSupport.CpuOf(topology, n), () =>
            {
                using ThreadPageCache handle = cache.OpenThreadCache();
                var pages = new List<nint>();
                for (int i = 0; i < 300; i++)
                {
                    PageAllocFlags flags = i % 3 == 0 ? PageAllocFlags.Movable : PageAllocFlags.None;
                    void* p = handle.AllocPage(flags);
                    Assert.That(p != null);
                    PageLocation where = ZonelistTestSupport.Locate(cache.Pages, p);
                    Assert.That(where.Node, Is.EqualTo(n));
                    Assert.That(where.Zone, Is.EqualTo(flags == PageAllocFlags.Movable ? ZoneType.Movable : ZoneType.Normal));
                    *(long*)p = i;
                    pages.Add((nint)p);
                }
                for (int i = 0; i < pages.Count; i++)
                {
                    Assert.That(*(long*)pages[i], Is.EqualTo(i), "no page was handed out twice");
                    handle.FreePage((void*)pages[i]);
                }
                Assert.That(cache.CachedPagesOfZone(cache.Pages.Heap.ZoneOf(n, ZoneType.Normal).Index), Is.Not.EqualTo((0L, 0L)), "the frees went into this node's caches");
                void* again = handle.AllocPage();
                Assert.That(ZonelistTestSupport.Locate(cache.Pages, again).Node, Is.EqualTo(n));
                handle.FreePage(again);
            });
        }
        cache.DrainAll();
        Assert.That(cache.CachedPages(), Is.Zero);
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void AHandle_CatchesADoubleFreeAndAForeignPointer_LikeThePlainCall(bool useMagazines)
    {
        using var cache = Create(1, 4, 8, useMagazines);
        long before = cache.CachedPages();
        using (ThreadPageCache handle = cache.OpenThreadCache())
        {
            void* p = handle.AllocPage();
            handle.FreePage(p);
            var twice = Assert.Throws<InvalidOperationException>(() => FreeThroughANewHandle(cache, p));
            Assert.That(twice!.Message, Does.Contain("double free"));
            void* foreign = NativeMemory.AlignedAlloc(HeapLayout.PageSize, HeapLayout.PageSize);
            Assert.Throws<InvalidOperationException>(() => FreeThroughANewHandle(cache, foreign), "not this heap's");
            NativeMemory.AlignedFree(foreign);
            byte* q = (byte*)handle.AllocPage();
            Assert.Throws<InvalidOperationException>(() => FreeThroughANewHandle(cache, q + 8));
            handle.FreePage(q); // The refused interior pointer left its page allocated, and intact.
        }

        cache.DrainAll();
        Assert.That(cache.CachedPages(), Is.Zero);
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    // A lambda cannot capture a ref struct: open a second handle inside it (the same thread's set).
    private static void FreeThroughANewHandle(CachedPageAllocator cache, void* p)
    {
        using ThreadPageCache handle = cache.OpenThreadCache();
        handle.FreePage(p);
    }

    [Test]
    public void AnOpenHandle_DoesNotHoldUpADrain_AndServesOnAfterIt()
    {
        using var cache = Create(1, 4, 8);
        using ThreadPageCache handle = cache.OpenThreadCache();
        var pages = new List<nint>();
        for (int i = 0; i < 40; i++)
            pages.Add((nint)handle.AllocPage());
        foreach (nint p in pages)
            handle.FreePage((void*)p);
        Assert.That(cache.CachedPages(), Is.GreaterThan(0));

        var drainer = new Thread(() => cache.DrainAll());
        drainer.Start();
        Assert.That(drainer.Join(TimeSpan.FromMinutes(2)), Is.True, "the drain finished while the handle stayed open");
        Assert.That(cache.CachedPages(), Is.Zero, "the open handle's magazine was drained remotely");
        Assert.That(cache.Registry.Counters.DoneRemotely, Is.EqualTo(1));

        void* again = handle.AllocPage();
        Assert.That(again != null);
        handle.FreePage(again);
        cache.DrainAll();
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    [Test]
    public void FlushCurrentThread_WithAHandleOpen_EmptiesTheSetButKeepsIt_UntilTheHandleCloses()
    {
        using var cache = Create(1, 4, 8);
        var handle = cache.OpenThreadCache();
        try
        {
            for (int i = 0; i < 10; i++)
                handle.FreePage(handle.AllocPage());
            Assert.That(cache.Registry.CountMagazineItems(0), Is.GreaterThan(0));

            cache.FlushCurrentThread();

            Assert.That(cache.Registry.CountMagazineItems(0), Is.Zero, "flushed");
            Assert.That(cache.Registry.SetCount, Is.EqualTo(1), "kept: the handle still holds it");
            handle.FreePage(handle.AllocPage());
            Assert.That(cache.Registry.CountMagazineItems(0), Is.GreaterThan(0), "the handle goes on with the same set (refilled, then the free)");
            Assert.That(cache.Registry.SetCount, Is.EqualTo(1));
        }
        finally
        {
            handle.Dispose();
        }

        cache.FlushCurrentThread();
        Assert.That(cache.Registry.SetCount, Is.Zero, "with the handle closed the flush frees the set");
        cache.DrainAll();
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }

    [Test]
    public void AHandle_OfADisposedAllocator_Throws_InsteadOfServing()
    {
        var cache = Create(1, 4, 8);
        var handle = cache.OpenThreadCache();
        try
        {
            handle.FreePage(handle.AllocPage());
            cache.Dispose();
            // A lambda cannot capture the handle: catch by hand.
            Exception? caught = null;
            try { handle.AllocPage(); }
            catch (Exception e) { caught = e; }
            Assert.That(caught, Is.TypeOf<ObjectDisposedException>());
        }
        finally
        {
            handle.Dispose();
        }
    }

    [Test]
    public void AHandleThatWasNeverOpened_SaysSo()
    {
        ThreadPageCache never = default;
        Exception? caught = null;
        try { never.AllocPage(); }
        catch (Exception e) { caught = e; }
        Assert.That(caught, Is.TypeOf<InvalidOperationException>());
        Assert.That(caught!.Message, Does.Contain("OpenThreadCache"));
    }

    /// <summary>
    /// Every thread allocates through its own handle on virtual CPUs of four nodes, tags the pages and
    /// hands them through a queue to the others, which check the tag and free them through their own
    /// handles; a drainer drains all caches meanwhile. Bounded by iterations. At the end every page is
    /// accounted for, drains ran exactly once per request, and every zone's free count reconciles.
    /// </summary>
    [TestCase(true), Category("Stress")]
    [TestCase(false), Category("Stress")]
    public void HandlesOnManyThreads_WithCrossThreadFreesAndDrains_Reconcile(bool useMagazines)
    {
        using var cache = Create(4, 4, 16, useMagazines, movableMiB: 4, movableMaxMiB: 8);
        var topology = cache.Pages.Heap.Topology;
        const int threads = 4, perThread = 15_000;
        var queue = new ConcurrentQueue<(nint Page, long Tag)>();
        long produced = 0, consumed = 0, failures = 0, badTags = 0;
        int running = threads;

        void Work(int id)
        {
            var rng = new Random(id);
            using ThreadPageCache handle = cache.OpenThreadCache();
            for (int i = 0; i < perThread; i++)
            {
                if (i % 1000 == 0)
                    VirtualCpu.Set(ZonelistTestSupport.CpuOf(topology, (id + i / 1000) % 4));
                PageAllocFlags flags = rng.Next(4) == 0 ? PageAllocFlags.Movable : PageAllocFlags.None;
                void* p = handle.AllocPage(flags);
                if (p == null) { Interlocked.Increment(ref failures); continue; }
                long tag = ((long)id << 32) | (uint)i;
                *(long*)p = tag;
                ((long*)p)[511] = ~tag;
                Interlocked.Increment(ref produced);
                queue.Enqueue(((nint)p, tag));
                if (rng.Next(3) != 0 && queue.TryDequeue(out var item))
                    Consume(handle, item);
            }
            Interlocked.Decrement(ref running);
            while (Volatile.Read(ref running) > 0 || !queue.IsEmpty)
            {
                if (queue.TryDequeue(out var item))
                    Consume(handle, item);
                else
                    Thread.Yield();
            }
        }

        void Consume(ThreadPageCache handle, (nint Page, long Tag) item)
        {
            long* p = (long*)item.Page;
            if (p[0] != item.Tag || p[511] != ~item.Tag)
                Interlocked.Increment(ref badTags);
            handle.FreePage(p);
            Interlocked.Increment(ref consumed);
        }

        var workers = Enumerable.Range(0, threads).Select(id => new Thread(() =>
        {
            try { Work(id); }
            finally { VirtualCpu.Clear(); }
        })).ToList();
        var drainer = new Thread(() =>
        {
            for (int i = 0; i < 200 && Volatile.Read(ref running) > 0; i++)
            {
                cache.DrainAll();
                Thread.Yield();
            }
        });
        workers.ForEach(t => t.Start());
        drainer.Start();
        workers.ForEach(t => t.Join());
        drainer.Join();

        AssertHandOffStressReconciled(cache, produced, consumed, failures, badTags);
    }
}
