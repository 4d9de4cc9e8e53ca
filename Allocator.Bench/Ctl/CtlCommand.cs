using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Numalloc.Bench.Ctl;

/// <summary>
/// <c>Allocator.Bench ctl --socket PATH [--json] OP [ARGS]</c>: the control socket's client. One
/// request, one reply (or, for <c>watch</c>, the event stream); human-readable output unless
/// <c>--json</c>; the exit code says how the request ended (see <see cref="ExitCodes"/>).
/// </summary>
internal static class CtlCommand
{
    /// <summary>Exit codes: one per result of the design's table, then the client's own failures.</summary>
    internal static class ExitCodes
    {
        public const int Ok = 0, Busy = 2, InProgress = 3, Cancelled = 4, TimedOut = 5, Invalid = 6, Refused = 7, Usage = 64, Unavailable = 69;
    }

    internal const string Usage =
        "usage: Allocator.Bench ctl --socket PATH [--json] OP [ARGS]\n" +
        "  topology | stats | blocks | drain | trim | watch\n" +
        "  offline block ID | zone NODE normal|movable | node NODE   [--timeout MS]\n" +
        "  online  block ID normal|movable | zone NODE normal|movable | node NODE\n" +
        "  watermarks [NODE normal|movable [--min PAGES] [--low PAGES] [--high PAGES]]\n" +
        "exit: 0 ok, 2 busy, 3 in progress, 4 cancelled, 5 timed out, 6 invalid, 7 refused, 64 usage, 69 no server";

