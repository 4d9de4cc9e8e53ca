using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Tests.Platform;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Hotplug;

/// <summary>Offline and online of zones, blocks and nodes: results, rollback, notifiers, the one-at-a-time gate.</summary>
[NonParallelizable]
public sealed unsafe class OfflineTests
{
    private const int Long = 60_000;

    private static List<MovableBuffer> FillMovable(HotplugRig rig, int node, int count, int sizeBytes)
    {
        var buffers = new List<MovableBuffer>();
        for (int i = 0; i < count; i++)
        {
            MovableBuffer b = rig.Movable.Allocate(sizeBytes, node)!;
            HotplugRig.Fill(b, i);
            buffers.Add(b);
        }
        return buffers;
    }

    [Test]
    public void OfflineOfAnIdleMovableZone_MigratesEveryBuffer_DecommitsItsBlocks_AndKeepsItDownUntilOnlined()
    {
        using var rig = new HotplugRig(nodes: 2, movableMiB: 8, movableMaxMiB: 16);
        Zone zone = rig.Zone(0, ZoneType.Movable);
        List<MovableBuffer> buffers = FillMovable(rig, 0, 24, 200_000);
        Assert.That(buffers.All(b => rig.Movable.NodeOf(b.Handle) == 0));
        int[] blocks = rig.BlocksOf(0, ZoneType.Movable, BlockState.Online);
        var phases = new List<HotplugPhase>();

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), Long, p => phases.Add(p.Phase));

        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
        Assert.That(result.Blocks, Is.EquivalentTo(blocks));
        Assert.That(result.PagesMigrated, Is.EqualTo(24 * 64));
        Assert.That(phases, Does.Contain(HotplugPhase.Migrating).And.Contain(HotplugPhase.Committed));
        for (int i = 0; i < buffers.Count; i++)
        {
            Assert.That(rig.Movable.NodeOf(buffers[i].Handle), Is.EqualTo(1), "migrated to the other node");
            Assert.That(HotplugRig.Holds(buffers[i], i), Is.True, "contents intact");
        }
        foreach (int block in blocks)
        {
            Assert.That(rig.Heap.Blocks.State(block), Is.EqualTo(BlockState.Offline));
            if (OperatingSystem.IsLinux())
                Assert.That(ProcessMemory.ProtectionAt((nint)rig.Heap.Layout.AddressOfBlock(block)), Is.EqualTo("---p"), "decommitted and inaccessible");
        }
        Assert.That(zone.AdminDown, Is.True);
        Assert.That(zone.CanGrow, Is.False, "an admin-down zone does not grow back");
        Assert.That(rig.ListsName(zone), Is.False, "the zonelists no longer name it");
        List<MovableBuffer> more = FillMovable(rig, 0, 40, 200_000); // more than the zone held: it would have grown
        Assert.That(more.All(b => rig.Movable.NodeOf(b.Handle) >= 0), Is.True, "movable allocations keep succeeding elsewhere");
        Assert.That(zone.Snapshot().OnlineBlocks, Is.Zero, "no growth back");

        HotplugResult online = rig.Hotplug.Online(HotplugTarget.ZoneOf(0, ZoneType.Movable));
        Assert.That(online.Status, Is.EqualTo(HotplugStatus.Ok), online.Message);
        Assert.That(online.Blocks, Is.EquivalentTo(blocks));
        Assert.That(zone.AdminDown, Is.False);
        Assert.That(rig.ListsName(zone), Is.True);
        void* p = rig.Pages.AllocPages(0, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly, 0);
        Assert.That(rig.Heap.TryLocate(p, out PageLocation where) && where.Zone == ZoneType.Movable && where.Node == 0, Is.True, "it serves again");
        *(long*)p = 42; // committed again
        rig.Pages.FreePages(p, 0);
        foreach (MovableBuffer b in buffers.Concat(more))
            b.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void OfflineWithAPinnedBuffer_TimesOut_AndRollsEverythingBack_ThenSucceedsOnceUnpinned()
    {
        using var rig = new HotplugRig(nodes: 2);
        List<MovableBuffer> buffers = FillMovable(rig, 0, 8, 100_000);
        string listsBefore = rig.ZonelistsText();
        var listener = new RecordingListener();
        using IDisposable registration = rig.Hotplug.Register(listener);
        MovablePin pin = buffers[3].Pin();
        nint address = pin.Address;

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), timeoutMs: 30);

        Assert.That(result.Status, Is.EqualTo(HotplugStatus.TimedOut), result.Message);
        Assert.That(result.Count, Is.EqualTo(1), "one pinned buffer");
        Assert.That(result.ErrnoValue, Is.EqualTo(-110));
        Assert.That(listener.Events, Is.EqualTo(new[] { HotplugEvent.GoingOffline, HotplugEvent.CancelOffline }));
        // The unpinned buffers migrated (that is allowed); the pinned one is exactly as before.
        Assert.That(rig.Movable.Inspect(buffers[3].Handle), Is.EqualTo((HandleState.Normal, 1, false)));
        Assert.That(pin.Address, Is.EqualTo(address));
        Assert.That(rig.ZonelistsText(), Is.EqualTo(listsBefore), "zonelists restored");
        Assert.That(rig.Zone(0, ZoneType.Movable).AdminDown, Is.False);
        Assert.That(rig.Zone(0, ZoneType.Movable).GoingOffline, Is.False);
        Assert.That(rig.BlocksOf(0, ZoneType.Movable, BlockState.Isolated), Is.Empty);
        pin.Dispose();
        for (int i = 0; i < buffers.Count; i++)
            Assert.That(HotplugRig.Holds(buffers[i], i), Is.True);

        HotplugResult retry = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), Long);
        Assert.That(retry.Status, Is.EqualTo(HotplugStatus.Ok), retry.Message);
        Assert.That(rig.Movable.NodeOf(buffers[3].Handle), Is.EqualTo(1));
        foreach (MovableBuffer b in buffers)
            b.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void ARolledBackOffline_LeavesFreeCountsZonelistsAndBuffersExactlyAsBefore()
    {
        using var rig = new HotplugRig(nodes: 2);
        // One pinned buffer only, so nothing migrates and every count must come back exactly.
        MovableBuffer buffer = rig.Movable.Allocate(50_000, node: 0)!;
        HotplugRig.Fill(buffer, 9);
        string countsBefore = rig.ZoneCounts();
        string listsBefore = rig.ZonelistsText();
        using (MovablePin pin = buffer.Pin())
        {
            HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), timeoutMs: 10);
            Assert.That(result.Status, Is.EqualTo(HotplugStatus.TimedOut), result.Message);
        }
        Assert.That(rig.ZoneCounts(), Is.EqualTo(countsBefore));
        Assert.That(rig.ZonelistsText(), Is.EqualTo(listsBefore));
        Assert.That(rig.Movable.Inspect(buffer.Handle), Is.EqualTo((HandleState.Normal, 0, false)));
        Assert.That(rig.Movable.NodeOf(buffer.Handle), Is.Zero);
        Assert.That(HotplugRig.Holds(buffer, 9), Is.True);
        buffer.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void OfflineOfANormalZoneWithLiveRawAllocations_IsBusyAfterTheShortGrace_NotAtTheTimeout()
    {
        using var rig = new HotplugRig(nodes: 2);
        var live = new List<(nint P, int Order)>();
        RunOnCpu(rig.CpuOf(1), () =>
        {
            for (int i = 0; i < 3; i++)
                live.Add(((nint)rig.Cache.AllocPages(0), 0)); // through a magazine: its batch stays cached
        });
        live.Add(((nint)rig.Pages.AllocPages(2, PageAllocFlags.None, 1), 2));
        Assert.That(live.All(l => rig.Heap.TryLocate((void*)l.P, out PageLocation w) && w.Node == 1 && w.Zone == ZoneType.Normal));
        Assert.That(rig.Cache.CachedPages(), Is.GreaterThan(0), "cached pages are drained, not counted");
        rig.Cache.DrainAll();
        string countsBefore = rig.ZoneCounts();
        string listsBefore = rig.ZonelistsText();
        RunOnCpu(rig.CpuOf(1), () => rig.Cache.FreePages(rig.Cache.AllocPages(0), 0)); // refill the caches again

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Normal), timeoutMs: Long);

        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Busy), result.Message);
        Assert.That(result.Count, Is.EqualTo(3 + 4), "three order-0 pages and one order-2 block");
        Assert.That(result.Rounds, Is.EqualTo(2), "two drain-and-scan rounds, not the 60 s timeout");
        Assert.That(result.ErrnoValue, Is.EqualTo(-16));
        Assert.That(rig.ZoneCounts(), Is.EqualTo(countsBefore), "rolled back (the caches were drained into the zone)");
        Assert.That(rig.ZonelistsText(), Is.EqualTo(listsBefore));

        foreach ((nint p, int order) in live)
        {
            if (order == 0)
                rig.Cache.FreePages((void*)p, 0);
            else
                rig.Pages.FreePages((void*)p, order);
        }
        HotplugResult free = rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Normal), timeoutMs: Long);
        Assert.That(free.Status, Is.EqualTo(HotplugStatus.Ok), free.Message);
        Assert.That(rig.ListsName(rig.Zone(1, ZoneType.Normal)), Is.False);
        Assert.That(rig.Hotplug.Online(HotplugTarget.ZoneOf(1, ZoneType.Normal)).Status, Is.EqualTo(HotplugStatus.Ok));
        rig.AssertReconciled();
    }

    [Test]
    public void MovableBuffersThatFellBackIntoANormalZone_AreMigratedOutWhenItGoesOffline()
    {
        using var rig = new HotplugRig(nodes: 2, movableMiB: 0, movableMaxMiB: 0);
        List<MovableBuffer> buffers = FillMovable(rig, 0, 10, 60_000);
        Assert.That(buffers.All(b => rig.Movable.NodeOf(b.Handle) == 0));

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Normal), Long);

        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
        for (int i = 0; i < buffers.Count; i++)
        {
            Assert.That(rig.Movable.NodeOf(buffers[i].Handle), Is.EqualTo(1));
            Assert.That(HotplugRig.Holds(buffers[i], i), Is.True);
        }
        Assert.That(rig.Hotplug.Online(HotplugTarget.Node(0)).Status, Is.EqualTo(HotplugStatus.Ok));
        foreach (MovableBuffer b in buffers)
            b.Free();
        rig.AssertReconciled();
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Notifiers_SeeGoingOfflineThenOfflineOrCancelOffline_AndAVetoRestoresEverything(bool veto)
    {
        using var rig = new HotplugRig(nodes: 2);
        var listener = new RecordingListener(veto);
        var second = new RecordingListener();
        using IDisposable r1 = rig.Hotplug.Register(listener);
        using IDisposable r2 = rig.Hotplug.Register(second);
        string countsBefore = rig.ZoneCounts();
        string listsBefore = rig.ZonelistsText();

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Movable), Long);

        if (veto)
        {
            Assert.That(result.Status, Is.EqualTo(HotplugStatus.Cancelled));
            Assert.That(result.Message, Does.Contain(nameof(RecordingListener)));
            Assert.That(listener.Events, Is.EqualTo(new[] { HotplugEvent.GoingOffline, HotplugEvent.CancelOffline }));
            Assert.That(second.Events, Is.EqualTo(new[] { HotplugEvent.CancelOffline }), "listeners after the vetoer are not asked");
            Assert.That(rig.ZoneCounts(), Is.EqualTo(countsBefore));
            Assert.That(rig.ZonelistsText(), Is.EqualTo(listsBefore));
        }
        else
        {
            Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok));
            Assert.That(listener.Events, Is.EqualTo(new[] { HotplugEvent.GoingOffline, HotplugEvent.Offline }));
            Assert.That(rig.Hotplug.Online(HotplugTarget.ZoneOf(1, ZoneType.Movable)).IsOk, Is.True);
            Assert.That(listener.Events[^1], Is.EqualTo(HotplugEvent.Online));
        }
        r1.Dispose();
        rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Movable), Long);
        Assert.That(listener.Events.Count(e => e == HotplugEvent.GoingOffline), Is.EqualTo(1), "unregistered");
        rig.AssertReconciled();
    }

    [Test]
    public void ConcurrentRequests_RunOneAtATime_TheOthersGetInProgressAtOnce()
    {
        using var rig = new HotplugRig(nodes: 2);
        var held = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        rig.Hotplug.TestHookAtStep = step =>
        {
            if (step == OfflineStep.Isolated)
            {
                held.Set();
                release.Wait();
            }
        };
        HotplugResult? first = null;
        var runner = new Thread(() => first = rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), Long));
        runner.Start();
        held.Wait();
        var others = new HotplugResult[4];
        var threads = new Thread[4];
        for (int i = 0; i < 4; i++)
        {
            int k = i;
            threads[i] = new Thread(() => others[k] = k switch
            {
                0 => rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Movable), Long),
                1 => rig.Hotplug.Offline(HotplugTarget.Node(1), Long),
                2 => rig.Hotplug.Online(HotplugTarget.ZoneOf(0, ZoneType.Movable)),
                _ => rig.Hotplug.Offline(HotplugTarget.Block(rig.BlocksOf(1, ZoneType.Normal, BlockState.Online)[0]), Long),
            });
            threads[i].Start();
        }
        foreach (Thread t in threads)
            t.Join(); // they return while the first is still held: nobody waits on the gate
        release.Set();
        runner.Join();
        rig.Hotplug.TestHookAtStep = null;
        Assert.That(others.Select(r => r.Status), Is.All.EqualTo(HotplugStatus.InProgress));
        Assert.That(others[0].ErrnoValue, Is.EqualTo(-11));
        Assert.That(first!.Status, Is.EqualTo(HotplugStatus.Ok));
        Assert.That(rig.Hotplug.History.Count(h => h.Result.Status == HotplugStatus.InProgress), Is.EqualTo(4));
        rig.AssertReconciled();
    }

    [Test]
    public void APageFreedIntoACacheAfterTheDrainBegan_GoesToTheIsolatedList_AndTheOfflineCompletes()
    {
        using var rig = new HotplugRig(nodes: 2);
        nint page = 0;
        RunOnCpu(rig.CpuOf(1), () => page = (nint)rig.Cache.AllocPages(0));
        Assert.That(rig.Heap.TryLocate((void*)page, out PageLocation where) && where.Node == 1 && where.Zone == ZoneType.Normal);
        Zone zone = rig.Zone(1, ZoneType.Normal);
        long isolatedBefore = -1, isolatedAfter = -1, cachedAfter = -1;
        rig.Hotplug.TestHookAtStep = step =>
        {
            if (step != OfflineStep.DrainBegun || isolatedBefore >= 0)
                return;
            // The racing free, on the page's node, into its thread's magazine path: the block is isolated.
            isolatedBefore = zone.CountIsolatedFree(where.Block);
            RunOnCpu(rig.CpuOf(1), () => rig.Cache.FreePages((void*)page, 0));
            isolatedAfter = zone.CountIsolatedFree(where.Block);
            cachedAfter = rig.Heap.Descriptor(where.Page).State == PageState.Cached ? 1 : 0;
        };

        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(1, ZoneType.Normal), Long);
        rig.Hotplug.TestHookAtStep = null;

        Assert.That(isolatedAfter, Is.EqualTo(isolatedBefore + 1), "the page went to the isolated free list");
        Assert.That(cachedAfter, Is.Zero, "not into a cache");
        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
        Assert.That(result.Rounds, Is.EqualTo(1));
        Assert.That(rig.Heap.Blocks.State(where.Block), Is.EqualTo(BlockState.Offline));
        var c = rig.Cache.Registry.Counters;
        Assert.That(c.DoneRemotely + c.DoneByOwner + c.Coalesced, Is.EqualTo(c.Requests), "drains ran exactly once");
        Assert.That(rig.Hotplug.Online(HotplugTarget.Node(1)).IsOk, Is.True);
        rig.AssertReconciled();
    }

    [Test]
    public void OfflineOfOneBlock_LeavesTheZoneUpAndGrowing_AndOnlineChoosesTheZone()
    {
        using var rig = new HotplugRig(nodes: 2);
        Zone normal = rig.Zone(0, ZoneType.Normal);
        int block = rig.BlocksOf(0, ZoneType.Normal, BlockState.Online)[1];
        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.Block(block), Long);
        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
        Assert.That(normal.AdminDown, Is.False);
        Assert.That(normal.CanGrow, Is.True);
        Assert.That(rig.Heap.Blocks.State(block), Is.EqualTo(BlockState.Offline));

        HotplugResult online = rig.Hotplug.Online(HotplugTarget.Block(block, ZoneType.Movable));
        Assert.That(online.Status, Is.EqualTo(HotplugStatus.Ok), online.Message);
        Assert.That(rig.Heap.Blocks.Read(block), Is.EqualTo(MemoryBlockTable.Encode(BlockState.Online, ZoneType.Movable)), "onlined into the zone the caller chose");
        rig.AssertReconciled();
    }

    [Test]
    public void OfflineAndOnlineOfAWholeNode_TakeEveryZoneDownAndBack()
    {
        using var rig = new HotplugRig(nodes: 2);
        List<MovableBuffer> buffers = FillMovable(rig, 1, 6, 300_000);
        HotplugResult result = rig.Hotplug.Offline(HotplugTarget.Node(1), Long);
        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
        Assert.That(rig.Zone(1, ZoneType.Normal).AdminDown && rig.Zone(1, ZoneType.Movable).AdminDown, Is.True);
        Assert.That(buffers.All(b => rig.Movable.NodeOf(b.Handle) == 0), Is.True);
        Assert.That(rig.Heap.Snapshot().Blocks.Where(b => b.Node == 1).All(b => b.State is BlockState.Offline or BlockState.Absent), Is.True);
        void* p = rig.Pages.AllocPages(0, PageAllocFlags.None, 1);
        Assert.That(rig.Heap.TryLocate(p, out PageLocation w) && w.Node == 0, Is.True, "node 1's requests fall back");
        rig.Pages.FreePages(p, 0);
        Assert.That(rig.Hotplug.Online(HotplugTarget.Node(1)).Status, Is.EqualTo(HotplugStatus.Ok));
        Assert.That(rig.ListsName(rig.Zone(1, ZoneType.Normal)) && rig.ListsName(rig.Zone(1, ZoneType.Movable)), Is.True);
        for (int i = 0; i < buffers.Count; i++)
        {
            Assert.That(HotplugRig.Holds(buffers[i], i), Is.True);
            buffers[i].Free();
        }
        rig.AssertReconciled();
    }
}
