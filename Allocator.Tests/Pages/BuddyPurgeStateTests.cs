using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>Dirty and purged free blocks in the buddy lists: split, coalesce, list order, taking for purge.</summary>
public sealed unsafe class BuddyPurgeStateTests
{
    private const int MaxOrder = 10;
    private const int BlockPages = 1 << MaxOrder;
    private const int PageCount = 2 * BlockPages; // two largest blocks
    private PageDescriptor* _pages;

    [SetUp]
    public void SetUp() =>
        _pages = (PageDescriptor*)NativeMemory.AllocZeroed((nuint)PageCount, (nuint)sizeof(PageDescriptor));

    [TearDown]
    public void TearDown() => NativeMemory.Free(_pages);

    private BuddyAllocator NewZone()
    {
        var buddy = new BuddyAllocator(_pages, MaxOrder, zone: 0);
        buddy.AddFreeRange(0, PageCount, isolated: false);
        return buddy;
    }

    private bool IsDirty(int page) => (_pages[page].Flags & PageDescriptor.FreeDirty) != 0;

    [Test]
    public void OnlinedRange_IsPurged_AndSplitHalvesOfAPurgedBlockStayPurged()
    {
        BuddyAllocator buddy = NewZone();
        Assert.That(buddy.DirtyPages, Is.Zero);

        int page = buddy.TryAllocate(0, PageState.Allocated);

        Assert.That(buddy.DirtyPages, Is.Zero, "halves of a never-touched block are not dirty");
        Assert.That(IsDirty(page + 1) || IsDirty(page + 512), Is.False);
    }

    [Test]
    public void Free_MergingWithPurgedBuddies_MakesTheWholeBlockDirtyWithTheFreeStamp()
    {
        BuddyAllocator buddy = NewZone();
        int page = buddy.TryAllocate(0, PageState.Allocated);

        buddy.Free(page, 0, isolated: false, nowMs: 77);

        int head = page & ~(BlockPages - 1);
        Assert.Multiple(() =>
        {
            Assert.That(buddy.FreeBlocks(MaxOrder), Is.EqualTo(2), "coalesced back to whole blocks");
            Assert.That(IsDirty(head), Is.True, "dirty wins over purged in a merge");
            Assert.That(_pages[head].Owner, Is.EqualTo(77u));
            Assert.That(buddy.DirtyPages, Is.EqualTo(BlockPages), "the merged block counts whole (an upper bound)");
        });
    }

    [Test]
    public void Split_OfADirtyBlock_GivesDirtyHalvesWithTheParentStamp()
    {
        BuddyAllocator buddy = NewZone();
        int block = buddy.TryAllocate(MaxOrder, PageState.Allocated);
        buddy.Free(block, MaxOrder, isolated: false, nowMs: 5);

        int page = buddy.TryAllocate(0, PageState.Allocated);

        Assert.That(page, Is.EqualTo(block), "the dirty block is served before the purged one");
        Assert.That(buddy.DirtyPages, Is.EqualTo(BlockPages - 1));
        for (int order = 0; order < MaxOrder; order++)
        {
            int half = block + (1 << order);
            Assert.That(_pages[half].State, Is.EqualTo(PageState.Free), $"order {order} half");
            Assert.That(IsDirty(half), Is.True, $"order {order} half dirty");
            Assert.That(_pages[half].Owner, Is.EqualTo(5u), $"order {order} half stamp");
        }
    }

    [Test]
    public void Merge_OfTwoDirtyBuddies_KeepsTheNewerStamp_SoTheBlockDecaysFromItsLastFree()
    {
        BuddyAllocator buddy = NewZone();
        int a = buddy.TryAllocate(MaxOrder - 1, PageState.Allocated);
        int b = buddy.TryAllocate(MaxOrder - 1, PageState.Allocated);
        Assert.That(a ^ b, Is.EqualTo(1 << (MaxOrder - 1)), "buddies");
        buddy.Free(a, MaxOrder - 1, isolated: false, nowMs: 10);
        buddy.Free(b, MaxOrder - 1, isolated: false, nowMs: 20);

        Span<int> taken = stackalloc int[4];
        Assert.That(buddy.TakeForPurge(taken, 1 << 20, all: false, nowMs: 29, decayMs: 10), Is.Zero, "9 ms after the newer free");
        Assert.That(buddy.TakeForPurge(taken, 1 << 20, all: false, nowMs: 30, decayMs: 10), Is.EqualTo(1));
        Assert.That(taken[0], Is.EqualTo(Math.Min(a, b)));
        Assert.That(_pages[taken[0]].Order, Is.EqualTo(MaxOrder));
    }

