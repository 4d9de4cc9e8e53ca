using System.Globalization;

namespace Numalloc.Bench.Drill;

/// <summary>What a drill step does.</summary>
internal enum DrillStepKind
{
    /// <summary>Run the workload and change nothing.</summary>
    Steady,

    /// <summary>Take a block, zone or node offline.</summary>
    Offline,

    /// <summary>Bring a block, zone or node online.</summary>
    Online,

    /// <summary>Bring every offline block, zone and node back.</summary>
    OnlineAll,
}

/// <summary>What an offline or online step acts on.</summary>
internal enum DrillTarget
{
    /// <summary>No target (steady, online all).</summary>
    None,

    /// <summary>One memory block.</summary>
    Block,

    /// <summary>One zone of a node.</summary>
    Zone,

    /// <summary>A whole node.</summary>
    Node,
}

/// <summary>
/// One step of a drill scenario. Blocks are named by id, by <see cref="LastBlock"/> (the block the
/// latest "online block" step brought online) or, to online, by <see cref="NewBlockOfNode"/> (a
/// never-used block of <see cref="Node"/>).
/// </summary>
internal sealed record DrillStep(DrillStepKind Kind, DrillTarget Target, string Text)
{
    /// <summary>A block id meaning "the block the latest online-block step brought online".</summary>
    public const int LastBlock = -1;

    /// <summary>A block id meaning "a never-used block of <see cref="Node"/>" (online only).</summary>
    public const int NewBlockOfNode = -2;

    /// <summary>Steady steps: how long; a null duration takes an equal share of the drill's duration.</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>The node (zone and node targets, and new blocks).</summary>
    public int Node { get; init; } = -1;

    /// <summary>The zone: "normal" or "movable" (zone targets, and the zone a block is onlined into).</summary>
    public string? Zone { get; init; }

    /// <summary>The block id, or <see cref="LastBlock"/> / <see cref="NewBlockOfNode"/>.</summary>
    public int Block { get; init; } = LastBlock;

    /// <summary>Offline timeout in milliseconds.</summary>
    public int TimeoutMs { get; init; } = 5000;

    /// <summary>The result the step must end with (lower case, the design's table: ok, busy, ...); null = ok.</summary>
    public string Expect { get; init; } = "ok";

    /// <summary>Online-block steps: fill the new block with movable buffers before the next step.</summary>
    public bool Fill { get; init; }
}

/// <summary>A drill's steps, and the text form they are written in.</summary>
/// <remarks>
/// One step per line; <c>#</c> starts a comment:
/// <code>
/// steady [DURATION]                                  e.g. steady 2s, steady 500ms
/// offline zone NODE normal|movable [timeout=MS] [expect=RESULT]
/// offline node NODE [timeout=MS] [expect=RESULT]
/// offline block ID|last [timeout=MS] [expect=RESULT]
/// online zone NODE normal|movable [expect=RESULT]
/// online node NODE [expect=RESULT]
/// online block ID|new:NODE normal|movable [fill] [expect=RESULT]
/// online all
/// </code>
/// RESULT is one of ok, busy, inprogress, cancelled, timedout, invalid (the design's table).
/// </remarks>
internal sealed class DrillScenario
{
    /// <summary>The results a step may expect.</summary>
    public static readonly IReadOnlyList<string> Results = ["ok", "busy", "inprogress", "cancelled", "timedout", "invalid"];

