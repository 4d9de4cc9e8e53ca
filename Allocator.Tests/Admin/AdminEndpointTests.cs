using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Numalloc.Admin;
using Numalloc.Bench.Ctl;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Tests.Hotplug;

namespace Numalloc.Tests.Admin;

/// <summary>The admin API through the control socket, against a real heap: every op, hotplug results and their exit codes in ctl, the event stream.</summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed unsafe class AdminEndpointTests
{
    private string _dir = null!;
    private string _path = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("numalloc-endpoint-").FullName;
        _path = Path.Combine(_dir, "admin.sock");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static JsonObject Send(AdminClient client, string json) => client.Send(JsonNode.Parse(json)!.AsObject());

    [Test]
    public void EveryOp_AnswersFromTheHeap()
    {
        using var rig = new HotplugRig(nodes: 2);
        var admin = new AllocatorAdmin(rig.Cache, rig.Movable, rig.Hotplug);
        using var server = new ControlSocketServer(_path, new AdminEndpoint(admin));
        using var client = new AdminClient(_path);

        JsonObject topology = Send(client, """{"op":"topology"}""");
        Assert.That(topology["nodes"]!.AsArray(), Has.Count.EqualTo(2));
        Assert.That(topology["nodes"]![0]!["distances"]!.AsArray().Select(d => d!.GetValue<int>()), Is.EqualTo(new[] { 10, 20 }));

        JsonObject blocks = Send(client, """{"op":"blocks"}""");
        JsonArray list = blocks["blocks"]!.AsArray();
        Assert.That(list, Has.Count.EqualTo(admin.BlockCount));
        Assert.That(list.Count(b => b!["state"]!.GetValue<string>() == "online"), Is.EqualTo(admin.GetBlocks().Count(b => b.State == BlockState.Online)));
        Assert.That(list.Where(b => b!["state"]!.GetValue<string>() == "absent").All(b => b!["zone"] is null), Is.True);

        JsonObject stats = Send(client, """{"op":"stats"}""");
        Assert.That(stats["summary"]!["drains_remote"], Is.Not.Null);
        Assert.That(stats["stats"]!["nodes"]!.AsArray(), Has.Count.EqualTo(2));

        Assert.That(Send(client, """{"op":"drain"}""")["ok"]!.GetValue<bool>(), Is.True);
        Assert.That(Send(client, """{"op":"trim"}""")["purged_bytes"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(0));

        JsonObject set = Send(client, """{"op":"watermarks","node":1,"zone":"normal","min":5,"low":9,"high":13}""");
        Assert.That(set["zones"]!.AsArray().Single()!["low"]!.GetValue<long>(), Is.EqualTo(9));
        Assert.That(admin.GetStats().Nodes[1].Zones[0].Watermarks, Is.EqualTo(new Watermarks(5, 9, 13)));
        JsonObject bad = Send(client, """{"op":"watermarks","node":1,"zone":"normal","min":50,"low":9}""");
        Assert.That(bad["error"]!.GetValue<string>(), Is.EqualTo("invalid"));
        Assert.That(admin.GetStats().Nodes[1].Zones[0].Watermarks, Is.EqualTo(new Watermarks(5, 9, 13)), "a refused request changes nothing");
        Assert.That(Send(client, """{"op":"watermarks"}""")["zones"]!.AsArray(), Has.Count.EqualTo(4));

        JsonObject offline = Send(client, """{"op":"offline","node":1,"zone":"movable","timeout_ms":10000}""");
        Assert.That(offline["result"]!.GetValue<string>(), Is.EqualTo("ok"), offline.ToJsonString());
        JsonObject again = Send(client, """{"op":"offline","node":1,"zone":"movable"}""");
        Assert.That(again["error"]!.GetValue<string>(), Is.EqualTo("invalid"), "offline of an offline zone");
        Assert.That(Send(client, """{"op":"online","node":1,"zone":"movable"}""")["ok"]!.GetValue<bool>(), Is.True);
        Assert.That(Send(client, """{"op":"offline","node":7}""")["error"]!.GetValue<string>(), Is.EqualTo("invalid"), "unknown node");
        rig.AssertReconciled();
    }

    [Test]
    public void Ctl_ExitCodesFollowTheResults_AndSubscribersSeeTheOfflineWithProgress()
    {
        using var rig = new HotplugRig(nodes: 2);
        var admin = new AllocatorAdmin(rig.Cache, rig.Movable, rig.Hotplug);
        using var server = new ControlSocketServer(_path, new AdminEndpoint(admin));
        using var watcher = new AdminClient(_path);
        Assert.That(Send(watcher, """{"op":"subscribe"}""")["subscribed"]!.GetValue<bool>(), Is.True);

        // Buffers to migrate, and unmovable pages that make node 1's Normal zone Busy.
        var buffers = Enumerable.Range(0, 8).Select(i => rig.Movable.Allocate(16 * 1024, node: 1)!).ToList();
        nint pinnedDown = (nint)rig.Pages.AllocPages(0, PageAllocFlags.None, 1);

        var output = new StringWriter();
        Assert.That(CtlCommand.Run(["--socket", _path, "offline", "zone", "1", "movable", "--timeout", "10000"], output, TextWriter.Null), Is.EqualTo(CtlCommand.ExitCodes.Ok), output.ToString());
        Assert.That(output.ToString(), Does.Match(@"offline zone 1 movable: ok, \d+ pages migrated"));
        Assert.That(CtlCommand.Run(["--socket", _path, "offline", "zone", "1", "movable"], TextWriter.Null, TextWriter.Null), Is.EqualTo(CtlCommand.ExitCodes.Invalid));
        Assert.That(CtlCommand.Run(["--socket", _path, "offline", "zone", "1", "normal", "--timeout", "10000"], TextWriter.Null, TextWriter.Null), Is.EqualTo(CtlCommand.ExitCodes.Busy));
        Assert.That(CtlCommand.Run(["--socket", _path, "online", "zone", "1", "movable"], TextWriter.Null, TextWriter.Null), Is.EqualTo(CtlCommand.ExitCodes.Ok));

        var events = new List<string>();
        while (!events.Contains("online"))
            events.Add(JsonNode.Parse(watcher.ReadLine()!)!["event"]!.GetValue<string>());
        Assert.That(events.Where(e => e != "progress"), Is.EqualTo(new[] { "going_offline", "offline", "going_offline", "cancel_offline", "online" }));
        Assert.That(events, Does.Contain("progress"));

        rig.Pages.FreePages((void*)pinnedDown, 0);
        foreach (MovableBuffer buffer in buffers)
            buffer.Free();
        rig.AssertReconciled();
    }
}
