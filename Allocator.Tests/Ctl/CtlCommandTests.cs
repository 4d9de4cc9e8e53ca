using System.Text.Json.Nodes;
using Numalloc.Admin;
using Numalloc.Bench.Ctl;

namespace Numalloc.Tests.Ctl;

[NonParallelizable]
public sealed class CtlCommandTests
{
    [TestCase("offline zone 1 movable --timeout 250", """{"op":"offline","node":1,"zone":"movable","timeout_ms":250}""")]
    [TestCase("offline block 7", """{"op":"offline","block":7}""")]
    [TestCase("offline node 2", """{"op":"offline","node":2}""")]
    [TestCase("online block 7 movable", """{"op":"online","block":7,"zone":"movable"}""")]
    [TestCase("online zone 3 normal", """{"op":"online","node":3,"zone":"normal"}""")]
    [TestCase("watermarks 0 normal --low 64", """{"op":"watermarks","node":0,"zone":"normal","low":64}""")]
    [TestCase("watch", """{"op":"subscribe"}""")]
    [TestCase("blocks", """{"op":"blocks"}""")]
    public void Words_BecomeTheProtocolsRequest(string words, string json)
    {
        JsonObject request = CtlCommand.BuildRequest(words.Split(' '));
        Assert.That(request.ToJsonString(), Is.EqualTo(json));
        // And the server side reads it back without complaint.
        Assert.That(() => AdminRequest.Parse(request.ToJsonString()), Throws.Nothing);
    }

    [TestCase("", "no operation")]
    [TestCase("reboot", "unknown operation")]
    [TestCase("offline", "needs a target")]
    [TestCase("offline zone 1", "a zone is NODE normal|movable")]
    [TestCase("online block 3", "needs the zone it joins")]
    [TestCase("online node 1 --timeout 5", "--timeout is not an option of online")]
    [TestCase("offline node x", "node must be a non-negative number")]
    [TestCase("stats 1", "takes no arguments")]
    [TestCase("watermarks --min 1", "--min is not an option here")]
    public void BadWords_AreUsageErrors(string words, string reason)
    {
        var error = new StringWriter();
        int code = CtlCommand.Run(["--socket", "/nonexistent", .. words.Split(' ', StringSplitOptions.RemoveEmptyEntries)], new StringWriter(), error);
        Assert.That(code, Is.EqualTo(CtlCommand.ExitCodes.Usage));
        Assert.That(error.ToString(), Does.Contain(reason));
    }

    [Test]
    public void NoServer_IsUnavailable()
    {
        var error = new StringWriter();
        Assert.That(CtlCommand.Run(["--socket", "/nonexistent/admin.sock", "stats"], new StringWriter(), error), Is.EqualTo(CtlCommand.ExitCodes.Unavailable));
        Assert.That(error.ToString(), Does.Contain("cannot connect"));
    }

    [TestCase("busy", CtlCommand.ExitCodes.Busy)]
    [TestCase("inprogress", CtlCommand.ExitCodes.InProgress)]
    [TestCase("cancelled", CtlCommand.ExitCodes.Cancelled)]
    [TestCase("timedout", CtlCommand.ExitCodes.TimedOut)]
    [TestCase("invalid", CtlCommand.ExitCodes.Invalid)]
    [TestCase("bad_argument", CtlCommand.ExitCodes.Refused)]
    public void EachResult_HasItsOwnExitCode(string error, int code) =>
        Assert.That(CtlCommand.ExitCodeOf(new JsonObject { ["ok"] = false, ["error"] = error }), Is.EqualTo(code));

    [Test]
    public void Blocks_PrintLikeLsmem()
    {
        var blocks = new JsonArray();
        string[] states = ["online", "online", "offline", "online"];
        for (int id = 0; id < 4; id++)
            blocks.Add(new JsonObject { ["id"] = id, ["node"] = id / 2, ["zone"] = "movable", ["state"] = states[id], ["size"] = 16L << 20 });
        string text = CtlCommand.Format(new JsonObject { ["op"] = "blocks" }, new JsonObject { ["ok"] = true, ["blocks"] = blocks });

        string[] lines = text.Split(Environment.NewLine);
        Assert.Multiple(() =>
        {
            Assert.That(lines[0], Does.StartWith("BLOCKS"));
            Assert.That(lines[1], Does.Match(@"^0-1\s+0\s+movable\s+online\s+32M$"));
            Assert.That(lines[2], Does.Match(@"^2\s+1\s+movable\s+offline\s+16M$"));
            Assert.That(lines[3], Does.Match(@"^3\s+1\s+movable\s+online\s+16M$"));
            Assert.That(text, Does.Contain("Total online memory: 48M of 64M reserved"));
        });
    }

    private sealed class ScriptedEndpoint(Func<AdminRequest, JsonObject> answer) : IAdminEndpoint
    {
        public JsonObject Execute(AdminRequest request) => answer(request);

        public IDisposable Subscribe(Action<JsonObject> onEvent)
        {
            onEvent(new JsonObject { ["event"] = "offline", ["node"] = 1 });
            return new CancellationTokenSource();
        }
    }

    [Test]
    public void AgainstAServer_TheExitCodeFollowsTheReply()
    {
        string dir = Directory.CreateTempSubdirectory("numalloc-ctl-").FullName;
        try
        {
            string path = Path.Combine(dir, "admin.sock");
            using var server = new ControlSocketServer(path, new ScriptedEndpoint(request => request.Node == 1
                ? new JsonObject { ["ok"] = false, ["error"] = "busy", ["message"] = "12 unmovable pages in use", ["count"] = 12 }
                : new JsonObject { ["ok"] = true, ["pages_migrated"] = 4096, ["duration_ms"] = 17 }));

            var output = new StringWriter();
            Assert.That(CtlCommand.Run(["--socket", path, "offline", "zone", "1", "normal"], output, new StringWriter()), Is.EqualTo(CtlCommand.ExitCodes.Busy));
            Assert.That(output.ToString(), Does.Contain("offline: busy: 12 unmovable pages in use"));

            output = new StringWriter();
            Assert.That(CtlCommand.Run(["--socket", path, "offline", "zone", "3", "movable"], output, new StringWriter()), Is.EqualTo(CtlCommand.ExitCodes.Ok));
            Assert.That(output.ToString(), Does.Contain("offline zone 3 movable: ok, 4096 pages migrated, 17 ms"));

            output = new StringWriter();
            Assert.That(CtlCommand.Run(["--socket", path, "--json", "offline", "zone", "1", "normal"], output, new StringWriter()), Is.EqualTo(CtlCommand.ExitCodes.Busy));
            Assert.That(JsonNode.Parse(output.ToString())!["count"]!.GetValue<int>(), Is.EqualTo(12));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
