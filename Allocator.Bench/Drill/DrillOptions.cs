using System.Globalization;

namespace Numalloc.Bench.Drill;

/// <summary>The drill's command line.</summary>
internal sealed record DrillOptions
{
    /// <summary>Total duration; steady steps without a duration share what the hotplug steps leave.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Simulated nodes.</summary>
    public int Nodes { get; init; } = 4;

    /// <summary>Worker threads; default one per core plus one.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount + 1;

    /// <summary>Small raw allocation sizes, bytes (inclusive).</summary>
    public int SmallMin { get; init; } = 8;

    /// <inheritdoc cref="SmallMin"/>
    public int SmallMax { get; init; } = 4096;

    /// <summary>Large raw allocation sizes, bytes (inclusive).</summary>
    public int LargeMin { get; init; } = 64 * 1024;

    /// <inheritdoc cref="LargeMin"/>
    public int LargeMax { get; init; } = 1024 * 1024;

    /// <summary>A scenario file (text form, see <see cref="DrillScenario"/>); null = the default scenario.</summary>
    public string? ScenarioPath { get; init; }

    /// <summary>Seed of the workload's random choices.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Where the HTML report goes.</summary>
    public string ReportPath { get; init; } = Path.Combine("artifacts", "drill", "report.html");

    /// <summary>Plain progress lines even on a terminal.</summary>
    public bool Plain { get; init; }

    /// <summary>Run the scenario against the process serving this control socket instead of an in-process heap.</summary>
    public string? AttachSocket { get; init; }

    /// <summary>The usage text.</summary>
    public const string Usage =
        "usage: Allocator.Bench drill [--duration 10s] [--nodes 4] [--threads N] [--sizes 8-4096[,65536-1048576]]\n" +
        "                             [--scenario FILE] [--seed N] [--report PATH.html] [--plain] [--attach SOCKET]";

    /// <summary>Parses the drill's arguments (after the verb).</summary>
    /// <exception cref="FormatException">An unknown option or a bad value, named.</exception>
    public static DrillOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new DrillOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{name} needs a value");
            options = name switch
            {
                "--duration" => options with { Duration = DrillScenario.ParseDuration(Value()) },
                "--nodes" => options with { Nodes = ParseInt(name, Value(), 2, 64) },
                "--threads" => options with { Threads = ParseInt(name, Value(), 1, 1024) },
                "--sizes" => ParseSizes(options, Value()),
                "--scenario" => options with { ScenarioPath = Value() },
                "--seed" => options with { Seed = ParseInt(name, Value(), 0, int.MaxValue) },
                "--report" => options with { ReportPath = Value() },
                "--plain" => options with { Plain = true },
                "--attach" => options with { AttachSocket = Value() },
                _ => throw new FormatException($"unknown option '{name}'"),
            };
        }
        return options;
    }

    private static int ParseInt(string name, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max
            ? value
            : throw new FormatException($"{name} must be a number from {min} to {max}, not '{text}'");

    private static DrillOptions ParseSizes(DrillOptions options, string text)
    {
        string[] ranges = text.Split(',');
        if (ranges.Length > 2)
            throw new FormatException("--sizes takes SMALL or SMALL,LARGE ranges, e.g. 8-4096,65536-1048576");
        (int smallMin, int smallMax) = ParseRange(ranges[0], 1, 32 * 1024);
        options = options with { SmallMin = smallMin, SmallMax = smallMax };
        if (ranges.Length == 2)
        {
            (int largeMin, int largeMax) = ParseRange(ranges[1], 32 * 1024 + 1, 64 * 1024 * 1024);
            options = options with { LargeMin = largeMin, LargeMax = largeMax };
        }
        return options;
    }

    private static (int Min, int Max) ParseRange(string text, int floor, int ceiling)
    {
        string[] ends = text.Split('-');
        if (ends.Length != 2
            || !int.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out int min)
            || !int.TryParse(ends[1], NumberStyles.None, CultureInfo.InvariantCulture, out int max)
            || min < floor || max > ceiling || min > max)
        {
            throw new FormatException($"size range '{text}' must be MIN-MAX within {floor}..{ceiling}");
        }
        return (min, max);
    }
}
