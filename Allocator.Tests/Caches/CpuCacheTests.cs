using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

public unsafe class CpuCacheTests
{
    [Test]
    public void Layout_HeaderIsOneLine_AndCachesDoNotShareLines()
    {
        Assert.That(sizeof(CpuCache), Is.EqualTo(64));
        Assert.That(Marshal.OffsetOf<CpuCache>(nameof(CpuCache.State)), Is.EqualTo((nint)0));
        var backend = new TestBackend(16);
        using var set = new CpuCacheSet(backend, [0, 0, 0], high: 5, batch: 2);
        for (int cpu = 0; cpu < 3; cpu++)
        {
            Assert.That((nint)set.At(cpu) % 64, Is.EqualTo((nint)0), "64-byte aligned");
        }

        Assert.That((nint)set.At(1) - (nint)set.At(0), Is.EqualTo((nint)128), "header + 6 items padded to 128");
    }

    [Test]
    public void PushAndPop_CountsReconcileWithTheBackend()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0, 0], high: 8, batch: 4);
        var held = new List<nint>();
        for (int i = 0; i < 40; i++)
        {
            Assert.That(set.TryPop(0, out nint item), Is.True);
            held.Add(item);
        }

        foreach (nint item in held)
        {
            set.Push(0, item);
            Assert.That(set.CountAt(0), Is.LessThanOrEqualTo(8), "never above high after a push");
        }

        CpuCacheStats stats = set.GetStats();
        Assert.That(backend.FreeCount + stats.Count, Is.EqualTo(64), "every item is in the cache or the backend");
        Assert.That(stats.ItemsRefilled - stats.ItemsFlushed, Is.EqualTo(stats.Count), "refilled - flushed = cached");
        Assert.That(stats.Refills, Is.EqualTo(10), "40 pops from an empty cache = 10 refills of 4");
        Assert.That(backend.Errors, Is.Zero);
    }

    [Test]
    public void PopBatchAndPushBatch_MoveItemsBetweenCacheAndCaller()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0], high: 16, batch: 8);
        Span<nint> into = stackalloc nint[6];
        Assert.That(set.PopBatch(0, into), Is.EqualTo(6));
        Assert.That(set.CountAt(0), Is.EqualTo(2), "one refill of 8, 6 taken");
        set.PushBatch(0, into);
        Assert.That(set.CountAt(0), Is.EqualTo(8));
        Assert.That(backend.FreeCount + set.CountAt(0), Is.EqualTo(64));
    }

    [Test]
    public void TryPop_WhenWordIsHeldByAnotherThread_FallsThroughToAnotherCacheOfTheNode()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0, 0, 1, 1], high: 8, batch: 4);
        set.Push(1, TakeOne(backend));
        int node1Before = set.CountAt(2) + set.CountAt(3);

        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            long taken = CpuCache.Take(set.At(0));
            holding.Set();
            release.Wait();
            CpuCache.Release(set.At(0), taken);
        });
        holder.Start();
        holding.Wait();

        Assert.That(set.TryPop(0, out nint item), Is.True);
        Assert.That(item, Is.Not.Zero);
        Assert.That(set.CountAt(1), Is.Zero, "the item came from CPU 1, the other CPU of node 0");
        Assert.That(set.Fallthroughs, Is.EqualTo(1));
        Assert.That(set.CountAt(2) + set.CountAt(3), Is.EqualTo(node1Before), "never another node's cache");

        release.Set();
        holder.Join();
        set.Push(0, item);
        Assert.That(set.CountAt(0), Is.EqualTo(1), "after release the word is free again");
    }

    [Test]
    public void Push_WhenEveryCacheOfTheNodeIsHeld_GoesToTheBackend()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0, 1], high: 8, batch: 4);
        nint item = TakeOne(backend);
        long taken = CpuCache.Take(set.At(0)); // held by us: a take by the same thread fails too
        set.Push(0, item);
        CpuCache.Release(set.At(0), taken);
        Assert.That(backend.Holds(item), Is.True);
        Assert.That(set.CountAt(1), Is.Zero, "CPU 1 is on another node");
        Assert.That(set.BackendDirect, Is.EqualTo(1));
    }

    [Test]
    public void Drain_OfRemoteCpu_EmptiesItIntoTheBackend()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0, 0], high: 16, batch: 4);
        var other = new Thread(() =>
        {
            for (int i = 0; i < 3; i++)
            {
                set.TryPop(1, out nint item);
                set.Push(1, item);
            }
        });
        other.Start();
        other.Join();
        Assert.That(set.CountAt(1), Is.GreaterThan(0));
        int drained = set.Drain(1);
        Assert.That(drained, Is.EqualTo(4));
        Assert.That(set.CountAt(1), Is.Zero);
        Assert.That(backend.FreeCount, Is.EqualTo(64));
        Assert.That(backend.Errors, Is.Zero);
    }

    [Test]
    public void Push_OfIsolatedItem_NeverEntersTheCache()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0], high: 16, batch: 4);
        nint isolated = TakeOne(backend);
        nint other = TakeOne(backend);
        nint isolated2 = TakeOne(backend);
        backend.Isolate(isolated);
        set.Push(0, isolated);
        Assert.That(set.CountAt(0), Is.Zero);
        Assert.That(backend.Holds(isolated), Is.True);

        backend.Isolate(isolated2);
        set.PushBatch(0, [other, isolated2]);
        Assert.That(set.CountAt(0), Is.EqualTo(1), "only the cacheable item entered");
        Assert.That(backend.Holds(isolated2), Is.True);
        Assert.That(backend.IsolatedFlushed, Is.EqualTo(2));
    }

    [Test]
    public void PopBatch_OfIsolatedItems_RoutesThemToTheBackendInsteadOfTheCaller()
    {
        var backend = new TestBackend(8);
        using var set = new CpuCacheSet(backend, [0], high: 8, batch: 8);
        Span<nint> into = stackalloc nint[8];
        Assert.That(set.PopBatch(0, into[..4]), Is.EqualTo(4));
        set.PushBatch(0, into[..4]);
        backend.Isolate(into[0]);
        backend.Isolate(into[1]);
        int moved = set.PopBatch(0, into);
        Assert.That(moved, Is.EqualTo(6), "the cache held 8; the 2 isolated ones went to the backend");
        Assert.That(backend.IsolatedFlushed, Is.EqualTo(2));
        for (int i = 0; i < moved; i++)
        {
            Assert.That(backend.IsCacheable(into[i]), Is.True);
        }
    }

    [Test]
    public void CpuHint_OutsideThePossibleCpus_FoldsOntoARealCache()
    {
        var backend = new TestBackend(64);
        using var set = new CpuCacheSet(backend, [0, 0, 0], high: 8, batch: 4);
        foreach (int cpu in new[] { 3, 1000, -1, int.MaxValue, int.MinValue })
        {
            Assert.That(set.TryPop(cpu, out nint item), Is.True);
            set.Push(cpu, item);
        }

        Assert.That(set.TotalCount + backend.FreeCount, Is.EqualTo(64));
    }

    [Test]
    public void PopBatch_FromAnEmptyCache_ChecksEachRefilledItemOnce_AndNeverHandsOutAnIsolatedOne()
    {
        var backend = new TestBackend(8);
        using var set = new CpuCacheSet(backend, [0], high: 8, batch: 4);
        backend.Isolate(backend.ItemAt(7)); // the refill takes items 7, 6, 5, 4
        backend.Isolate(backend.ItemAt(5));
        var calls = new StrongBox<int>();
        Span<nint> into = stackalloc nint[4];
        int moved = set.PopBatch(0, into, new CountingCheck(backend, calls));
        Assert.That(moved, Is.EqualTo(2), "the refill's two isolated items went back to the backend");
        Assert.That(into[..moved].ToArray(), Is.EquivalentTo(new[] { backend.ItemAt(6), backend.ItemAt(4) }));
        Assert.That(backend.IsolatedFlushed, Is.EqualTo(2));
        Assert.That(calls.Value, Is.EqualTo(4), "checked once, by the refill under the word, not again on the way out");
    }

    [Test]
    public void PopBatch_OfItemsCachedBeforeTheTake_ChecksThemOnTheWayOut()
    {
        var backend = new TestBackend(8);
        using var set = new CpuCacheSet(backend, [0], high: 8, batch: 4);
        Span<nint> into = stackalloc nint[4];
        Assert.That(set.PopBatch(0, into), Is.EqualTo(4));
        set.PushBatch(0, into);
        backend.Isolate(into[0]);
        var calls = new StrongBox<int>();
        int moved = set.PopBatch(0, into, new CountingCheck(backend, calls));
        Assert.That(moved, Is.EqualTo(3));
        Assert.That(calls.Value, Is.EqualTo(4), "every item that was cached before the take is checked");
        Assert.That(backend.IsolatedFlushed, Is.EqualTo(1));
    }

    private static nint TakeOne(TestBackend backend)
    {
        Span<nint> one = stackalloc nint[1];
        Assert.That(backend.RefillBatch(0, one), Is.EqualTo(1));
        return one[0];
    }

    private readonly struct CountingCheck(TestBackend backend, StrongBox<int> calls) : ICacheableCheck
    {
        public bool IsCacheable(nint item)
        {
            calls.Value++;
            return backend.IsCacheable(item);
        }
    }
}
