using System.Text.Json;
using Numalloc.Admin;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Tests.Hotplug;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Admin;

/// <summary>The admin API over the page-level core: stats, blocks, JSON, hotplug, drains, watermarks.</summary>
[NonParallelizable]
public sealed unsafe class AllocatorAdminTests
{
    private static AllocatorAdmin AdminOf(HotplugRig rig) => new(rig.Cache, rig.Movable, rig.Hotplug);

    [Test]
    public void Stats_DescribeZonesBlocksCachesAndHistory_AndRoundTripThroughJson()
    {
        using var rig = new HotplugRig(nodes: 2);
        AllocatorAdmin admin = AdminOf(rig);
        MovableBuffer buffer = rig.Movable.Allocate(5000, node: 0)!;
        rig.Cache.FreePages(rig.Cache.AllocPages(0), 0); // this thread's magazines: the offline's drain requests them
        Assert.That(admin.OfflineZone(0, ZoneType.Movable, 10_000).IsOk, Is.True);
        RunOnCpu(rig.CpuOf(0), () => rig.Cache.FreePages(rig.Cache.AllocPages(0), 0)); // after the offline's drain

        AllocatorStats stats = admin.GetStats();

        Assert.That(stats.Nodes, Has.Count.EqualTo(2));
        ZoneStatsInfo normal0 = stats.Nodes[0].Zones[0];
        Assert.That(normal0.Zone, Is.EqualTo(ZoneType.Normal));
        Assert.That(normal0.FreeBlocksPerOrder, Has.Count.EqualTo(PageHeap.MaxOrder + 1));
        Assert.That(normal0.PcpPages + normal0.MagazinePages, Is.GreaterThan(0), "the free went into node 0's caches");
        Assert.That(normal0.Watermarks.Min, Is.GreaterThan(0));
        Assert.That(stats.Nodes[0].Zones[1].AdminDown, Is.True);
        Assert.That(stats.Nodes[0].NumaStat.NumaHit, Is.GreaterThan(0));
        Assert.That(stats.Blocks, Has.Count.EqualTo(admin.BlockCount));
        Assert.That(stats.Blocks.Count(b => b.State == BlockState.Offline), Is.EqualTo(2));
        Assert.That(stats.Zonelists.Generation, Is.GreaterThan(0));
        Assert.That(stats.Drains.Requests, Is.EqualTo(stats.Drains.DoneRemotely + stats.Drains.DoneByOwner + stats.Drains.Coalesced));
        Assert.That(stats.Drains.Requests, Is.GreaterThan(0));
        Assert.That(stats.Movable.Migrated, Is.EqualTo(1));
        Assert.That(stats.Movable.LiveBuffers, Is.EqualTo(1));
        Assert.That(stats.Hotplug, Has.Count.EqualTo(1));
        Assert.That(stats.Hotplug[0].Target, Is.EqualTo("node 0 movable"));
        Assert.That(stats.Hotplug[0].Status, Is.EqualTo(HotplugStatus.Ok));
        Assert.That(stats.Hotplug[0].DurationMs, Is.GreaterThan(0));

        string json = AllocatorAdmin.ToJson(stats);
        using (JsonDocument doc = JsonDocument.Parse(json))
        {
            JsonElement zone = doc.RootElement.GetProperty("nodes")[0].GetProperty("zones")[1];
            Assert.That(zone.GetProperty("zone").GetString(), Is.EqualTo("Movable"));
            Assert.That(zone.GetProperty("admin_down").GetBoolean(), Is.True);
            Assert.That(doc.RootElement.GetProperty("drains").GetProperty("done_remotely").ValueKind, Is.EqualTo(JsonValueKind.Number));
            Assert.That(doc.RootElement.GetProperty("hotplug")[0].GetProperty("status").GetString(), Is.EqualTo("Ok"));
        }
        AllocatorStats back = AllocatorAdmin.FromJson(json)!;
        Assert.That(AllocatorAdmin.ToJson(back), Is.EqualTo(json));
        Assert.That(admin.GetStatsJson(), Does.StartWith("{\"taken_utc\""));

        buffer.Free();
        Assert.That(admin.OnlineZone(0, ZoneType.Movable).IsOk, Is.True);
        rig.AssertReconciled();
    }

