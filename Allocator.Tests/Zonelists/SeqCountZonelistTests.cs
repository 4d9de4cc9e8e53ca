using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Zonelists;
using static Numalloc.Tests.Zonelists.ZonelistTestSupport;

namespace Numalloc.Tests.Zonelists;

/// <summary>
/// Readers of a zonelist the writer is holding half-rewritten (paused by the test hook): they
/// restart instead of failing and never get a page from an ineligible zone.
/// </summary>
[NonParallelizable]
public sealed unsafe class SeqCountZonelistTests
{
    [Test, CancelAfter(30_000)]
    public void AReaderOfATornList_Restarts_AndIsServedOnceTheWriterFinishes(CancellationToken token)
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 4, 0, 4));
        PageHeap heap = allocator.Heap;
        ZonelistBuilder lists = allocator.Zonelists;
        Zone n0Normal = heap.ZoneOf(0, ZoneType.Normal), n1Normal = heap.ZoneOf(1, ZoneType.Normal);
        Zone n0Movable = heap.ZoneOf(0, ZoneType.Movable), n1Movable = heap.ZoneOf(1, ZoneType.Movable);

        // Every zone refuses: the empty movable zones leave the lists, the Normal ones stay listed
        // (they have online blocks and free pages) but are admin-down.
        foreach (Zone z in new[] { n0Normal, n1Normal, n0Movable, n1Movable })
            z.AdminDown = true;
        lists.Rebuild();
        Assert.That(allocator.AllocPages(0, PageAllocFlags.Movable, 0) == null, "a settled walk over refusing zones fails");

        // Node 0's Movable zone comes back up; the rewrite that lists it is held after its first entry
        // (node 0's unmovable list), so node 0's movable list is still the old, failing one.
        n0Movable.AdminDown = false;
        using var writer = new PausedRebuild(lists, token);
        Assert.That(lists.Sequence.Sequence & 1, Is.EqualTo(1), "the write section is open");

        long restartsBefore = lists.ReaderRestarts;
        nint result = 0;
        PageLocation served = default;
        var reader = new Thread(() =>
        {
            VirtualCpu.Set(CpuOf(heap.Topology, 0));
            void* p = allocator.AllocPages(0, PageAllocFlags.Movable);
            result = (nint)p;
            if (p != null)
                heap.TryLocate(p, out served);
        });
        reader.Start();
        // Wait (bounded) until the reader has walked the torn list and restarted several times.
        for (int i = 0; i < 10_000 && lists.ReaderRestarts - restartsBefore < 5; i++)
            Thread.Sleep(1);
        Assert.That(lists.ReaderRestarts - restartsBefore, Is.GreaterThanOrEqualTo(5), "the reader restarted on the odd cookie");
        Assert.That(reader.IsAlive, Is.True, "a reader whose cookie was odd has not reported failure");

        writer.Release();
        Assert.That(reader.Join(10_000), Is.True);

        Assert.That(result, Is.Not.EqualTo((nint)0), "served after the rewrite");
        Assert.That((served.Node, served.Zone), Is.EqualTo((0, ZoneType.Movable)), "only the eligible zone served it");
        Assert.That(n0Normal.Snapshot().Allocations + n1Normal.Snapshot().Allocations, Is.Zero, "no admin-down zone served anything");
        TestContext.Out.WriteLine($"reader restarts while the writer was held: {lists.ReaderRestarts - restartsBefore}");
    }

    [Test, CancelAfter(30_000)]
    public void AReaderOfATornList_NeverGetsAPageFromAZoneThatTurnedIneligible(CancellationToken token)
    {
        using PageAllocator allocator = Allocator(2, TestHeaps.Options(4, 4));
        PageHeap heap = allocator.Heap;
        ZonelistBuilder lists = allocator.Zonelists;
        Zone n0Normal = heap.ZoneOf(0, ZoneType.Normal);

        // Node 0's Normal zone goes admin-down; its list entry stays (it has online blocks) and the
        // rewrite is held open: readers walk it and must skip it under its own lock.
        n0Normal.AdminDown = true;
        using var writer = new PausedRebuild(lists, token);

        VirtualCpu.Set(CpuOf(heap.Topology, 0));
        try
        {
            for (int i = 0; i < 100; i++)
            {
                void* p = allocator.AllocPages(0);
                Assert.That(p != null, "node 1 serves while node 0 is down");
                Assert.That(Locate(allocator, p).Node, Is.EqualTo(1));
                allocator.FreePages(p, 0);
            }
        }
        finally
        {
            VirtualCpu.Clear();
            writer.Release();
        }
        Assert.That(n0Normal.Snapshot().Allocations, Is.Zero);
        TestHeaps.AssertReconciled(heap);
    }

    /// <summary>A zonelist rebuild on its own thread, held by the test hook after its first entry (the write section open) until released.</summary>
    private sealed class PausedRebuild : IDisposable
    {
        private readonly ZonelistBuilder _lists;
        private readonly ManualResetEventSlim _paused = new();
        private readonly ManualResetEventSlim _release = new();
        private readonly Thread _writer;

        public PausedRebuild(ZonelistBuilder lists, CancellationToken token)
        {
            _lists = lists;
            lists.TestHookAfterEntryWritten = index =>
            {
                if (index == 0)
                {
                    _paused.Set();
                    _release.Wait(token);
                }
            };
            _writer = new Thread(lists.Rebuild);
            _writer.Start();
            Assert.That(_paused.Wait(10_000, token), Is.True, "the writer reached the hook");
        }

        /// <summary>Lets the rewrite finish and removes the hook.</summary>
        public void Release()
        {
            _release.Set();
            _writer.Join();
            _lists.TestHookAfterEntryWritten = null;
        }

        public void Dispose()
        {
            if (_writer.IsAlive)
                Release();
            _paused.Dispose();
            _release.Dispose();
        }
    }
}
