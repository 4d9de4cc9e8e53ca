using Numalloc.Hotplug;
using Numalloc.Pages;

namespace Numalloc.Tests.Hotplug;

/// <summary>Bad hotplug requests: a clear error and nothing changed.</summary>
[NonParallelizable]
public sealed class BadInputTests
{
    private static void AssertInvalid(HotplugRig rig, Func<HotplugResult> call, string expected)
    {
        string counts = rig.ZoneCounts();
        string lists = rig.ZonelistsText();
        string blocks = string.Join(',', rig.Heap.Snapshot().Blocks);
        HotplugResult result = call();
        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Invalid), result.Message);
        Assert.That(result.ErrnoValue, Is.EqualTo(-22));
        Assert.That(result.Message, Does.Contain(expected));
        Assert.That(rig.ZoneCounts(), Is.EqualTo(counts));
        Assert.That(rig.ZonelistsText(), Is.EqualTo(lists));
        Assert.That(string.Join(',', rig.Heap.Snapshot().Blocks), Is.EqualTo(blocks));
    }

    [Test]
    public void UnknownNodesZonesAndBlocks_AreInvalid()
    {
        using var rig = new HotplugRig(nodes: 2);
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.ZoneOf(5, ZoneType.Movable), 100), "node 5 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.ZoneOf(-1, ZoneType.Normal), 100), "node -1 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, (ZoneType)7), 100), "zone 7 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Node(2), 100), "node 2 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Block(100_000), 100), "block 100000 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Online(HotplugTarget.Block(-3)), "block -3 does not exist");
        AssertInvalid(rig, () => rig.Hotplug.Online(HotplugTarget.Node(9)), "node 9 does not exist");
    }

    [Test]
    public void OfflineOfAnOfflineZone_AndOnlineOfAnOnlineZone_AreInvalid()
    {
        using var rig = new HotplugRig(nodes: 2);
        AssertInvalid(rig, () => rig.Hotplug.Online(HotplugTarget.ZoneOf(0, ZoneType.Movable)), "already online");
        AssertInvalid(rig, () => rig.Hotplug.Online(HotplugTarget.Node(0)), "already online");
        int online = rig.BlocksOf(0, ZoneType.Normal, BlockState.Online)[0];
        AssertInvalid(rig, () => rig.Hotplug.Online(HotplugTarget.Block(online)), "is Online");
        Assert.That(rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), 1000).IsOk, Is.True);
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), 100), "already offline");
        int offline = rig.BlocksOf(0, ZoneType.Movable, BlockState.Offline)[0];
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Block(offline), 100), "is Offline");
        int absent = rig.BlocksOf(0, ZoneType.Normal, BlockState.Absent)[0];
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Block(absent), 100), "is Absent");
        rig.AssertReconciled();
    }

    [Test]
    public void ANegativeTimeout_IsRefusedBeforeAnythingRuns()
    {
        using var rig = new HotplugRig(nodes: 2);
        string counts = rig.ZoneCounts();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Movable), -1));
        Assert.That(e!.ParamName, Is.EqualTo("timeoutMs"));
        Assert.That(rig.ZoneCounts(), Is.EqualTo(counts));
        Assert.That(rig.Hotplug.History, Is.Empty);
    }

    [Test]
    public void TheLastOnlineNormalMemory_CannotGoOffline()
    {
        using var rig = new HotplugRig(nodes: 1);
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.ZoneOf(0, ZoneType.Normal), 100), "last online Normal memory");
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Node(0), 100), "last online Normal memory");
        int first = rig.BlocksOf(0, ZoneType.Normal, BlockState.Online)[0];
        Assert.That(rig.Hotplug.Offline(HotplugTarget.Block(first), 1000).IsOk, Is.True, "one of two blocks may go");
        int last = rig.BlocksOf(0, ZoneType.Normal, BlockState.Online)[0];
        AssertInvalid(rig, () => rig.Hotplug.Offline(HotplugTarget.Block(last), 100), "last online Normal memory");
        rig.AssertReconciled();
    }
}
