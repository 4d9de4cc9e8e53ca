using System.Text.Json.Nodes;
using Numalloc.Hotplug;
using Numalloc.Pages;

namespace Numalloc.Admin;

/// <summary>
/// The admin API as the control socket serves it: each typed request becomes one call on
/// <see cref="AllocatorAdmin"/>, each result one JSON reply. Hotplug results carry <c>"ok"</c>,
/// <c>"result"</c> (the design's name), the count the result is about, pages migrated and the
/// duration; a failed one also <c>"error"</c> (busy, inprogress, cancelled, timedout, invalid).
/// </summary>
internal sealed class AdminEndpoint : IAdminEndpoint
{
    private readonly AllocatorAdmin _admin;
    private readonly Func<long> _allocations;
    private readonly Lock _subscribersLock = new();
    private Action<JsonObject>[] _subscribers = [];
    private readonly IDisposable _listener;

    /// <param name="admin">What the requests act on.</param>
    /// <param name="allocations">The process's allocation count for the stats summary (the attached drill's throughput); null: pages allocated from the zones.</param>
    public AdminEndpoint(AllocatorAdmin admin, Func<long>? allocations = null)
    {
        ArgumentNullException.ThrowIfNull(admin);
        _admin = admin;
        _allocations = allocations ?? ZoneAllocations;
        _listener = admin.RegisterListener(new EventForwarder(this));
    }

    /// <summary>Stops forwarding hotplug events.</summary>
    public void Detach() => _listener.Dispose();

    public JsonObject Execute(AdminRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Op switch
        {
            AdminOp.Topology => Topology(),
            AdminOp.Stats => Stats(),
            AdminOp.Blocks => Blocks(),
            AdminOp.Offline => Hotplug(request),
            AdminOp.Online => Hotplug(request),
            AdminOp.Drain => Drain(),
            AdminOp.Trim => new JsonObject { ["ok"] = true, ["purged_bytes"] = _admin.Trim() },
            AdminOp.Watermarks => Watermarks(request),
            _ => throw new AdminRequestException("bad_argument", $"'{AdminRequest.Name(request.Op)}' is not served by Execute"),
        };
    }

