using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests.Objects;

/// <summary>Every size from 1 to 70 000 bytes and a sample up to 64 MiB: usable size, alignment, Reallocate.</summary>
[NonParallelizable]
public sealed unsafe class SizeRangeTests
{
    private NumaAllocator _allocator = null!;
    private long[] _initialFree = null!;

    [SetUp]
    public void SetUp()
    {
        _allocator = Create(nodes: 1, normalMiB: 128, normalMaxMiB: 256);
        _initialFree = FreePages(_allocator);
    }

    [TearDown]
    public void TearDown() => _allocator.Dispose();

    private static IEnumerable<nuint> HugeSample()
    {
        foreach (long size in new[] { 4 * MiB, (4 * MiB) + 1, (5 * MiB) + 12345, 16 * MiB, (33 * MiB) - 7, 64 * MiB })
            yield return (nuint)size;
    }

    [Test]
    public void EverySizeFromOneTo70000_IsUsableAndKeepsItsContents()
    {
        for (nuint size = 1; size <= 70_000; size++)
        {
            byte* p = (byte*)_allocator.Allocate(size);
            Assert.That(_allocator.UsableSize(p), Is.GreaterThanOrEqualTo(size), $"size {size}");
            Assert.That((long)((nuint)p % 8), Is.Zero, $"size {size}: at least 8-byte aligned");
            if (size % 16 == 0)
                Assert.That((long)((nuint)p % 16), Is.Zero, $"size {size}: a multiple of 16 is 16-byte aligned");
            p[0] = 1;
            p[size - 1] = 2;
            _allocator.Free(p);
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void EverySizeFromOneTo70000_IsHeldAtOnce_WithoutOverlap()
    {
        // Many sizes live at the same time: each one's pattern must survive the others' writes.
        var live = new List<(nint P, nuint Size)>();
        for (nuint size = 1; size <= 70_000; size += size < 2048 ? 1u : 37u)
        {
            void* p = _allocator.Allocate(size);
            Fill(p, size, size);
            live.Add(((nint)p, size));
        }
        foreach ((nint p, nuint size) in live)
        {
            Assert.That(Holds((void*)p, size, size), Is.True, $"size {size} kept its contents");
            _allocator.Free((void*)p);
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void ASampleUpTo64MiB_IsUsable_OnItsNode_AndKeepsItsContents()
    {
        foreach (nuint size in HugeSample().Concat([(nuint)40_000, 1u << 20, (nuint)(3 * MiB) + 5]))
        {
            void* p = _allocator.Allocate(size);
            Assert.That(_allocator.UsableSize(p), Is.GreaterThanOrEqualTo(size), $"size {size}");
            Assert.That(_allocator.NodeOf(p), Is.Zero, $"size {size}");
            Fill(p, size, size);
            Assert.That(Holds(p, size, size), Is.True, $"size {size}");
            _allocator.Free(p);
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void EveryPowerOfTwoAlignmentUpTo1MiB_IsHonoured_ForSmallLargeAndHugeSizes()
    {
        nuint[] sizes = [0, 1, 7, 8, 9, 24, 100, 1000, 4095, 4096, 5000, 32_767, 32_768, 32_769, 65_536, 70_000, 1_000_000, (nuint)(4 * MiB) - 1, (nuint)(5 * MiB)];
        for (int shift = 0; shift <= 20; shift++)
        {
            nuint alignment = (nuint)1 << shift;
            foreach (nuint size in sizes)
            {
                void* p = _allocator.Allocate(size, alignment);
                Assert.That((long)((nuint)p % alignment), Is.Zero, $"size {size}, alignment {alignment}");
                Assert.That(_allocator.UsableSize(p), Is.GreaterThanOrEqualTo(size), $"size {size}, alignment {alignment}");
                Fill(p, size, size + alignment);
                Assert.That(Holds(p, size, size + alignment), Is.True);
                _allocator.Free(p);
            }
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void EverySizeFromOneTo70000_IsAligned_ForAStrideOfAlignments()
    {
        // Every size once, with the alignments taking turns, so each alignment meets every kind of size.
        for (nuint size = 1; size <= 70_000; size++)
        {
            nuint alignment = (nuint)1 << (int)(size % 21);
            void* p = _allocator.Allocate(size, alignment);
            Assert.That((long)((nuint)p % alignment), Is.Zero, $"size {size}, alignment {alignment}");
            Assert.That(_allocator.UsableSize(p), Is.GreaterThanOrEqualTo(size));
            _allocator.Free(p);
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Reallocate_GrowsAndShrinksThroughEveryKind_KeepingTheContents()
    {
        nuint[] path = [1, 8, 9, 100, 128, 129, 1000, 4096, 20_000, 32_768, 32_769, 40_000, 70_000, 200_000,
            (nuint)(4 * MiB), (nuint)(6 * MiB), (nuint)(6 * MiB) - 1, 70_000, 50_000, 32_768, 1000, 16, 1];
        void* p = _allocator.Allocate(path[0]);
        Fill(p, path[0], 99);
        nuint previous = path[0];
        foreach (nuint size in path.Skip(1))
        {
            void* q = _allocator.Reallocate(p, size);
            nuint kept = Math.Min(previous, size);
            Assert.That(Holds(q, kept, 99, previous), Is.True, $"{previous} -> {size}: the first {kept} bytes survived");
            Assert.That(_allocator.UsableSize(q), Is.GreaterThanOrEqualTo(size));
            Fill(q, size, 99);
            p = q;
            previous = size;
        }
        _allocator.Free(p);
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Reallocate_OfEverySizeUpTo70000_ByASteppedGrowthAndShrink_KeepsTheContents()
    {
        for (nuint size = 1; size <= 70_000; size += 61)
        {
            void* p = _allocator.Allocate(size);
            Fill(p, size, size);
            nuint bigger = (size * 3) + 5;
            p = _allocator.Reallocate(p, bigger);
            Assert.That(Holds(p, size, size), Is.True, $"{size} -> {bigger}");
            nuint smaller = (size / 2) + 1;
            p = _allocator.Reallocate(p, smaller);
            Assert.That(Holds(p, smaller, size, size), Is.True, $"{bigger} -> {smaller}");
            _allocator.Free(p);
        }
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Reallocate_WithinASizeClass_StaysInPlace()
    {
        void* p = _allocator.Allocate(100); // class 104
        Assert.That(_allocator.Reallocate(p, 104) == p, Is.True);
        Assert.That(_allocator.Reallocate(p, 97) == p, Is.True);
        void* large = _allocator.Allocate(100_000); // 25 pages
        Assert.That(_allocator.Reallocate(large, 90_000) == large, Is.True, "a page run that still fits and is used more than half");
        _allocator.Free(p);
        _allocator.Free(large);
        AssertReconciled(_allocator, _initialFree);
    }
}
