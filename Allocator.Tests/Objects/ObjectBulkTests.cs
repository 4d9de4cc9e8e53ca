using System.Collections.Concurrent;
using Numalloc.Caches;
using Numalloc.Objects;
using Numalloc.Pages;
using Numalloc.Platform;
using static Numalloc.Tests.Objects.ObjectTestSupport;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Objects;

/// <summary>
/// The bulk fast paths behind <c>na_malloc_bulk</c> / <c>na_free_bulk</c>: one protocol entry moves a
/// whole batch between the caller and the thread's magazines, and stops exactly where the slow path
/// must take over (an empty or full magazine, another node's object, a bad or repeated pointer). The
/// stress test runs them on many threads with cross-thread frees while caches are drained.
/// </summary>
[NonParallelizable]
public sealed unsafe class ObjectBulkTests
{
    private static readonly int s_threads = Math.Max(4, Environment.ProcessorCount);

    // The object's class and the calling thread's magazine count of it (the thread's set is this heap's).
    private static int MagazineCount(nuint size)
    {
        MagazineSet* set = MagazineRegistry.ThreadSet;
        Assert.That(set != null, "the thread has a magazine set");
        return MagazineSet.CountOf(set, SizeClasses.ClassOf(size));
    }

    // The caller's side of na_free_bulk: bulk pushes, and the pointer that stops them through the slow path.
    private static void FreeBulk(ObjectHeap heap, void** ptrs, nuint n)
    {
        nuint i = 0;
        while ((i += heap.TryFreeBulkFast(ptrs + i, n - i)) < n)
        {
            if (ptrs[i] != null)
                heap.FreeSlow(ptrs[i]);
            i++;
        }
    }