    public DrillScenario(IReadOnlyList<DrillStep> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Count == 0)
            throw new FormatException("a drill scenario needs at least one step");
        Steps = steps;
    }

    /// <summary>The steps, in order.</summary>
    public IReadOnlyList<DrillStep> Steps { get; }

    /// <summary>
    /// The issue's scenario for a heap of at least four nodes: steady; offline node 3's Movable
    /// zone; online a never-used block of node 2 into Movable, fill it and offline it again (its
    /// buffers migrate); offline node 1's Normal zone while it holds live allocations (Busy, rolled
    /// back); online everything; steady.
    /// </summary>
    public static DrillScenario Default(int nodes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 2);
        int last = nodes - 1, second = Math.Min(2, last), busy = Math.Min(1, last);
        return Parse(string.Join('\n',
            "steady",
            $"offline zone {last} movable",
            $"online block new:{second} movable fill",
            "offline block last",
            $"offline zone {busy} normal expect=busy",
            "online all",
            "steady"));
    }

    /// <summary>Parses the text form.</summary>
    /// <exception cref="FormatException">A line that is not a step; the message names the line.</exception>
    public static DrillScenario Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var steps = new List<DrillStep>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
                line = line[..hash];
            line = line.Trim();
            if (line.Length == 0)
                continue;
            try
            {
                steps.Add(ParseStep(line));
            }
            catch (FormatException e)
            {
                throw new FormatException($"scenario line {i + 1} ('{line}'): {e.Message}", e);
            }
        }
        return new DrillScenario(steps);
    }

    private static DrillStep ParseStep(string line)
    {
        string[] words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string verb = words[0].ToLowerInvariant();
        switch (verb)
        {
            case "steady":
                if (words.Length > 2)
                    throw new FormatException("steady takes at most a duration");
                return new DrillStep(DrillStepKind.Steady, DrillTarget.None, line)
                {
                    Duration = words.Length == 2 ? ParseDuration(words[1]) : null,
                };
            case "online" when words.Length == 2 && words[1].Equals("all", StringComparison.OrdinalIgnoreCase):
                return new DrillStep(DrillStepKind.OnlineAll, DrillTarget.None, line);
            case "offline":
            case "online":
                return ParseHotplug(verb == "offline" ? DrillStepKind.Offline : DrillStepKind.Online, words, line);
            default:
                throw new FormatException($"unknown step '{words[0]}' (steady, offline, online)");
        }
    }

    private static DrillStep ParseHotplug(DrillStepKind kind, string[] words, string line)
    {
        if (words.Length < 3)
            throw new FormatException($"{words[0]} needs a target: block, zone or node, and which one");
        bool offline = kind == DrillStepKind.Offline;
        var step = new DrillStep(kind, DrillTarget.None, line);
        int next;
        switch (words[1].ToLowerInvariant())
        {
            case "node":
                step = step with { Target = DrillTarget.Node, Node = ParseCount(words[2], "node") };
                next = 3;
                break;
            case "zone":
                if (words.Length < 4)
                    throw new FormatException("a zone is named by node and type: zone 1 movable");
                step = step with { Target = DrillTarget.Zone, Node = ParseCount(words[2], "node"), Zone = ParseZone(words[3]) };
                next = 4;
                break;
            case "block":
                step = step with { Target = DrillTarget.Block };
                string which = words[2].ToLowerInvariant();
                if (which == "last")
                {
                    step = step with { Block = DrillStep.LastBlock };
                }
                else if (which.StartsWith("new:", StringComparison.Ordinal))
                {
                    if (offline)
                        throw new FormatException("only online can take a new block");
                    step = step with { Block = DrillStep.NewBlockOfNode, Node = ParseCount(which[4..], "node") };
                }
                else
                {
                    step = step with { Block = ParseCount(which, "block") };
                }
                next = 3;
                if (!offline)
                {
                    if (words.Length < 4)
                        throw new FormatException("online block needs the zone it joins: normal or movable");
                    step = step with { Zone = ParseZone(words[3]) };
                    next = 4;
                }
                break;
            default:
                throw new FormatException($"unknown target '{words[1]}' (block, zone, node)");
        }

        for (int i = next; i < words.Length; i++)
        {
            string word = words[i].ToLowerInvariant();
            if (word == "fill" && !offline && step.Target == DrillTarget.Block)
                step = step with { Fill = true };
            else if (word.StartsWith("timeout=", StringComparison.Ordinal) && offline)
                step = step with { TimeoutMs = ParseCount(word[8..], "timeout") };
            else if (word.StartsWith("expect=", StringComparison.Ordinal))
                step = step with { Expect = ParseResult(word[7..]) };
            else
                throw new FormatException($"unexpected '{words[i]}'");
        }
        return step;
    }

    /// <summary>Parses "2s", "500ms", "1.5s" or "1m".</summary>
    internal static TimeSpan ParseDuration(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        (string number, double scaleMs) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 1.0)
            : t.EndsWith('s') ? (t[..^1], 1000.0)
            : t.EndsWith('m') ? (t[..^1], 60_000.0)
            : (t, 1000.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value <= 0 || double.IsInfinity(value))
            throw new FormatException($"'{text}' is not a duration (e.g. 2s, 500ms)");
        return TimeSpan.FromMilliseconds(value * scaleMs);
    }

    private static int ParseCount(string text, string what) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new FormatException($"{what} must be a non-negative number, not '{text}'");

    private static string ParseZone(string text) => text.ToLowerInvariant() switch
    {
        "normal" => "normal",
        "movable" => "movable",
        _ => throw new FormatException($"zone must be normal or movable, not '{text}'"),
    };

    private static string ParseResult(string text) =>
        Results.Contains(text) ? text : throw new FormatException($"expect must be one of {string.Join(", ", Results)}, not '{text}'");
}
