using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>The buddy free lists over a real descriptor table and a real 8 MiB region.</summary>
public sealed unsafe class BuddyAllocatorTests
{
    private const int MaxOrder = 10;
    private const int PageSize = 4096;
    private const int PageCount = 2 << MaxOrder; // two largest blocks
    private PageDescriptor* _pages;
    private byte* _memory;

    [SetUp]
    public void SetUp()
    {
        _pages = (PageDescriptor*)NativeMemory.AllocZeroed((nuint)PageCount, (nuint)sizeof(PageDescriptor));
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)PageCount * PageSize, PageSize);
    }

    [TearDown]
    public void TearDown()
    {
        NativeMemory.Free(_pages);
        NativeMemory.AlignedFree(_memory);
    }

    private BuddyAllocator NewZone()
    {
        var buddy = new BuddyAllocator(_pages, MaxOrder, zone: 0);
        buddy.AddFreeRange(0, PageCount, isolated: false);
        return buddy;
    }

    private static long[] Snapshot(BuddyAllocator buddy) =>
        Enumerable.Range(0, MaxOrder + 1).Select(o => buddy.FreeBlocks(o)).ToArray();

    [Test]
    public void AddFreeRange_OfTwoLargestBlocks_ListsTwoMaxOrderBlocks()
    {
        var buddy = NewZone();
        Assert.That(buddy.FreePages, Is.EqualTo(PageCount));
        Assert.That(buddy.FreeBlocks(MaxOrder), Is.EqualTo(2));
        Assert.That(Enumerable.Range(0, MaxOrder).Sum(o => buddy.FreeBlocks(o)), Is.Zero);
    }

    [Test]
    public void AllocatingEveryOrderZeroPage_ThenFreeingInRandomOrder_RestoresTheInitialCounts()
    {
        var buddy = NewZone();
        long[] before = Snapshot(buddy);
        var taken = new List<int>();
        int page;
        while ((page = buddy.TryAllocate(0, PageState.Allocated)) != PageDescriptor.NoPage)
            taken.Add(page);
        Assert.That(taken, Has.Count.EqualTo(PageCount));
        Assert.That(taken.Distinct().Count(), Is.EqualTo(PageCount), "no page handed out twice");
        Assert.That(buddy.FreePages, Is.Zero);

        var rng = new Random(1234);
        foreach (int p in taken.OrderBy(_ => rng.Next()))
            buddy.Free(p, 0, isolated: false);

        Assert.That(Snapshot(buddy), Is.EqualTo(before));
        Assert.That(buddy.FreePages, Is.EqualTo(PageCount));
    }

    [Test]
    public void EveryBlockOfOrderK_IsAlignedToTwoToTheKPages()
    {
        var buddy = NewZone();
        var rng = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            int order = rng.Next(0, 6);
            int page = buddy.TryAllocate(order, PageState.Allocated);
            if (page == PageDescriptor.NoPage)
                break;
            Assert.That(page & ((1 << order) - 1), Is.Zero, $"order {order} block at page {page}");
            Assert.That(((nuint)(_memory + (long)page * PageSize) - (nuint)_memory) % (nuint)(PageSize << order), Is.EqualTo((nuint)0));
        }
    }

    [Test]
    public void LiveBlocksOfMixedOrders_NeverOverlap()
    {
        var buddy = NewZone();
        var rng = new Random(99);
        var live = new List<(int Page, int Order, byte Tag)>();
        for (int round = 0; round < 3000; round++)
        {
            if (live.Count > 0 && rng.Next(3) == 0)
            {
                int i = rng.Next(live.Count);
                var (p, o, tag) = live[i];
                AssertPattern(p, o, tag);
                buddy.Free(p, o, isolated: false);
                live.RemoveAt(i);
                continue;
            }
            int order = rng.Next(0, 5);
            int page = buddy.TryAllocate(order, PageState.Allocated);
            if (page == PageDescriptor.NoPage)
                continue;
            byte t = (byte)(round % 251 + 1);
            new Span<byte>(_memory + (long)page * PageSize, PageSize << order).Fill(t);
            live.Add((page, order, t));
        }
        foreach (var (p, o, tag) in live)
        {
            AssertPattern(p, o, tag);
            buddy.Free(p, o, isolated: false);
        }
        Assert.That(buddy.FreePages, Is.EqualTo(PageCount));
        Assert.That(buddy.FreeBlocks(MaxOrder), Is.EqualTo(2), "everything coalesced back");
    }

    private void AssertPattern(int page, int order, byte tag)
    {
        var span = new ReadOnlySpan<byte>(_memory + (long)page * PageSize, PageSize << order);
        Assert.That(span.IndexOfAnyExcept(tag), Is.EqualTo(-1), $"block at page {page} order {order} was overwritten");
    }

    [Test]
    public void MoveRange_ToIsolated_TakesOnlyThatBlocksFreePages_AndBack()
    {
        var buddy = NewZone();
        int half = PageCount / 2;
        int page = buddy.TryAllocate(0, PageState.Allocated);
        long moved = buddy.MoveRange(page < half ? 0 : half, half, toIsolated: true);
        Assert.That(moved, Is.EqualTo(half - 1), "the allocated page stays out");
        Assert.That(buddy.IsolatedFreePages, Is.EqualTo(half - 1));
        Assert.That(buddy.FreePages, Is.EqualTo(half));

        // A free into an isolated block lands on the isolated lists and coalesces there.
        buddy.Free(page, 0, isolated: true);
        Assert.That(buddy.CountIsolatedFree(page < half ? 0 : half, half), Is.EqualTo(half));
        Assert.That(buddy.TryAllocate(MaxOrder, PageState.Allocated), Is.Not.EqualTo(PageDescriptor.NoPage));
        Assert.That(buddy.TryAllocate(0, PageState.Allocated), Is.EqualTo(PageDescriptor.NoPage), "isolated pages are never allocated");

        long removed = buddy.RemoveIsolatedRange(page < half ? 0 : half, half);
        Assert.That(removed, Is.EqualTo(half));
        Assert.That(buddy.IsolatedFreePages, Is.Zero);
    }

    [Test]
    public void SizeOfPageDescriptor_IsSixteenBytes() =>
        Assert.That(sizeof(PageDescriptor), Is.EqualTo(16));
}