    [Test]
    public void Blocks_ListEveryBlockWithNodeZoneAndState_AndFollowHotplug()
    {
        using var rig = new HotplugRig(nodes: 2);
        AllocatorAdmin admin = AdminOf(rig);
        IReadOnlyList<MemoryBlockInfo> blocks = admin.GetBlocks();
        Assert.That(blocks, Has.Count.EqualTo(admin.BlockCount));
        Assert.That(admin.BlockBytes, Is.EqualTo(4 * 1024 * 1024));
        MemoryBlockInfo target = blocks.First(b => b.Node == 1 && b.Zone == ZoneType.Normal && b.State == BlockState.Online);
        Assert.That(admin.OfflineBlock(target.Id, 1000).IsOk, Is.True);
        Assert.That(admin.GetBlocks()[target.Id].State, Is.EqualTo(BlockState.Offline));
        Assert.That(admin.OnlineBlock(target.Id, ZoneType.Movable).IsOk, Is.True);
        Assert.That(admin.GetBlocks()[target.Id], Is.EqualTo(target with { Zone = ZoneType.Movable }));
        Assert.That(admin.OfflineNode(1, 1000).IsOk, Is.True);
        Assert.That(admin.OnlineNode(1).IsOk, Is.True);
        Assert.That(admin.History.Select(h => h.Operation), Is.EqualTo(new[] { "offline", "online", "offline", "online" }));
        rig.AssertReconciled();
    }

    [Test]
    public void DrainTrimAndWatermarks_DoWhatTheySay_AndBadWatermarksChangeNothing()
    {
        using var rig = new HotplugRig(nodes: 2);
        AllocatorAdmin admin = AdminOf(rig);
        int upperLayersTrimmed = 0;
        admin.BeforeTrim = () => upperLayersTrimmed++;
        RunOnCpu(rig.CpuOf(1), () => rig.Cache.FreePages(rig.Cache.AllocPages(0), 0));
        Assert.That(rig.Cache.CachedPages(), Is.GreaterThan(0));
        admin.DrainCaches();
        Assert.That(rig.Cache.CachedPages(), Is.Zero);
        Assert.That(admin.Trim(), Is.GreaterThanOrEqualTo(4096), "the page freed above was dirty");
        Assert.That(upperLayersTrimmed, Is.EqualTo(1));
        Assert.That(admin.Trim(), Is.Zero, "nothing dirty is left");

        var wanted = new Watermarks(10, 20, 30);
        admin.SetWatermarks(1, ZoneType.Movable, wanted);
        Assert.That(admin.GetStats().Nodes[1].Zones[1].Watermarks, Is.EqualTo(wanted));
        Assert.Throws<ArgumentOutOfRangeException>(() => admin.SetWatermarks(1, ZoneType.Movable, new Watermarks(30, 20, 10)));
        Assert.Throws<ArgumentOutOfRangeException>(() => admin.SetWatermarks(2, ZoneType.Movable, wanted));
        Assert.Throws<ArgumentOutOfRangeException>(() => admin.SetWatermarks(0, (ZoneType)3, wanted));
        Assert.That(admin.GetStats().Nodes[1].Zones[1].Watermarks, Is.EqualTo(wanted));

        var listener = new RecordingListener();
        using (admin.RegisterListener(listener))
            Assert.That(admin.OfflineZone(1, ZoneType.Movable, 1000).IsOk, Is.True);
        Assert.That(listener.Events, Is.EqualTo(new[] { HotplugEvent.GoingOffline, HotplugEvent.Offline }));
        Assert.That(admin.Topology.NodeCount, Is.EqualTo(2));
        rig.AssertReconciled();
    }
}
