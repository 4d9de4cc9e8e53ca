using System.Text.Json;
using System.Text.Json.Nodes;

namespace Numalloc.Admin;

/// <summary>The operations of the control socket's protocol.</summary>
internal enum AdminOp
{
    /// <summary>Nodes, CPUs, distances.</summary>
    Topology,

    /// <summary>The full stats snapshot.</summary>
    Stats,

    /// <summary>Every memory block with node, zone and state.</summary>
    Blocks,

    /// <summary>Offline a block, a zone or a node.</summary>
    Offline,

    /// <summary>Online a block (into a zone), a zone or a node.</summary>
    Online,

    /// <summary>Drain every cache.</summary>
    Drain,

    /// <summary>Give free memory back to the OS now.</summary>
    Trim,

    /// <summary>Read, or with min/low/high set, a zone's watermarks.</summary>
    Watermarks,

    /// <summary>Stream hotplug events on this connection until it closes.</summary>
    Subscribe,
}

/// <summary>A request that cannot be served as written: answered with an error reply, the connection stays up.</summary>
internal sealed class AdminRequestException(string error, string message) : Exception(message)
{
    /// <summary>The reply's machine-readable error: "malformed", "unknown_op", "bad_argument", "too_large"...</summary>
    public string Error { get; } = error;
}

/// <summary>
/// One request of the control socket's protocol, one JSON object per line:
/// <c>{"op":"offline","node":1,"zone":"movable","timeout_ms":5000}</c>. Offline and online name a
/// block (<c>"block"</c>, plus <c>"zone"</c> to online it), a zone (<c>"node"</c> and <c>"zone"</c>)
/// or a node (<c>"node"</c> alone). Unknown members are refused, so a typo never runs another operation.
/// </summary>
internal sealed record AdminRequest(AdminOp Op)
{
    /// <summary>Default offline timeout when a request gives none.</summary>
    public const int DefaultTimeoutMs = 5000;

    /// <summary>The node, or null.</summary>
    public int? Node { get; init; }

    /// <summary>"normal" or "movable", or null.</summary>
    public string? Zone { get; init; }

    /// <summary>The block id, or null.</summary>
    public int? Block { get; init; }

    /// <summary>Offline timeout, ms.</summary>
    public int TimeoutMs { get; init; } = DefaultTimeoutMs;

    /// <summary>Watermarks to set (pages), or null to leave as they are.</summary>
    public long? Min { get; init; }

    /// <inheritdoc cref="Min"/>
    public long? Low { get; init; }

    /// <inheritdoc cref="Min"/>
    public long? High { get; init; }

    private static readonly Dictionary<string, AdminOp> s_ops = new(StringComparer.Ordinal)
    {
        ["topology"] = AdminOp.Topology, ["stats"] = AdminOp.Stats, ["blocks"] = AdminOp.Blocks,
        ["offline"] = AdminOp.Offline, ["online"] = AdminOp.Online, ["drain"] = AdminOp.Drain,
        ["trim"] = AdminOp.Trim, ["watermarks"] = AdminOp.Watermarks, ["subscribe"] = AdminOp.Subscribe,
    };

    /// <summary>The op names, as the protocol spells them.</summary>
    public static IEnumerable<string> OpNames => s_ops.Keys;

    /// <summary>Parses one request line.</summary>
    /// <exception cref="AdminRequestException">Malformed JSON, an unknown op, a member of the wrong type or one the op does not take.</exception>
    public static AdminRequest Parse(string line)
    {
        JsonObject request;
        try
        {
            request = JsonNode.Parse(line) as JsonObject ?? throw new AdminRequestException("malformed", "a request is one JSON object");
        }
        catch (JsonException e)
        {
            throw new AdminRequestException("malformed", "not JSON: " + e.Message);
        }

        string opName = String(request, "op") ?? throw new AdminRequestException("bad_argument", "\"op\" is required");
        if (!s_ops.TryGetValue(opName, out AdminOp op))
            throw new AdminRequestException("unknown_op", $"unknown op '{opName}' (one of {string.Join(", ", s_ops.Keys)})");

        string[] allowed = op switch
        {
            AdminOp.Offline => ["node", "zone", "block", "timeout_ms"],
            AdminOp.Online => ["node", "zone", "block"],
            AdminOp.Watermarks => ["node", "zone", "min", "low", "high"],
            _ => [],
        };
        foreach (KeyValuePair<string, JsonNode?> member in request)
        {
            if (member.Key != "op" && Array.IndexOf(allowed, member.Key) < 0)
                throw new AdminRequestException("bad_argument", $"'{opName}' does not take \"{member.Key}\"");
        }

        var parsed = new AdminRequest(op)
        {
            Node = Int(request, "node"),
            Zone = ZoneName(request),
            Block = Int(request, "block"),
            TimeoutMs = Int(request, "timeout_ms") ?? DefaultTimeoutMs,
            Min = Long(request, "min"),
            Low = Long(request, "low"),
            High = Long(request, "high"),
        };
        parsed.Validate();
        return parsed;
    }

    private void Validate()
    {
        switch (Op)
        {
            case AdminOp.Offline or AdminOp.Online:
                if (Block is not null && Node is not null)
                    throw new AdminRequestException("bad_argument", "name a block, or a node (with a zone), not both");
                if (Block is null && Node is null)
                    throw new AdminRequestException("bad_argument", $"{Name(Op)} needs \"block\", or \"node\" (and \"zone\")");
                if (Op == AdminOp.Offline && Block is not null && Zone is not null)
                    throw new AdminRequestException("bad_argument", "an offline block takes no zone");
                if (Op == AdminOp.Online && Block is not null && Zone is null)
                    throw new AdminRequestException("bad_argument", "online of a block needs the \"zone\" it joins");
                break;
            case AdminOp.Watermarks:
                if ((Min ?? Low ?? High) is not null && (Node is null || Zone is null))
                    throw new AdminRequestException("bad_argument", "setting watermarks needs \"node\" and \"zone\"");
                if ((Node is null) != (Zone is null))
                    throw new AdminRequestException("bad_argument", "a zone is named by \"node\" and \"zone\"");
                break;
        }
    }

    /// <summary>The protocol's name of an op.</summary>
    public static string Name(AdminOp op) => s_ops.First(pair => pair.Value == op).Key;

    private static string? String(JsonObject request, string name) =>
        request[name] switch
        {
            null => null,
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            _ => throw new AdminRequestException("bad_argument", $"\"{name}\" must be a string"),
        };

    private static long? Long(JsonObject request, string name)
    {
        JsonNode? node = request[name];
        if (node is null)
            return null;
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out long number) && number >= 0)
            return number;
        throw new AdminRequestException("bad_argument", $"\"{name}\" must be a non-negative integer");
    }

    private static int? Int(JsonObject request, string name)
    {
        long? value = Long(request, name);
        return value is null ? null
            : value <= int.MaxValue ? (int)value
            : throw new AdminRequestException("bad_argument", $"\"{name}\" is out of range");
    }

    private static string? ZoneName(JsonObject request) => String(request, "zone") switch
    {
        null => null,
        "normal" => "normal",
        "movable" => "movable",
        string other => throw new AdminRequestException("bad_argument", $"\"zone\" must be \"normal\" or \"movable\", not '{other}'"),
    };
}