    [Test]
    public void BulkFastPaths_MoveBatchesThroughTheMagazine_AndStopWhereTheSlowPathMustRun()
    {
        using NumaAllocator allocator = Create(nodes: 2);
        long[] initial = FreePages(allocator);
        ObjectHeap heap = allocator.Heap;
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            // Warm: the slow path creates the thread's set and refills the magazine.
            allocator.Free(allocator.Allocate(64));
            int inMagazine = MagazineCount(64);
            Assert.That(inMagazine, Is.GreaterThan(8));

            void*[] got = new void*[100];
            nuint taken;
            fixed (void** into = got)
                taken = heap.TryAllocateSmallBulkFast(64, into, 100);
            Assert.That((int)taken, Is.EqualTo(inMagazine), "every object the magazine held, and no more");
            Assert.That(MagazineCount(64), Is.Zero);
            var distinct = new HashSet<nint>();
            for (int i = 0; i < (int)taken; i++)
            {
                Assert.That(distinct.Add((nint)got[i]), Is.True, "distinct objects");
                Assert.That(*(nuint*)got[i], Is.EqualTo((nuint)0), "the free key is cleared: the object is live");
                Assert.That(allocator.NodeOf(got[i]), Is.Zero);
                Fill(got[i], 64, (ulong)i);
            }
            fixed (void** into = got)
                Assert.That(heap.TryAllocateSmallBulkFast(64, into, 4), Is.EqualTo((nuint)0), "an empty magazine gives nothing");

            // A NULL is skipped; another node's object stops the pushes at its index.
            void* remote = allocator.AllocateOnNode(64, 1);
            void*[] batch = [got[0], got[1], null, got[2], remote, got[3]];
            fixed (void** ptrs = batch)
                Assert.That(heap.TryFreeBulkFast(ptrs, (nuint)batch.Length), Is.EqualTo((nuint)4));
            Assert.That(MagazineCount(64), Is.EqualTo(3));

            // A pointer named twice in one call: the second stops the pushes (the slow path reports it).
            void*[] twice = [got[3], got[3]];
            fixed (void** ptrs = twice)
                Assert.That(heap.TryFreeBulkFast(ptrs, 2), Is.EqualTo((nuint)1));
            Assert.Throws<InvalidOperationException>(() => allocator.Free(got[3]));

            // An interior pointer stops them at once and frees nothing.
            void*[] interior = [(byte*)got[4] + 16, got[4]];
            fixed (void** ptrs = interior)
                Assert.That(heap.TryFreeBulkFast(ptrs, 2), Is.EqualTo((nuint)0));
            Assert.That(MagazineCount(64), Is.EqualTo(4));

            for (int i = 4; i < (int)taken; i++)
                Assert.That(Holds(got[i], 64, (ulong)i), Is.True, "live objects kept their contents");
            fixed (void** ptrs = got)
                FreeBulk(heap, ptrs + 4, taken - 4);
            allocator.Free(remote);
        });
        Assert.That(heap.BadFrees + heap.Slabs.DoubleFrees, Is.EqualTo(1), "the one double free, counted once");
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void FreeBulk_StopsAtTheFirstPointerIntoAnIsolatedBlock_AlsoAfterARunFromAnOnlineOne()
    {
        // The bulk free checks a block's node and state once per run of pointers into it: a pointer
        // into another block, right after such a run, must be checked again.
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 16, normalMaxMiB: 16);
        long[] initial = FreePages(allocator);
        ObjectHeap heap = allocator.Heap;
        PageHeap pages = heap.Pages.Heap;
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            var held = new List<nint>();
            void* first = allocator.Allocate(64);
            held.Add((nint)first);
            Assert.That(pages.TryLocate(first, out PageLocation a), Is.True);
            void* other;
            PageLocation b;
            do
            {
                other = allocator.Allocate(64);
                held.Add((nint)other);
                Assert.That(pages.TryLocate(other, out b), Is.True);
            }
            while (b.Block == a.Block && held.Count < 200_000);
            Assert.That(b.Block, Is.Not.EqualTo(a.Block), "objects in two blocks");
            void* second = (void*)held.First(p => p != (nint)first && pages.TryLocate((void*)p, out PageLocation at) && at.Block == a.Block);

            Zone zone = pages.ZoneOf(b.Node, b.Zone);
            Assert.That(zone.TryIsolateBlock(b.Block), Is.True);
            int before = MagazineCount(64);
            void*[] batch = [first, second, other];
            fixed (void** ptrs = batch)
                Assert.That(heap.TryFreeBulkFast(ptrs, 3), Is.EqualTo((nuint)2), "the pushes stop at the isolated block's object");
            Assert.That(MagazineCount(64), Is.EqualTo(before + 2));
            void*[] isolatedFirst = [other];
            fixed (void** ptrs = isolatedFirst)
                Assert.That(heap.TryFreeBulkFast(ptrs, 1), Is.EqualTo((nuint)0));

            heap.FreeSlow(other); // to its slab: an isolated block's objects never enter a cache
            foreach (nint p in held)
            {
                if (p != (nint)first && p != (nint)second && p != (nint)other)
                    allocator.Free((void*)p);
            }
            Assert.That(heap.DrainCaches(), Is.True);
            heap.ReleaseEmptySlabs(block => block == b.Block);
            Assert.That(zone.TryUnisolateBlock(b.Block), Is.True);
        });
        Assert.That(heap.BadFrees, Is.Zero);
        AssertReconciled(allocator, initial);
    }

    [TestCase(16u)]
    [TestCase(1000u)]
    [TestCase(4096u)]
    [TestCase(32768u)]
    public void AllocateSmallBulk_FillsEveryObject_AcrossMagazineRefills(uint size)
    {
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            const int count = 1000;
            var objects = new nint[count];
            fixed (nint* into = objects)
                Assert.That(allocator.Heap.AllocateSmallBulk(size, (void**)into, count), Is.EqualTo((nuint)count));
            Assert.That(objects.Distinct().Count(), Is.EqualTo(count), "distinct objects");
            for (int i = 0; i < count; i++)
            {
                Assert.That(allocator.UsableSize((void*)objects[i]), Is.GreaterThanOrEqualTo((nuint)size));
                Fill((void*)objects[i], size, (ulong)i);
            }
            for (int i = 0; i < count; i++)
                Assert.That(Holds((void*)objects[i], size, (ulong)i), Is.True, "no two objects overlap");
            fixed (nint* ptrs = objects)
                FreeBulk(allocator.Heap, (void**)ptrs, count);
        });
        Assert.That(allocator.Heap.BadFrees, Is.Zero);
        AssertReconciled(allocator, initial);
    }

    [TestCase(0u)]
    [TestCase(24u)]
    [TestCase(4096u)]
    [TestCase(40_000u)]
    [TestCase(5u << 20)]
    public void NumaAllocatorBulk_RoundTripsEveryKindOfSize(uint size)
    {
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            var objects = new nint[size > 1u << 20 ? 3 : 200];
            allocator.AllocateBulk(size, objects);
            Assert.That(objects.Distinct().Count(), Is.EqualTo(objects.Length), "distinct pointers");
            Assert.That(objects, Has.None.EqualTo((nint)0));
            for (int i = 0; i < objects.Length; i++)
            {
                Assert.That(allocator.UsableSize((void*)objects[i]), Is.GreaterThanOrEqualTo((nuint)size));
                Fill((void*)objects[i], size, (ulong)i);
            }
            for (int i = 0; i < objects.Length; i++)
                Assert.That(Holds((void*)objects[i], size, (ulong)i), Is.True, "no two overlap");
            allocator.FreeBulk(objects);
        });
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void FreeBulk_WithBadPointersAmongGoodOnes_FreesTheGoodOnesAndReportsTheFirstBad()
    {
        using NumaAllocator allocator = Create(nodes: 1);
        long[] initial = FreePages(allocator);
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            var objects = new nint[40];
            allocator.AllocateBulk(64, objects);
            long local = 0;
            var batch = new List<nint>(objects[..20]) { (nint)(&local), 0, (nint)((byte*)objects[20] + 8) };
            batch.AddRange(objects[20..]);
            batch.Add(objects[5]); // freed earlier in this very call
            var e = Assert.Throws<InvalidOperationException>(() => allocator.FreeBulk(batch.ToArray()));
            Assert.That(e!.Message, Does.Contain(((nuint)(&local)).ToString("X", System.Globalization.CultureInfo.InvariantCulture)),
                "the first bad pointer is the one reported");
            Assert.That(allocator.Heap.BadFrees, Is.EqualTo(3), "each bad pointer counted once");
        });
        AssertReconciled(allocator, initial); // every good pointer was freed, once
    }

    [Test]
    public void AllocateBulk_WhenMemoryRunsOut_ThrowsAndLeavesNothingAllocated()
    {
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 16, normalMaxMiB: 16);
        long[] initial = FreePages(allocator);
        RunOnCpu(CpuOf(allocator, 0), () =>
        {
            var objects = new nint[2000]; // 2000 x 16 KiB: twice what the zone can ever hold
            Assert.Throws<OutOfMemoryException>(() => allocator.AllocateBulk(16 << 10, objects));
            Assert.That(objects, Has.All.EqualTo((nint)0), "the caller holds nothing");
            var fits = new nint[100];
            allocator.AllocateBulk(16 << 10, fits); // and what fits still works
            allocator.FreeBulk(fits);
        });
        AssertReconciled(allocator, initial);
    }

    [Test, Category("Stress"), CancelAfter(300_000)]
    public void BulkBatches_FreedOnOtherThreads_WhileCachesAreDrained_LoseNothing(CancellationToken token)
    {
        using NumaAllocator allocator = Create(nodes: 2, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        ObjectHeap heap = allocator.Heap;
        var handoff = new ConcurrentQueue<(nint[] Objects, uint Size, ulong Seed)>();
        long allocated = 0, freed = 0;
        int stop = 0;
        var drainer = new Thread(() =>
        {
            for (int i = 0; Volatile.Read(ref stop) == 0; i++)
            {
                if (i % 2 == 0)
                    heap.DrainCaches(5_000);
                else
                    heap.ReleaseEmptySlabs(_ => true);
                Thread.Yield();
            }
        });
        drainer.Start();

        void FreeChecked((nint[] Objects, uint Size, ulong Seed) batch)
        {
            for (int i = 0; i < batch.Objects.Length; i++)
            {
                if (!Holds((void*)batch.Objects[i], batch.Size, batch.Seed + (ulong)i))
                    throw new AssertionException($"a {batch.Size} B object lost its contents");
            }
            fixed (nint* ptrs = batch.Objects)
                FreeBulk(heap, (void**)ptrs, (nuint)batch.Objects.Length);
            Interlocked.Add(ref freed, batch.Objects.Length);
        }

        try
        {
            RunThreads(s_threads, id =>
            {
                VirtualCpu.Set(CpuOf(allocator, id % 2));
                var random = new Random(id);
                for (int round = 0; round < 3_000 && !token.IsCancellationRequested; round++)
                {
                    uint size = (uint)random.Next(1, 2049);
                    var objects = new nint[random.Next(1, 65)];
                    ulong seed = ((ulong)id << 40) | ((ulong)round << 8);
                    fixed (nint* into = objects)
                    {
                        if (heap.AllocateSmallBulk(size, (void**)into, (nuint)objects.Length) != (nuint)objects.Length)
                            throw new AssertionException("a bulk allocation fell short with memory to spare");
                    }
                    Interlocked.Add(ref allocated, objects.Length);
                    for (int i = 0; i < objects.Length; i++)
                        Fill((void*)objects[i], size, seed + (ulong)i);
                    handoff.Enqueue((objects, size, seed));
                    // Free batches some thread (often another, on the other node) allocated,
                    // keeping a few dozen in flight: live memory stays far below the zones' limit.
                    while (handoff.Count > 4 * s_threads && handoff.TryDequeue(out var batch))
                        FreeChecked(batch);
                }
            });
            while (handoff.TryDequeue(out var batch))
                FreeChecked(batch);
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            drainer.Join();
        }

        Assert.That(freed, Is.EqualTo(allocated), "every object freed exactly once");
        Assert.That(heap.BadFrees + heap.Slabs.DoubleFrees, Is.Zero);
        AssertReconciled(allocator, initial);
        var c = heap.Registry.Counters;
        Assert.That(c.DoneRemotely + c.DoneByOwner + c.Coalesced, Is.EqualTo(c.Requests), "every drain request ran exactly once");
    }
}
