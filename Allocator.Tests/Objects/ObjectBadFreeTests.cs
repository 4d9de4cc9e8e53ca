using Numalloc.Objects;
using Numalloc.Pages;
using Numalloc.Tests.Caches;
using static Numalloc.Tests.Objects.ObjectTestSupport;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Objects;

/// <summary>
/// Every bad input is reported (InvalidOperationException for bad pointers, ArgumentException for bad
/// arguments), and afterwards a full allocate/free cycle still reconciles: the heap stayed consistent.
/// </summary>
[NonParallelizable]
public sealed unsafe class ObjectBadFreeTests
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

    // After the bad input: a cycle of every kind of size on both nodes, then everything back where it was.
    private void AssertFullCycleReconciles()
    {
        var held = new List<nint>();
        for (nuint size = 1; size < 70_000; size = (size * 3) + 1)
        {
            void* p = _allocator.Allocate(size);
            Fill(p, size, size);
            held.Add((nint)p);
            held.Add((nint)_allocator.AllocateOnNode(size, 1));
        }
        held.Add((nint)_allocator.Allocate(5 << 20));
        for (int i = 0; i < held.Count; i += 2)
        {
            nuint size = _allocator.UsableSize((void*)held[i]);
            Assert.That(_allocator.NodeOf((void*)held[i]), Is.Not.EqualTo(-1));
        }
        foreach (nint p in held)
            _allocator.Free((void*)p);
        AssertReconciled(_allocator, _initialFree);
    }

    private void AssertBadFree(void* p, string fragment)
    {
        var e = Assert.Throws<InvalidOperationException>(() => _allocator.Free(p));
        Assert.That(e!.Message, Does.Contain(fragment));
        Assert.That(e.Message, Does.Contain(((nuint)p).ToString("X", System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void FreeingAPointerThatIsNotOurs_IsReported()
    {
        long local = 0;
        AssertBadFree(&local, "not a pointer this allocator handed out");
        void* foreign = NativeMemory.Alloc(64);
        AssertBadFree(foreign, "not a pointer this allocator handed out");
        NativeMemory.Free(foreign);
        using NumaAllocator other = Create();
        void* others = other.Allocate(64);
        AssertBadFree(others, "not a pointer this allocator handed out");
        other.Free(others);
        Assert.That(_allocator.Heap.BadFrees, Is.EqualTo(3));
        AssertFullCycleReconciles();
    }

    [Test]
    public void FreeingAnInteriorPointer_IsReported_ForSmallAndLargeAllocations()
    {
        byte* small = (byte*)_allocator.Allocate(100);
        AssertBadFree(small + 8, "interior pointer");
        AssertBadFree(small + 1, "interior pointer");
        byte* large = (byte*)_allocator.Allocate(100_000);
        AssertBadFree(large + 4096, "interior pointer");
        AssertBadFree(large + 16, "interior pointer");
        Assert.Throws<InvalidOperationException>(() => _allocator.UsableSize(small + 8));
        _allocator.Free(small);
        _allocator.Free(large);
        AssertFullCycleReconciles();
    }

    [Test]
    public void APageLevelDoubleFree_IsReportedAtOnce_ForLargeAndHugeAllocations()
    {
        void* large = _allocator.Allocate(200_000);
        _allocator.Free(large);
        AssertBadFree(large, "double free");
        void* huge = _allocator.Allocate(6 << 20);
        _allocator.Free(huge);
        AssertBadFree(huge, "not a pointer this allocator handed out");
        AssertFullCycleReconciles();
    }

    [Test]
    public void FreeingAnObjectOfAReleasedSlab_IsReported_FromAnyOfItsPages_AndNeverCached()
    {
        // The free fast path trusts a page's Flags without looking at the slab's head page: this holds
        // only because a released slab's pages (tail pages included) no longer name a class.
        int sizeClass = Enumerable.Range(0, ObjectClassTable.Count).First(c => ObjectClassTable.Info[c].SlabOrder >= 2);
        var size = (nuint)ObjectClassTable.Info[sizeClass].Size;
        var held = new List<nint>();
        for (int i = 0; i < ObjectClassTable.Info[sizeClass].ObjectsPerSlab; i++)
            held.Add((nint)_allocator.Allocate(size));
        nint head = held.Min(); // the slab's first object: one slab's worth was taken from a fresh heap
        nint onTailPage = held.First(p => (p - head) >= HeapLayout.PageSize * 2);
        foreach (nint p in held)
            _allocator.Free((void*)p);
        Assert.That(_allocator.Heap.DrainCaches(), Is.True);
        Assert.That(_allocator.Heap.ReleaseEmptySlabs(_ => true), Is.GreaterThan(0));
        long badFrees = _allocator.Heap.BadFrees;

        // Every page of the released slab, the tail pages too, stopped naming a class: what lets the
        // free fast path skip the slab's head page.
        PageHeap pages = _allocator.Heap.Pages.Heap;
        Assert.That(pages.TryLocate((void*)head, out PageLocation first), Is.True);
        for (int page = first.Page; page < first.Page + (1 << ObjectClassTable.Info[sizeClass].SlabOrder); page++)
            Assert.That((uint)(pages.Descriptor(page).Flags - 1), Is.GreaterThanOrEqualTo((uint)ObjectClassTable.Count), $"page {page - first.Page} of the slab");

        Assert.Throws<InvalidOperationException>(() => _allocator.Free((void*)onTailPage));
        Assert.Throws<InvalidOperationException>(() => _allocator.Free((void*)head));
        Assert.That(_allocator.Heap.BadFrees, Is.EqualTo(badFrees + 2));
        Assert.That(_allocator.Heap.CachedObjects(), Is.Zero, "neither pointer entered a magazine");
        AssertReconciled(_allocator, _initialFree);
        AssertFullCycleReconciles();
    }

    [Test]
    public void ADoubleFreeIntoTheSameMagazine_IsReportedAtOnce_ByTheFreeKey()
    {
        void* p = _allocator.Allocate(48);
        void* q = _allocator.Allocate(48);
        _allocator.Free(p);
        _allocator.Free(q);
        AssertBadFree(p, "double free");
        AssertBadFree(q, "double free");
        // A live object whose first word happens to hold the key is not mistaken for a freed one.
        void* r = _allocator.Allocate(48);
        void* s = _allocator.Allocate(48);
        Buffer.MemoryCopy(q, r, 8, 8); // q is free: its first word is the key
        _allocator.Free(r);
        _allocator.Free(s);
        AssertFullCycleReconciles();
    }

    [Test]
    public void ObjectsFrom2KiBUp_KeepTheFreeKeyInALineChosenByTheirPage_AndADoubleFreeIsStillReportedAtOnce()
    {
        const ulong pattern = 0xA5A5A5A5A5A5A5A5;
        var objects = new List<nint>();
        for (int i = 0; i < 32; i++)
        {
            void* p = _allocator.Allocate(4096);
            new Span<ulong>(p, 512).Fill(pattern);
            objects.Add((nint)p);
        }
        var lines = new HashSet<nint>();
        foreach (nint p in objects)
        {
            _allocator.Free((void*)p);
            // The free wrote one word, the key: in the first 2 KiB, at the line of the object's page.
            int[] changed = Enumerable.Range(0, 512).Where(w => ((ulong*)p)[w] != pattern).ToArray();
            nint keyOffset = (p >> 6) & ObjectClassTable.KeyColorMask;
            Assert.That(changed, Is.EqualTo(new[] { (int)(keyOffset / 8) }), $"object {p:X}");
            lines.Add(keyOffset);
        }
        Assert.That(lines, Has.Count.GreaterThanOrEqualTo(8), "32 objects on 32 pages: their keys spread over the lines");

        // Handed out again, each has its key word cleared and nothing else touched.
        var again = new List<nint>();
        for (int i = 0; i < 32; i++)
            again.Add((nint)_allocator.Allocate(4096));
        foreach (nint p in again.Intersect(objects))
        {
            nint keyOffset = (p >> 6) & ObjectClassTable.KeyColorMask;
            Assert.That(((ulong*)p)[keyOffset / 8], Is.Zero, $"object {p:X}: key cleared");
            Assert.That(((ulong*)p)[(keyOffset / 8) ^ 1], Is.EqualTo(pattern), $"object {p:X}: its neighbour word untouched");
        }
        Assert.That(again.Intersect(objects).Count(), Is.GreaterThan(0), "the magazine hands back the objects it holds");

        void* twice = (void*)again[0];
        _allocator.Free(twice);
        AssertBadFree(twice, "double free");
        foreach (nint p in again.Skip(1))
            _allocator.Free((void*)p);

        // Below 2 KiB (the class below it is 1920 B) the key stays in the first word.
        void* small = _allocator.Allocate(1920);
        new Span<ulong>(small, 1920 / 8).Fill(pattern);
        _allocator.Free(small);
        Assert.That(Enumerable.Range(0, 1920 / 8).Where(w => ((ulong*)small)[w] != pattern).ToArray(), Is.EqualTo(new[] { 0 }));
        AssertFullCycleReconciles();
    }

    [Test]
    public void ADoubleFreeThroughTwoThreads_IsReportedWhenTheObjectReachesItsSlab()
    {
        void* p = _allocator.Allocate(64);
        _allocator.Free(p); // into this thread's magazine
        RunOnCpu(-1, () => _allocator.Free(p)); // into another thread's: its key is not there
        // Both copies reach the slab: the second finds its bit set, counts it, ignores it, and the
        // thread that flushed it hears about it.
        var e = Assert.Throws<InvalidOperationException>(() => _allocator.Trim());
        Assert.That(e!.Message, Does.Contain("already free when it reached its slab"));
        Assert.That(_allocator.Heap.Slabs.DoubleFrees, Is.EqualTo(1));
        AssertFullCycleReconciles();
    }

    [Test]
    public void UnderCheck_ADoubleFreeThroughTwoThreads_IsReportedAtOnce()
    {
        using NumaAllocator checking = Create(nodes: 1, onBadFree: BadFreeAction.Check);
        long[] initial = FreePages(checking);
        void* p = checking.Allocate(64);
        checking.Free(p);
        Exception? second = null;
        RunOnCpu(-1, () => second = Assert.Throws<InvalidOperationException>(() => checking.Free(p)));
        Assert.That(second!.Message, Does.Contain("double free"));
        Assert.That(checking.Heap.Slabs.DoubleFrees, Is.Zero, "caught before it reached a cache");
        var held = new List<nint>();
        for (int i = 0; i < 5000; i++)
            held.Add((nint)checking.Allocate((nuint)(i % 3000)));
        foreach (nint q in held)
            checking.Free((void*)q);
        AssertReconciled(checking, initial);
    }

    [Test]
    public void UsableSizeAndReallocate_OfABadPointer_AreReported()
    {
        void* foreign = NativeMemory.Alloc(16);
        Assert.Throws<InvalidOperationException>(() => _allocator.UsableSize(foreign));
        Assert.Throws<InvalidOperationException>(() => _allocator.Reallocate(foreign, 100));
        NativeMemory.Free(foreign);
        void* large = _allocator.Allocate(50_000);
        _allocator.Free(large);
        Assert.Throws<InvalidOperationException>(() => _allocator.Reallocate(large, 100));
        AssertFullCycleReconciles();
    }

    [Test]
    public void BadArguments_ThrowArgumentExceptions_AndAllocateNothing()
    {
        Assert.Throws<ArgumentException>(() => _allocator.Allocate(64, 3));
        Assert.Throws<ArgumentException>(() => _allocator.Allocate(64, 24));
        Assert.Throws<ArgumentException>(() => _allocator.TryAllocate(64, 12));
        Assert.Throws<ArgumentException>(() => _allocator.Allocate(nuint.MaxValue));
        Assert.Throws<ArgumentException>(() => _allocator.Allocate(nuint.MaxValue - 4095, 4096));
        Assert.Throws<ArgumentException>(() => _allocator.TryAllocate((nuint)nint.MaxValue + 1));
        Assert.Throws<ArgumentException>(() => _allocator.Reallocate(null, nuint.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => _allocator.AllocateOnNode(64, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => _allocator.AllocateOnNode(64, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _allocator.AllocateSpan<int>(-1));
        AssertFullCycleReconciles();
    }

    [Test]
    public void AHugeButRepresentableSize_IsOutOfMemory_NotAnArgumentError()
    {
        nuint tooBig = (nuint)1 << 60;
        Assert.Throws<OutOfMemoryException>(() => _allocator.Allocate(tooBig));
        Assert.That(_allocator.TryAllocate(tooBig) == null, Is.True);
        AssertFullCycleReconciles();
    }

    [Test]
    public void UnderAbort_ABadFreeEndsTheProcess_WithTheMessage()
    {
        (int exitCode, string output) = ChildProbe.Run("abort-bad-free", new Dictionary<string, string>());
        Assert.That(exitCode, Is.Not.Zero, output);
        Assert.That(output, Does.Contain("numalloc: Bad free of 0x"));
        Assert.That(output, Does.Contain("double free"));
        Assert.That(output, Does.Not.Contain("survived"));
    }

    /// <summary>The child side of <see cref="UnderAbort_ABadFreeEndsTheProcess_WithTheMessage"/>.</summary>
    internal static int RunAbortOnBadFree()
    {
        using NumaAllocator allocator = Create(nodes: 1, onBadFree: BadFreeAction.Abort);
        void* p = allocator.Allocate(64);
        allocator.Free(p);
        allocator.Free(p);
        Console.WriteLine("survived");
        return 0;
    }
}
