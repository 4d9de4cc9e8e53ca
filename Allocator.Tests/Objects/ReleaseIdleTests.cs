using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests.Objects;

/// <summary>
/// The purger's step before each tick gives back what exited threads and idle CPUs park, so a spike's
/// memory reaches the zones (and the decay) without a trim.
/// </summary>
[NonParallelizable]
public sealed unsafe class ReleaseIdleTests
{
    // decay_ms = -1: no purger thread, so only the test runs the step (the hook is set all the same).
    private static NumaAllocator CreateWithoutPurger()
    {
        AllocatorOptions defaults = Options(normalMiB: 16, normalMaxMiB: 64);
        return NumaAllocator.Create(new AllocatorOptions
        {
            Topology = defaults.Topology,
            BlockBytes = defaults.BlockBytes,
            NormalBytes = defaults.NormalBytes,
            NormalMaxBytes = defaults.NormalMaxBytes,
            MovableBytes = 0,
            MovableMaxBytes = 0,
            DecayMs = -1,
        });
    }

    [Test]
    public void AfterAThreadExits_TwoIdleSteps_ReturnItsCachedObjectsAndEmptySlabsToTheZone()
    {
        using NumaAllocator allocator = CreateWithoutPurger();
        long[] initial = FreePages(allocator);
        var worker = new Thread(() =>
        {
            var held = new List<nint>();
            for (int i = 0; i < 2000; i++)
                held.Add((nint)allocator.Allocate(100));
            for (int i = 0; i < 50; i++)
                held.Add((nint)allocator.Allocate(20_000));
            foreach (nint p in held)
                allocator.Free((void*)p);
        });
        worker.Start();
        worker.Join();
        Assert.That(allocator.Heap.CachedObjects(), Is.GreaterThan(0), "the exited thread's magazines hold objects");

        allocator.Heap.ReleaseIdle(); // reaps the exited thread's set into the per-CPU caches
        allocator.Heap.ReleaseIdle(); // those caches did not change since: drained, empty slabs released

        Assert.Multiple(() =>
        {
            Assert.That(allocator.Heap.CachedObjects(), Is.Zero, "nothing parked in caches");
            Assert.That(allocator.Heap.Snapshot().Classes.Sum(c => c.Slabs), Is.Zero, "no slab kept");
            Assert.That(FreePages(allocator), Is.EqualTo(initial), "every page back in its zone, for the decay to purge");
        });
    }

    [Test]
    public void ThePurgersTick_RunsTheStepFirst()
    {
        using NumaAllocator allocator = CreateWithoutPurger();
        Numalloc.Pages.PageHeap heap = allocator.Heap.Pages.Heap;
        Assert.That(heap.BeforePurgeTick is not null, Is.True, "the object heap hooks the purger");
        int calls = 0;
        heap.BeforePurgeTick = () => calls++;

        heap.PurgeTick();

        Assert.That(calls, Is.EqualTo(1));
    }
}