    [Test]
    public void TakenForPurge_IsNeitherServedNorMerged_AndComesBackPurged_BehindLaterDirtyFrees()
    {
        BuddyAllocator buddy = NewZone();
        int first = buddy.TryAllocate(MaxOrder, PageState.Allocated);
        int second = buddy.TryAllocate(MaxOrder, PageState.Allocated);
        buddy.Free(first, MaxOrder, isolated: false, nowMs: 1);
        Span<int> taken = stackalloc int[4];
        Assert.That(buddy.TakeForPurge(taken, 1 << 20, all: true, 0, 0), Is.EqualTo(1));
        Assert.That(_pages[first].State, Is.EqualTo(PageState.Purging));
        Assert.That(buddy.FreePages, Is.Zero, "off the lists while it is purged");
        Assert.That(buddy.TryAllocate(0, PageState.Allocated), Is.EqualTo(PageDescriptor.NoPage), "nothing to serve");

        buddy.ReturnPurged(first, isolated: false, purged: true);
        buddy.Free(second, MaxOrder, isolated: false, nowMs: 2);

        Assert.Multiple(() =>
        {
            Assert.That(IsDirty(first), Is.False);
            Assert.That(buddy.DirtyPages, Is.EqualTo(BlockPages), "only the second block");
            Assert.That(buddy.FreePages, Is.EqualTo(PageCount));
        });
        Assert.That(buddy.TryAllocate(MaxOrder, PageState.Allocated), Is.EqualTo(second), "dirty (warm) first");
        Assert.That(buddy.TryAllocate(MaxOrder, PageState.Allocated), Is.EqualTo(first), "then the purged one");
    }

    [Test]
    public void ReturnPurged_AfterAFailedPurge_IsDirtyWithItsOldStamp()
    {
        BuddyAllocator buddy = NewZone();
        int block = buddy.TryAllocate(MaxOrder, PageState.Allocated);
        buddy.Free(block, MaxOrder, isolated: false, nowMs: 42);
        Span<int> taken = stackalloc int[4];
        buddy.TakeForPurge(taken, 1 << 20, all: true, 0, 0);

        buddy.ReturnPurged(block, isolated: false, purged: false);

        Assert.That(IsDirty(block), Is.True);
        Assert.That(_pages[block].Owner, Is.EqualTo(42u));
        Assert.That(buddy.DirtyPages, Is.EqualTo(BlockPages));
    }

    [Test]
    public void TakeForPurge_StopsAtTheBatchPageBound()
    {
        BuddyAllocator buddy = NewZone();
        var pages = new List<int>();
        for (int i = 0; i < 8; i++)
            pages.Add(buddy.TryAllocate(MaxOrder - 3, PageState.Allocated));
        // Free every other one so none coalesce: four dirty blocks of 128 pages.
        for (int i = 0; i < 8; i += 2)
            buddy.Free(pages[i], MaxOrder - 3, isolated: false, nowMs: 0);

        Span<int> taken = stackalloc int[8];
        Assert.That(buddy.TakeForPurge(taken, maxPages: 256, all: true, 0, 0), Is.EqualTo(2));
        Assert.That(buddy.TakeForPurge(taken, maxPages: 1 << 20, all: true, 0, 0), Is.EqualTo(2));
        Assert.That(buddy.DirtyPages, Is.Zero);
    }

    [Test]
    public void IsolatingAndUnisolating_KeepsABlocksDirtyStateAndStamp_AndTheDirtyCount()
    {
        BuddyAllocator buddy = NewZone();
        int block = buddy.TryAllocate(MaxOrder, PageState.Allocated);
        buddy.Free(block, MaxOrder, isolated: false, nowMs: 9);

        buddy.MoveRange(block, BlockPages, toIsolated: true);
        Assert.That(buddy.DirtyPages, Is.Zero, "isolated free pages are not counted (they go offline)");
        Span<int> taken = stackalloc int[4];
        Assert.That(buddy.TakeForPurge(taken, 1 << 20, all: true, 0, 0), Is.Zero, "isolated pages are not purged");

        buddy.MoveRange(block, BlockPages, toIsolated: false);
        Assert.That(buddy.DirtyPages, Is.EqualTo(BlockPages));
        Assert.That(IsDirty(block), Is.True);
        Assert.That(_pages[block].Owner, Is.EqualTo(9u));
    }
}
