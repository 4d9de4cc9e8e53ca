using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>Page-level frees the heap must refuse without changing anything.</summary>
public sealed unsafe class BadFreeTests
{
    private PageHeap _heap = null!;
    private Zone _normal = null!;

    [SetUp]
    public void SetUp()
    {
        _heap = TestHeaps.Heap(1, TestHeaps.Options(4, 8));
        _normal = _heap.ZoneOf(0, ZoneType.Normal);
    }

    [TearDown]
    public void TearDown() => _heap.Dispose();

    private byte* AllocOrder2()
    {
        int page = _normal.TryAllocate(2, PageAllocFlags.None);
        Assert.That(page, Is.Not.EqualTo(PageDescriptor.NoPage));
        return (byte*)_heap.AddressOfPage(page);
    }

    private void AssertRefused(void* p, int order, string fragment)
    {
        long freeBefore = _normal.Snapshot().FreePages;
        var ex = Assert.Throws<InvalidOperationException>(() => _heap.FreePages(p, order));
        Assert.That(ex!.Message, Does.Contain(fragment));
        Assert.That(ex.Message, Does.Contain(((nuint)p).ToString("X", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(_normal.Snapshot().FreePages, Is.EqualTo(freeBefore), "the heap is untouched");
    }

    [Test]
    public void FreeingAPointerNotInTheHeap_Throws()
    {
        long local = 0;
        AssertRefused(&local, 0, "not a pointer into the page heap");
    }

    [Test]
    public void FreeingAnUnalignedPointer_Throws() => AssertRefused(AllocOrder2() + 8, 2, "not page-aligned");

    [Test]
    public void FreeingAnInteriorPage_Throws() => AssertRefused(AllocOrder2() + 4096, 2, "interior page");

    [Test]
    public void FreeingWithTheWrongOrder_Throws()
    {
        byte* p = AllocOrder2();
        AssertRefused(p, 1, "wrong order");
        AssertRefused(p, 3, "wrong order");
    }

    [Test]
    public void FreeingTwice_Throws()
    {
        byte* p = AllocOrder2();
        _heap.FreePages(p, 2);
        Assert.Throws<InvalidOperationException>(() => _heap.FreePages(p, 2));
    }

    [Test]
    public void FreeingAPageOfAnAbsentBlock_Throws() =>
        AssertRefused(_heap.Layout.AddressOfBlock(1), 0, "is Absent");

    [Test]
    public void AfterEveryKindOfBadFree_AFullAllocFreeCycleStillReconciles()
    {
        byte* p = AllocOrder2();
        Assert.Throws<InvalidOperationException>(() => _heap.FreePages(p + 4096, 2));
        Assert.Throws<InvalidOperationException>(() => _heap.FreePages(p, 0));
        _heap.FreePages(p, 2);
        Assert.Throws<InvalidOperationException>(() => _heap.FreePages(p, 2));

        List<int> all = TestHeaps.Drain(_normal, 0);
        Assert.That(all.Distinct().Count(), Is.EqualTo(all.Count));
        foreach (int page in all)
            _heap.FreePages(_heap.AddressOfPage(page), 0);
        TestHeaps.AssertReconciled(_heap);
    }
}