    public IDisposable Subscribe(Action<JsonObject> onEvent)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        lock (_subscribersLock)
            _subscribers = [.. _subscribers, onEvent];
        return new Subscription(this, onEvent);
    }

    private void Publish(JsonObject e)
    {
        // Copy-on-write array: publishing takes no lock and never waits on a subscriber.
        Action<JsonObject>[] subscribers = Volatile.Read(ref _subscribers);
        foreach (Action<JsonObject> subscriber in subscribers)
            subscriber((JsonObject)e.DeepClone());
    }

    private JsonObject Topology()
    {
        var topology = _admin.Topology;
        var nodes = new JsonArray();
        foreach (var node in topology.Nodes)
        {
            var distances = new JsonArray();
            for (int other = 0; other < topology.NodeCount; other++)
                distances.Add((JsonNode)topology.Distance(node.Id, other));
            nodes.Add((JsonNode)new JsonObject
            {
                ["id"] = node.Id,
                ["physical_node"] = node.PhysicalNode,
                ["cpus"] = new JsonArray([.. node.Cpus.Select(cpu => (JsonNode)cpu)]),
                ["memory_bytes"] = node.MemoryBytes,
                ["distances"] = distances,
            });
        }
        return new JsonObject
        {
            ["ok"] = true,
            ["simulated"] = topology.IsSimulated,
            ["block_bytes"] = _admin.BlockBytes,
            ["blocks"] = _admin.BlockCount,
            ["nodes"] = nodes,
        };
    }

    private JsonObject Stats()
    {
        AllocatorStats stats = _admin.GetStats();
        return new JsonObject
        {
            ["ok"] = true,
            // What the attached drill reads per step; the full snapshot follows.
            ["summary"] = new JsonObject
            {
                ["allocations"] = _allocations(),
                ["drains_remote"] = stats.Drains.DoneRemotely,
                ["drains_by_owner"] = stats.Drains.DoneByOwner,
                ["drains_coalesced"] = stats.Drains.Coalesced,
                ["reader_restarts"] = stats.Zonelists.ReaderRestarts,
                ["pages_migrated"] = stats.Movable.PagesMigrated,
            },
            ["stats"] = JsonNode.Parse(AllocatorAdmin.ToJson(stats)),
        };
    }

    private long ZoneAllocations()
    {
        long total = 0;
        foreach (NodeStatsInfo node in _admin.GetStats().Nodes)
        {
            foreach (ZoneStatsInfo zone in node.Zones)
                total += zone.Allocations;
        }
        return total;
    }

    private JsonObject Blocks()
    {
        var blocks = new JsonArray();
        foreach (MemoryBlockInfo block in _admin.GetBlocks())
        {
            blocks.Add((JsonNode)new JsonObject
            {
                ["id"] = block.Id,
                ["node"] = block.Node,
                ["zone"] = block.State == BlockState.Absent ? null : ZoneName(block.Zone),
                ["state"] = block.State.ToString().ToLowerInvariant(),
                ["size"] = _admin.BlockBytes,
            });
        }
        return new JsonObject { ["ok"] = true, ["blocks"] = blocks };
    }

    private JsonObject Hotplug(AdminRequest request)
    {
        bool offline = request.Op == AdminOp.Offline;
        ZoneType zone = request.Zone == "movable" ? ZoneType.Movable : ZoneType.Normal;
        Action<HotplugProgress> progress = p => Publish(new JsonObject
        {
            ["event"] = "progress",
            ["phase"] = p.Phase.ToString().ToLowerInvariant(),
            ["round"] = p.Round,
            ["pages_to_migrate"] = p.PagesToMigrate,
            ["pages_migrated"] = p.PagesMigrated,
            ["pages_remaining"] = p.PagesRemaining,
        });
        HotplugResult result = (offline, request.Block, request.Zone) switch
        {
            (true, int block, _) => _admin.OfflineBlock(block, request.TimeoutMs, progress),
            (true, null, null) => _admin.OfflineNode(request.Node!.Value, request.TimeoutMs, progress),
            (true, null, _) => _admin.OfflineZone(request.Node!.Value, zone, request.TimeoutMs, progress),
            (false, int block, _) => _admin.OnlineBlock(block, zone),
            (false, null, null) => _admin.OnlineNode(request.Node!.Value),
            (false, null, _) => _admin.OnlineZone(request.Node!.Value, zone),
        };
        string name = ResultName(result.Status);
        var reply = new JsonObject
        {
            ["ok"] = result.IsOk,
            ["result"] = name,
            ["count"] = result.Count,
            ["message"] = result.Message,
            ["blocks"] = new JsonArray([.. result.Blocks.Select(b => (JsonNode)b)]),
            ["pages_migrated"] = result.PagesMigrated,
            ["rounds"] = result.Rounds,
            ["duration_ms"] = Math.Round(result.Duration.TotalMilliseconds, 3),
        };
        if (!result.IsOk)
            reply["error"] = name;
        return reply;
    }

    private JsonObject Drain()
    {
        _admin.DrainCaches();
        return new JsonObject { ["ok"] = true };
    }

    private JsonObject Watermarks(AdminRequest request)
    {
        if (request.Node is int node)
        {
            ZoneType zone = request.Zone == "movable" ? ZoneType.Movable : ZoneType.Normal;
            if (node >= _admin.Topology.NodeCount)
                throw new AdminRequestException("invalid", $"node {node} does not exist (nodes 0..{_admin.Topology.NodeCount - 1})");
            if ((request.Min ?? request.Low ?? request.High) is not null)
            {
                Pages.Watermarks current = CurrentWatermarks(node, zone);
                var wanted = new Pages.Watermarks(request.Min ?? current.Min, request.Low ?? current.Low, request.High ?? current.High);
                if (wanted.Min > wanted.Low || wanted.Low > wanted.High)
                    throw new AdminRequestException("invalid", $"watermarks must be min <= low <= high, not {wanted.Min}/{wanted.Low}/{wanted.High}");
                _admin.SetWatermarks(node, zone, wanted);
            }
        }

        var zones = new JsonArray();
        foreach (NodeStatsInfo nodeStats in _admin.GetStats().Nodes)
        {
            foreach (ZoneStatsInfo z in nodeStats.Zones)
            {
                if (request.Node is int only && (only != z.Node || ZoneName(z.Zone) != request.Zone))
                    continue;
                zones.Add((JsonNode)new JsonObject
                {
                    ["node"] = z.Node,
                    ["zone"] = ZoneName(z.Zone),
                    ["min"] = z.Watermarks.Min,
                    ["low"] = z.Watermarks.Low,
                    ["high"] = z.Watermarks.High,
                    ["free_pages"] = z.FreePages,
                });
            }
        }
        return new JsonObject { ["ok"] = true, ["zones"] = zones };
    }

    private Pages.Watermarks CurrentWatermarks(int node, ZoneType zone) =>
        _admin.GetStats().Nodes[node].Zones.First(z => z.Zone == zone).Watermarks;

    private static string ZoneName(ZoneType zone) => zone == ZoneType.Movable ? "movable" : "normal";

    /// <summary>The protocol's (and ctl's) name of a result: the design's table in lower case.</summary>
    internal static string ResultName(HotplugStatus status) => status.ToString().ToLowerInvariant();

    private sealed class Subscription(AdminEndpoint endpoint, Action<JsonObject> callback) : IDisposable
    {
        public void Dispose()
        {
            lock (endpoint._subscribersLock)
                endpoint._subscribers = [.. endpoint._subscribers.Where(s => s != callback)];
        }
    }

    private sealed class EventForwarder(AdminEndpoint endpoint) : HotplugListener
    {
        private void Forward(string name, HotplugNotification n) => endpoint.Publish(new JsonObject
        {
            ["event"] = name,
            ["target"] = n.Target.ToString(),
            ["blocks"] = new JsonArray([.. n.Blocks.Select(b => (JsonNode)b)]),
        });

        public override bool OnGoingOffline(HotplugNotification notification)
        {
            Forward("going_offline", notification);
            return true;
        }

        public override void OnOffline(HotplugNotification notification) => Forward("offline", notification);

        public override void OnCancelOffline(HotplugNotification notification) => Forward("cancel_offline", notification);

        public override void OnOnline(HotplugNotification notification) => Forward("online", notification);
    }
}