    /// <summary>Runs the client; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string? socketPath = null;
        bool json = false;
        var rest = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--socket" && i + 1 < args.Count)
                socketPath = args[++i];
            else if (args[i] == "--json")
                json = true;
            else
                rest.Add(args[i]);
        }

        JsonObject request;
        try
        {
            if (socketPath is null)
                throw new FormatException("--socket PATH is required");
            request = BuildRequest(rest);
        }
        catch (FormatException e)
        {
            error.WriteLine("ctl: " + e.Message);
            error.WriteLine(Usage);
            return ExitCodes.Usage;
        }

        AdminClient client;
        try
        {
            client = new AdminClient(socketPath);
        }
        catch (SocketException e)
        {
            error.WriteLine($"ctl: cannot connect to {socketPath}: {e.Message}");
            return ExitCodes.Unavailable;
        }

        using (client)
        {
            string line;
            JsonObject reply;
            try
            {
                line = client.SendRaw(request);
                reply = JsonNode.Parse(line) as JsonObject ?? throw new IOException("the server's reply is not a JSON object");
            }
            catch (Exception e) when (e is IOException or JsonException or SocketException)
            {
                error.WriteLine("ctl: " + e.Message);
                return ExitCodes.Unavailable;
            }

            return Report(request, reply, line, json, client, output);
        }
    }

    private static int Report(JsonObject request, JsonObject reply, string line, bool json, AdminClient client, TextWriter output)
    {
        int code = ExitCodeOf(reply);
        if (json)
            output.WriteLine(line);
        else
            output.Write(Format(request, reply));

        if (request["op"]!.GetValue<string>() == "subscribe" && code == ExitCodes.Ok)
        {
            // watch: every event on its own line until the server goes away.
            while (client.ReadLine() is { } eventLine)
                output.WriteLine(json ? eventLine : FormatEvent(JsonNode.Parse(eventLine)!.AsObject()));
        }
        return code;
    }

    /// <summary>The request for the command words (after the options).</summary>
    /// <exception cref="FormatException">The words are not a command.</exception>
    internal static JsonObject BuildRequest(IReadOnlyList<string> words)
    {
        if (words.Count == 0)
            throw new FormatException("no operation given");
        var options = new Dictionary<string, long>(StringComparer.Ordinal);
        var positional = new List<string>();
        for (int i = 1; i < words.Count; i++)
        {
            if (words[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= words.Count)
                    throw new FormatException($"{words[i]} needs a value");
                options[words[i][2..]] = Number(words[i], words[++i]);
            }
            else
            {
                positional.Add(words[i]);
            }
        }

        string op = words[0];
        var request = new JsonObject { ["op"] = op == "watch" ? "subscribe" : op };
        switch (op)
        {
            case "topology" or "stats" or "blocks" or "drain" or "trim" or "watch":
                Expect(positional.Count == 0 && options.Count == 0, $"{op} takes no arguments");
                break;
            case "offline" or "online":
                Expect(positional.Count >= 2, $"{op} needs a target: block ID, zone NODE TYPE or node NODE");
                switch (positional[0])
                {
                    case "block":
                        request["block"] = Number("block", positional[1]);
                        if (op == "online")
                        {
                            Expect(positional.Count == 3, "online block needs the zone it joins: normal or movable");
                            request["zone"] = Zone(positional[2]);
                        }
                        else
                        {
                            Expect(positional.Count == 2, "offline block takes only the block id");
                        }
                        break;
                    case "zone":
                        Expect(positional.Count == 3, "a zone is NODE normal|movable");
                        request["node"] = Number("node", positional[1]);
                        request["zone"] = Zone(positional[2]);
                        break;
                    case "node":
                        Expect(positional.Count == 2, "node takes only the node number");
                        request["node"] = Number("node", positional[1]);
                        break;
                    default:
                        throw new FormatException($"unknown target '{positional[0]}' (block, zone, node)");
                }
                foreach ((string name, long value) in options)
                {
                    Expect(name == "timeout" && op == "offline", $"--{name} is not an option of {op}");
                    request["timeout_ms"] = value;
                }
                break;
            case "watermarks":
                Expect(positional.Count is 0 or 2, "watermarks takes nothing, or NODE normal|movable");
                if (positional.Count == 2)
                {
                    request["node"] = Number("node", positional[0]);
                    request["zone"] = Zone(positional[1]);
                }
                foreach ((string name, long value) in options)
                {
                    Expect(name is "min" or "low" or "high" && positional.Count == 2, $"--{name} is not an option here (--min/--low/--high with NODE TYPE)");
                    request[name] = value;
                }
                break;
            default:
                throw new FormatException($"unknown operation '{op}'");
        }
        return request;
    }

    private static void Expect(bool condition, string message)
    {
        if (!condition)
            throw new FormatException(message);
    }

    private static long Number(string what, string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            ? value
            : throw new FormatException($"{what} must be a non-negative number, not '{text}'");

    private static string Zone(string text) => text is "normal" or "movable"
        ? text
        : throw new FormatException($"zone must be normal or movable, not '{text}'");

    /// <summary>The exit code a reply means.</summary>
    internal static int ExitCodeOf(JsonObject reply)
    {
        if (reply["ok"] is JsonValue ok && ok.GetValueKind() == JsonValueKind.True)
            return ExitCodes.Ok;
        return (reply["error"] as JsonValue)?.GetValue<string>() switch
        {
            "busy" => ExitCodes.Busy,
            "inprogress" => ExitCodes.InProgress,
            "cancelled" => ExitCodes.Cancelled,
            "timedout" => ExitCodes.TimedOut,
            "invalid" => ExitCodes.Invalid,
            _ => ExitCodes.Refused,
        };
    }

    /// <summary>The reply for a person: blocks as a table like lsmem, results as one line, anything else as indented JSON.</summary>
    internal static string Format(JsonObject request, JsonObject reply)
    {
        string op = request["op"]!.GetValue<string>();
        var sb = new StringBuilder();
        if (ExitCodeOf(reply) != ExitCodes.Ok)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{op}: {reply["error"]?.ToString() ?? "failed"}");
            if (reply["message"] is JsonValue message)
                sb.Append(": ").Append(message.ToString());
            return sb.AppendLine().ToString();
        }
        switch (op)
        {
            case "blocks" when reply["blocks"] is JsonArray blocks:
                FormatBlocks(sb, blocks);
                return sb.ToString();
            case "offline" or "online":
                sb.Append(op).Append(' ').Append(Target(request)).Append(": ok");
                if (reply["pages_migrated"] is JsonValue migrated)
                    sb.Append(CultureInfo.InvariantCulture, $", {migrated} pages migrated");
                if (reply["duration_ms"] is JsonValue ms)
                    sb.Append(CultureInfo.InvariantCulture, $", {ms} ms");
                return sb.AppendLine().ToString();
            case "subscribe":
                return "watching hotplug events (Ctrl-C to stop)" + Environment.NewLine;
            default:
                return reply.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine;
        }
    }

    private static string Target(JsonObject request) =>
        request["block"] is { } block ? $"block {block}"
        : request["zone"] is { } zone ? $"zone {request["node"]} {zone}"
        : $"node {request["node"]}";

    // Like lsmem: one row per run of blocks with the same node, zone and state.
    private static void FormatBlocks(StringBuilder sb, JsonArray blocks)
    {
        sb.AppendLine("BLOCKS        NODE  ZONE     STATE       SIZE");
        long total = 0, online = 0;
        int runStart = -1, runEnd = -1;
        string? runKey = null;
        long runSize = 0;
        void Flush()
        {
            if (runKey is null)
                return;
            string[] parts = runKey.Split('|');
            string range = runStart == runEnd ? $"{runStart}" : $"{runStart}-{runEnd}";
            sb.Append(CultureInfo.InvariantCulture, $"{range,-13} {parts[0],4}  {parts[1],-7}  {parts[2],-10}  {FormatBytes(runSize),6}").AppendLine();
        }
        foreach (JsonNode? node in blocks)
        {
            var block = node!.AsObject();
            int id = block["id"]!.GetValue<int>();
            long size = block["size"]!.GetValue<long>();
            string state = block["state"]!.GetValue<string>();
            string key = $"{block["node"]}|{block["zone"]?.GetValue<string>() ?? "-"}|{state}";
            total += size;
            if (state == "online")
                online += size;
            if (key == runKey && id == runEnd + 1)
            {
                runEnd = id;
                runSize += size;
                continue;
            }
            Flush();
            (runKey, runStart, runEnd, runSize) = (key, id, id, size);
        }
        Flush();
        sb.AppendLine();
        sb.Append(CultureInfo.InvariantCulture, $"Total online memory: {FormatBytes(online)} of {FormatBytes(total)} reserved").AppendLine();
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 30) == 0 => (bytes >> 30).ToString(CultureInfo.InvariantCulture) + "G",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.#", CultureInfo.InvariantCulture) + "M",
        >= 1L << 10 => (bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + "K",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + "B",
    };

    private static string FormatEvent(JsonObject e) =>
        string.Join("  ", e.Select(pair => $"{pair.Key}={pair.Value?.ToJsonString().Trim('"')}"));
}
