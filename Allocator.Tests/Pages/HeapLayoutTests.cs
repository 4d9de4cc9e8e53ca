using Numalloc.Pages;

namespace Numalloc.Tests.Pages;

/// <summary>Pointer to node, block, zone and page by arithmetic over the heap's one reservation.</summary>
public sealed unsafe class HeapLayoutTests
{
    [Test]
    public void FirstAndLastPageOfEveryOnlineBlock_MapToTheirNodeBlockZoneAndPage()
    {
        // 2 normal + 1 movable block online per node; spans of 8 blocks (4 + 2 max, rounded up to 8).
        using PageHeap heap = TestHeaps.Heap(2, TestHeaps.Options(8, 16, 4, 8));
        Assert.That(heap.Layout.BlocksPerNode, Is.EqualTo(8));
        var expected = new (int Block, int Node, ZoneType Zone)[]
        {
            (0, 0, ZoneType.Normal), (1, 0, ZoneType.Normal), (2, 0, ZoneType.Movable),
            (8, 1, ZoneType.Normal), (9, 1, ZoneType.Normal), (10, 1, ZoneType.Movable),
        };
        foreach (var (block, node, zone) in expected)
        {
            byte* first = heap.Layout.AddressOfBlock(block);
            byte* last = first + TestHeaps.BlockBytes - 4096;
            Assert.That(heap.TryLocate(first, out PageLocation a), Is.True);
            Assert.That(a, Is.EqualTo(new PageLocation(node, block, zone, BlockState.Online, block * TestHeaps.PagesPerBlock)));
            Assert.That(heap.TryLocate(last + 4095, out PageLocation b), Is.True, "last byte of the block");
            Assert.That(b, Is.EqualTo(new PageLocation(node, block, zone, BlockState.Online, ((block + 1) * TestHeaps.PagesPerBlock) - 1)));
        }
    }

    [Test]
    public void BlocksBeyondTheInitialSize_AreAbsent()
    {
        using PageHeap heap = TestHeaps.Heap(2, TestHeaps.Options(8, 16, 4, 8));
        HeapStats stats = heap.Snapshot();
        Assert.That(stats.Blocks.Count(b => b.State == BlockState.Online), Is.EqualTo(6));
        Assert.That(stats.Blocks.Where(b => b.State == BlockState.Absent).Select(b => b.Id),
            Is.EqualTo(new[] { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 }));
        Assert.That(stats.Blocks.Where(b => b.Id >= 8).All(b => b.Node == 1), Is.True);
    }

    [Test]
    public void PointersOutsideTheReservation_AreNotOurs()
    {
        using PageHeap heap = TestHeaps.Heap(2, TestHeaps.Options(4, 8));
        byte* before = heap.Layout.Base - 4096;
        byte* after = heap.Layout.Base + heap.Layout.SizeBytes;
        int local = 0;
        Assert.That(heap.TryLocate(before, out _), Is.False);
        Assert.That(heap.TryLocate(after, out _), Is.False);
        Assert.That(heap.TryLocate(&local, out _), Is.False);
        Assert.That(heap.TryLocate(after - 1, out PageLocation lastByte), Is.True);
        Assert.That(lastByte.Node, Is.EqualTo(1));
    }

    [Test]
    public void TheReservation_IsAlignedToTheBlockSize()
    {
        using PageHeap heap = TestHeaps.Heap(3, TestHeaps.Options(4, 8));
        Assert.That((nuint)heap.Layout.Base % (nuint)TestHeaps.BlockBytes, Is.EqualTo((nuint)0));
        Assert.That(heap.Layout.BlockCount, Is.EqualTo(3 * 2));
    }
}
