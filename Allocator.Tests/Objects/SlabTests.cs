using Numalloc.Objects;
using Numalloc.Pages;
using Numalloc.Tests.Pages;
using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests.Objects;

/// <summary>Slab geometry and layout, slab lifetime with hysteresis, and the hot-remove hooks of the object layer.</summary>
[NonParallelizable]
public sealed unsafe class SlabTests
{
    private NumaAllocator _allocator = null!;
    private long[] _initialFree = null!;

    [SetUp]
    public void SetUp()
    {
        _allocator = Create(nodes: 2, normalMiB: 16, normalMaxMiB: 16);
        _initialFree = FreePages(_allocator);
    }

    [TearDown]
    public void TearDown() => _allocator.Dispose();

    private ObjectHeap Heap => _allocator.Heap;

    [Test]
    public void Layout_NativeRecordsHaveTheirDocumentedSizesAndOffsets()
    {
        Assert.That(sizeof(SlabMeta), Is.EqualTo(SlabMeta.Bytes));
        Assert.That(Marshal.OffsetOf<SlabMeta>(nameof(SlabMeta.Free)), Is.EqualTo((nint)64), "the bitmap fills the second line");
        Assert.That(sizeof(ObjectClassInfo), Is.EqualTo(16));
        Assert.That(ObjectClassTable.MagazineStrideBytes, Is.EqualTo(Numalloc.Caches.MagazineSet.StrideBytes(ObjectClassTable.MaxMagazineCapacity)));
        Assert.That(sizeof(Numalloc.Caches.Magazine), Is.EqualTo(8));
        Assert.That(Marshal.OffsetOf<Numalloc.Caches.Magazine>(nameof(Numalloc.Caches.Magazine.Capacity)), Is.EqualTo((nint)4));
    }

    [Test]
    public void EveryClass_HasTheSmallestSlabOfAtLeastTwoObjects()
    {
        for (int c = 0; c < ObjectClassTable.Count; c++)
        {
            ObjectClassInfo info = ObjectClassTable.Info[c];
            Assert.That((int)info.ObjectsPerSlab, Is.GreaterThanOrEqualTo(ObjectClassTable.MinObjectsPerSlab), $"class {c}");
            if (info.SlabOrder > 0)
            {
                // One order less would break a rule: too few objects or more than 1/8 tail waste.
                int smaller = HeapLayout.PageSize << (info.SlabOrder - 1);
                int objects = Math.Min(smaller / info.Size, ObjectClassTable.MaxObjectsPerSlab);
                Assert.That(objects < ObjectClassTable.MinObjectsPerSlab || (smaller - (objects * info.Size)) * 8 > smaller, Is.True, $"class {c} ({info.Size} B)");
            }
        }
        // A sparse large class is pinned by any one live object: 32 KiB objects come two to a 64 KiB slab.
        Assert.That(ObjectClassTable.SlabOrderFor(32 * 1024), Is.EqualTo(4));
        Assert.That(ObjectClassTable.ObjectsPerSlabFor(32 * 1024, 4), Is.EqualTo(2));
    }

    [Test]
    public void EveryClass_CachesAtMostSixBatchesOfTheByteBudget()
    {
        for (int c = 0; c < ObjectClassTable.Count; c++)
        {
            int size = SizeClasses.SizeOf(c);
            int batch = ObjectClassTable.BatchOf(c);
            Assert.That(batch, Is.InRange(1, 32), $"class {c}");
            Assert.That(batch * size, Is.LessThanOrEqualTo(Math.Max(ObjectClassTable.BatchBytes, size)), $"class {c} ({size} B): batch bytes");
            Assert.That(ObjectClassTable.MagazineCapacityOf(c), Is.GreaterThanOrEqualTo(2 * batch).Or.EqualTo(ObjectClassTable.MaxMagazineCapacity), $"class {c}");
            long cachedBytes = (long)(ObjectClassTable.MagazineCapacityOf(c) + ObjectClassTable.CpuCacheHighOf(c)) * size;
            Assert.That(cachedBytes, Is.LessThanOrEqualTo(6L * Math.Max(ObjectClassTable.BatchBytes, size)), $"class {c} ({size} B): magazine + per-CPU cache");
        }
        Assert.That(ObjectClassTable.BatchOf(SizeClasses.ClassOf(512)), Is.EqualTo(32), "small classes keep full batches");
        Assert.That(ObjectClassTable.BatchOf(SizeClasses.ClassOf(4096)), Is.EqualTo(16), "page-sized objects: a bulk call of 32 fits one magazine");
        Assert.That(ObjectClassTable.MagazineCapacityOf(SizeClasses.ClassOf(4096)), Is.EqualTo(32));
        Assert.That(ObjectClassTable.BatchOf(SizeClasses.ClassOf(32 * 1024)), Is.EqualTo(2));
    }

