using System.Text.Json.Nodes;
using Numalloc.Bench.Ctl;

namespace Numalloc.Bench.Drill;

/// <summary>
/// <c>drill --attach SOCKET</c>: the scenario runs against another process through its control
/// socket; that process's own allocations are the workload, its stats the counters, and the
/// hotplug events it streams drive the migration progress bar.
/// </summary>
internal sealed class AttachedDrillTarget : IDrillTarget
{
    private readonly AdminClient _client;
    private readonly AdminClient _events;
    private readonly Thread _eventThread;
    private Action<long, long>? _progress;
    private int _lastBlock = -1;

    /// <exception cref="System.Net.Sockets.SocketException">Nobody serves <paramref name="socketPath"/>.</exception>
    /// <exception cref="IOException">The server refused the connection.</exception>
    public AttachedDrillTarget(string socketPath)
    {
        _client = new AdminClient(socketPath);
        JsonObject topology = Ok(_client.Send(new JsonObject { ["op"] = "topology" }), "topology");
        Description = $"attached to {socketPath} ({topology["nodes"]?.AsArray().Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} nodes)";
        _events = new AdminClient(socketPath);
        Ok(_events.Send(new JsonObject { ["op"] = "subscribe" }), "subscribe");
        _eventThread = new Thread(ReadEvents) { IsBackground = true, Name = "drill events" };
        _eventThread.Start();
    }

    public string Description { get; }

    public IDrillHeap? Heap => null;

    public long? AllocationCount
    {
        get
        {
            try
            {
                return Summary()["allocations"]?.GetValue<long>() ?? 0;
            }
            catch (IOException)
            {
                return null; // the server went away: the sampler shows nothing rather than ending the drill
            }
        }
    }

    private void ReadEvents()
    {
        try
        {
            while (_events.ReadLine() is { } line)
            {
                if (JsonNode.Parse(line) is JsonObject e && e["event"]?.GetValue<string>() == "progress")
                    _progress?.Invoke(e["pages_migrated"]?.GetValue<long>() ?? 0, e["pages_to_migrate"]?.GetValue<long>() ?? 0);
            }
        }
        catch (IOException)
        {
            // The connection closed: no more progress to show.
        }
        catch (ObjectDisposedException)
        {
            // Disposed while reading.
        }
    }

    public DrillOutcome Execute(DrillStep step, Action<long, long> progress)
    {
        _progress = progress;
        try
        {
            if (step.Kind == DrillStepKind.OnlineAll)
                return OnlineAll();

            var request = new JsonObject { ["op"] = step.Kind == DrillStepKind.Offline ? "offline" : "online" };
            switch (step.Target)
            {
                case DrillTarget.Node:
                    request["node"] = step.Node;
                    break;
                case DrillTarget.Zone:
                    request["node"] = step.Node;
                    request["zone"] = step.Zone;
                    break;
                case DrillTarget.Block:
                    int block = step.Block switch
                    {
                        DrillStep.LastBlock => _lastBlock,
                        DrillStep.NewBlockOfNode => AbsentBlockOf(step.Node),
                        int id => id,
                    };
                    if (block < 0)
                        return new DrillOutcome("invalid", step.Block == DrillStep.LastBlock ? "no block was onlined before" : $"node {step.Node} has no unused block", 0);
                    request["block"] = block;
                    if (step.Kind == DrillStepKind.Online)
                    {
                        request["zone"] = step.Zone;
                        _lastBlock = block;
                    }
                    break;
            }
            if (step.Kind == DrillStepKind.Offline)
                request["timeout_ms"] = step.TimeoutMs;
            return OutcomeOf(_client.Send(request));
        }
        finally
        {
            _progress = null;
        }
    }

    private DrillOutcome OnlineAll()
    {
        var zones = new SortedSet<(int Node, string Zone)>();
        foreach (JsonNode? block in Blocks())
        {
            if (block!["state"]!.GetValue<string>() == "offline" && block["zone"] is JsonValue zone)
                zones.Add((block["node"]!.GetValue<int>(), zone.GetValue<string>()));
        }
        foreach ((int node, string zone) in zones)
        {
            DrillOutcome outcome = OutcomeOf(_client.Send(new JsonObject { ["op"] = "online", ["node"] = node, ["zone"] = zone }));
            if (outcome.Result != "ok")
                return outcome with { Detail = $"online zone {node} {zone}: {outcome.Detail}" };
        }
        return new DrillOutcome("ok", zones.Count == 0 ? "nothing was offline" : $"{zones.Count} zones", 0);
    }

    private int AbsentBlockOf(int node)
    {
        foreach (JsonNode? block in Blocks())
        {
            if (block!["node"]!.GetValue<int>() == node && block["state"]!.GetValue<string>() == "absent")
                return block["id"]!.GetValue<int>();
        }
        return -1;
    }

    private JsonArray Blocks() => Ok(_client.Send(new JsonObject { ["op"] = "blocks" }), "blocks")["blocks"]!.AsArray();

    private JsonObject Summary() => Ok(_client.Send(new JsonObject { ["op"] = "stats" }), "stats")["summary"]!.AsObject();

    private static DrillOutcome OutcomeOf(JsonObject reply) =>
        reply["ok"]?.GetValue<bool>() == true
            ? new DrillOutcome("ok", null, reply["pages_migrated"]?.GetValue<long>() ?? 0)
            : new DrillOutcome(reply["error"]?.GetValue<string>() ?? "invalid", reply["message"]?.GetValue<string>(), reply["pages_migrated"]?.GetValue<long>() ?? 0);

    private static JsonObject Ok(JsonObject reply, string op) =>
        reply["ok"]?.GetValue<bool>() == true ? reply : throw new IOException($"{op}: {reply["error"]}: {reply["message"]}");

    public DrillCounters ReadCounters()
    {
        JsonObject s = Summary();
        long Get(string name) => s[name]?.GetValue<long>() ?? 0;
        return new DrillCounters(Get("drains_remote"), Get("drains_by_owner"), Get("drains_coalesced"), Get("reader_restarts"), Get("pages_migrated"));
    }

    public IReadOnlyList<string> VerifyAndRelease() => [];

    public void Dispose()
    {
        _events.Dispose();
        _client.Dispose();
        _eventThread.Join(TimeSpan.FromSeconds(5));
    }
}
