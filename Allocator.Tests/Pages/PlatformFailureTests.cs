using Numalloc.Pages;
using Numalloc.Platform;

namespace Numalloc.Tests.Pages;

/// <summary>Growth when the OS refuses a commit or a bind: clean failure, the block back to Absent.</summary>
public sealed unsafe class PlatformFailureTests
{
    [TestCase(1, TestName = "GrowthWhoseDescriptorCommitFails_LeavesTheBlockAbsent")]
    [TestCase(2, TestName = "GrowthWhoseBlockCommitFails_LeavesTheBlockAbsent")]
    public void GrowthWhoseCommitsFailFromTheNth_FailsCleanly(int nthAfterInit)
    {
        var platform = new FaultInjectingPlatform(PlatformFactory.Default);
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 16), platform);
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        platform.FailFrom(PlatformCall.Commit, platform.CallCount(PlatformCall.Commit) + nthAfterInit);

        List<int> taken = TestHeaps.Drain(normal, 0);
        ZoneStats s = normal.Snapshot();
        Assert.That(s.OnlineBlocks, Is.EqualTo(1));
        Assert.That(s.GrowthFailures, Is.GreaterThanOrEqualTo(1));
        Assert.That(heap.Blocks.State(1), Is.EqualTo(BlockState.Absent), "the failed block is Absent again");
        Assert.That(taken, Has.Count.EqualTo(TestHeaps.PagesPerBlock - s.Watermarks.Min), "served down to min, then null");

        platform.ClearFault(PlatformCall.Commit);
        int page = normal.TryAllocate(0, PageAllocFlags.None);
        Assert.That(page, Is.Not.EqualTo(PageDescriptor.NoPage), "growth works again once the OS does");
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(2));
        taken.Add(page);
        normal.FreeBatch(taken.ToArray(), 0);
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void GrowthWhoseBindFails_DecommitsAndLeavesTheBlockAbsent()
    {
        var platform = new FaultInjectingPlatform(PlatformFactory.Default);
        using PageHeap heap = TestHeaps.Heap(1, TestHeaps.Options(4, 16), platform);
        Zone normal = heap.ZoneOf(0, ZoneType.Normal);
        int decommitsBefore = platform.CallCount(PlatformCall.Decommit);
        platform.FailFrom(PlatformCall.Bind, platform.CallCount(PlatformCall.Bind) + 1);

        List<int> taken = TestHeaps.Drain(normal, 0);
        Assert.That(normal.Snapshot().OnlineBlocks, Is.EqualTo(1));
        Assert.That(heap.Snapshot().Blocks.Count(b => b.State != BlockState.Absent), Is.EqualTo(1));
        Assert.That(platform.CallCount(PlatformCall.Decommit), Is.GreaterThan(decommitsBefore));
        normal.FreeBatch(taken.ToArray(), 0);
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void AHeapWhoseInitialCommitFails_ThrowsAndReleasesItsReservation()
    {
        var platform = new FaultInjectingPlatform(PlatformFactory.Default);
        platform.FailNth(PlatformCall.Commit, 2);
        Assert.Throws<PlatformException>(() => TestHeaps.Heap(1, TestHeaps.Options(4, 16), platform));
        Assert.That(platform.CallCount(PlatformCall.Release), Is.EqualTo(2), "heap and descriptor reservations given back");
    }
}