    [Test]
    public void EveryClass_HasASlabOfAtMost512Objects_AtMostOneEighthWaste_AndExactMagic()
    {
        for (int c = 0; c < ObjectClassTable.Count; c++)
        {
            ObjectClassInfo info = ObjectClassTable.Info[c];
            int slabBytes = HeapLayout.PageSize << info.SlabOrder;
            Assert.That(info.Size, Is.EqualTo(SizeClasses.SizeOf(c)));
            Assert.That((int)info.ObjectsPerSlab, Is.InRange(1, ObjectClassTable.MaxObjectsPerSlab), $"class {c}");
            Assert.That((int)info.ObjectsPerSlab, Is.EqualTo(Math.Min(slabBytes / info.Size, 512)));
            Assert.That((slabBytes - (info.ObjectsPerSlab * info.Size)) * 8, Is.LessThanOrEqualTo(slabBytes), $"class {c} ({info.Size} B): tail waste");
            Assert.That(ObjectClassTable.ClassOfMagazineOffset(info.MagazineOffset), Is.EqualTo(c));
            Assert.That(ObjectClassTable.MagazineCapacityOf(c), Is.LessThanOrEqualTo(ObjectClassTable.MaxMagazineCapacity));
            for (int i = 0; i < info.ObjectsPerSlab; i++)
            {
                ulong offset = (ulong)i * (ulong)info.Size;
                Assert.That((offset * info.Magic) >> 32, Is.EqualTo((ulong)i), $"class {c}: object {i}");
            }
        }
        // The free key leaves the first word from 2 KiB up (ObjectHeap's key places), and stays inside the object.
        Assert.That(SizeClasses.SizeOf(ObjectClassTable.FirstKeyColoredClass), Is.EqualTo(2048));
        Assert.That(SizeClasses.SizeOf(ObjectClassTable.FirstKeyColoredClass - 1), Is.LessThan(2048));
        Assert.That(ObjectClassTable.Info[ObjectClassTable.FirstKeyColoredClass].MagazineOffset, Is.EqualTo(ObjectClassTable.FirstKeyColoredMagazineOffset));
        Assert.That(ObjectClassTable.KeyColorMask + sizeof(ulong), Is.LessThanOrEqualTo(2048));
        for (int size = 0; size <= SizeClasses.MaxSmallSize; size++)
        {
            int offset = ObjectClassTable.MagazineOffsetOfSize8[(size + 7) >> 3];
            Assert.That(ObjectClassTable.ClassOfMagazineOffset(offset), Is.EqualTo(SizeClasses.ClassOf((nuint)Math.Max(size, 1))), $"size {size}");
        }
    }

    [Test]
    public void AFreedSlab_StaysForReuse_UpToTheHysteresis_AndTrimGivesItBack()
    {
        const int SizeClass = 7; // 64 B
        SlabCache cache = Heap.Slabs.Class(SizeClass);
        int perSlab = cache.ObjectsPerSlab;
        var held = new List<nint>();
        for (int i = 0; i < perSlab * 4; i++)
            held.Add((nint)_allocator.Allocate(64));
        Assert.That(cache.NodeAt(0).Slabs, Is.GreaterThanOrEqualTo(4));
        foreach (nint p in held)
            _allocator.Free((void*)p);
        Assert.That(Heap.DrainCaches(), Is.True);
        SlabCacheNode node = cache.NodeAt(0);
        Assert.That(node.Slabs, Is.EqualTo(SlabHeap.KeepEmptySlabs), "empty slabs beyond the hysteresis went back at once");
        Assert.That(node.EmptyCount, Is.EqualTo(SlabHeap.KeepEmptySlabs));
        long carved = Heap.Slabs.SlabsCarved;
        void* again = _allocator.Allocate(64);
        Assert.That(Heap.Slabs.SlabsCarved, Is.EqualTo(carved), "the kept slab serves the next allocation");
        _allocator.Free(again);
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void AnObjectFlushedTwiceToItsSlab_IsCountedOnce_AndTheSlabStaysConsistent()
    {
        SlabCache cache = Heap.Slabs.Class(3); // 32 B
        nint[] taken = new nint[4];
        Assert.That(cache.TakeFromNode(1, taken), Is.EqualTo(4));
        Assert.That(taken.Select(p => _allocator.NodeOf((void*)p)), Has.All.EqualTo(1));
        long freeBefore = cache.NodeAt(1).FreeObjects;
        cache.FlushBatch([taken[0], taken[1], taken[0]]);
        Assert.That(Heap.Slabs.DoubleFrees, Is.EqualTo(1));
        Assert.That(cache.NodeAt(1).FreeObjects, Is.EqualTo(freeBefore + 2), "the duplicate was ignored");
        Assert.That(Heap.Slabs.TakeReport(out nint reported), Is.True);
        Assert.That(reported, Is.EqualTo(taken[0]));
        cache.FlushBatch(taken.AsSpan(2));
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void DrainCaches_ReachesAnIdleThreadsMagazines_AndEveryPerCpuCache()
    {
        var parked = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var idle = new Thread(() =>
        {
            var held = new List<nint>();
            for (int i = 0; i < 300; i++)
                held.Add((nint)_allocator.Allocate((nuint)(16 * (1 + (i % 9)))));
            foreach (nint p in held)
                _allocator.Free((void*)p);
            parked.Set();
            release.Wait();
        });
        idle.Start();
        parked.Wait();
        Assert.That(Heap.Registry.CountMagazineItems(0) + Heap.Registry.CountMagazineItems(1) + Heap.Registry.CountMagazineItems(5), Is.GreaterThan(0));
        Assert.That(Heap.DrainCaches(10_000), Is.True, "an idle owner is drained by the requester");
        Assert.That(Heap.CachedObjects(), Is.Zero);
        Assert.That(Heap.Registry.Counters.DoneRemotely, Is.GreaterThan(0));
        Assert.That(Heap.ReleaseEmptySlabs(_ => true), Is.GreaterThan(0));
        Assert.That(FreePages(_allocator), Is.EqualTo(_initialFree), "everything is back while the owner still lives");
        release.Set();
        idle.Join();
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void ReleaseEmptySlabs_GivesBackOnlyTheSlabsOfTheBlocksItIsAskedFor()
    {
        // Empty slabs kept on both nodes (one per class and node): release node 1's blocks only.
        foreach (int node in new[] { 0, 1 })
        {
            for (int c = 0; c < 10; c++)
                _allocator.Free(_allocator.AllocateOnNode((nuint)SizeClasses.SizeOf(c), node));
        }
        Heap.DrainCaches();
        HeapLayout layout = Heap.Pages.Heap.Layout;
        int firstOfNode1 = layout.FirstBlockOfNode(1);
        long released = Heap.ReleaseEmptySlabs(block => block >= firstOfNode1);
        Assert.That(released, Is.GreaterThan(0));
        for (int c = 0; c < 10; c++)
        {
            Assert.That(Heap.Slabs.Class(c).NodeAt(1).Slabs, Is.Zero, $"class {c}: node 1's slab went back");
            Assert.That(Heap.Slabs.Class(c).NodeAt(0).Slabs, Is.EqualTo(1), $"class {c}: node 0's kept slab stayed");
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void AnIsolatedBlock_CanBeEmptiedOfSlabs_ByDrainAndRelease_WhileItsObjectsAreFreedLate()
    {
        PageHeap pageHeap = Heap.Pages.Heap;
        var held = new List<nint>();
        for (int i = 0; i < 3000; i++)
            held.Add((nint)_allocator.Allocate((nuint)(8 + (i % 40) * 8)));
        Assert.That(pageHeap.TryLocate((void*)held[0], out PageLocation where), Is.True);
        Zone zone = pageHeap.ZoneOf(where.Node, where.Zone);
        // Free half before the isolation: they sit in the thread's magazine and the per-CPU caches.
        foreach (nint p in held.Take(1500))
            _allocator.Free((void*)p);

        Assert.That(zone.TryIsolateBlock(where.Block), Is.True);
        Assert.That(Heap.DrainCaches(), Is.True);
        Heap.ReleaseEmptySlabs(block => block == where.Block);
        // The other half is freed after the drain: straight to the slabs, never into a cache.
        foreach (nint p in held.Skip(1500))
            _allocator.Free((void*)p);
        Assert.That(Heap.CachedObjects(), Is.Zero, "objects of an isolated block never entered a cache");
        Heap.ReleaseEmptySlabs(block => block == where.Block);
        Assert.That(zone.CountIsolatedFree(where.Block), Is.EqualTo(TestHeaps.PagesPerBlock), "every page of the block is free: it could go offline");

        // New objects never come from the isolated block.
        var fresh = new List<nint>();
        for (int i = 0; i < 2000; i++)
        {
            void* p = _allocator.Allocate(64);
            Assert.That(pageHeap.TryLocate(p, out PageLocation at) && at.Block != where.Block, Is.True);
            fresh.Add((nint)p);
        }
        foreach (nint p in fresh)
            _allocator.Free((void*)p);
        Assert.That(zone.TryUnisolateBlock(where.Block), Is.True);
        AssertReconciled(_allocator, _initialFree);
    }
}
