using System.Globalization;
using System.Text;

namespace Numalloc;

/// <summary>
/// Parses the allocator's configuration string (the <c>NUMALLOC_CONFIG</c> format):
/// <c>;</c>-separated <c>key=value</c> pairs, whitespace around keys and values trimmed, empty
/// segments ignored, keys and keyword values case-insensitive, each key at most once.
/// </summary>
/// <remarks>
/// Keys: <c>topology=os|sim:N|sim:NxC</c>, <c>normal=</c>, <c>movable=</c>, <c>normal_max=</c>,
/// <c>movable_max=</c>, <c>block=</c> (sizes: bytes, or with a K, M or G suffix (powers of 1024),
/// optionally followed by B), <c>distance=local,remote</c> or a full row-major N*N matrix (simulated
/// topologies only), <c>bind=preferred|strict</c>, <c>decay_ms=</c> (-1 = never), 
/// <c>on_bad_free=report|abort|check</c>, <c>admin_socket=PATH</c> (a path cannot contain <c>;</c>).
/// </remarks>
public static class ConfigParser
{
    /// <summary>The keys the parser knows, in the order <see cref="AllocatorOptions.ToConfigString"/> writes them.</summary>
    public static IReadOnlyList<string> KnownKeys { get; } =
    [
        "topology", "normal", "movable", "normal_max", "movable_max", "block",
        "distance", "bind", "decay_ms", "on_bad_free", "admin_socket",
    ];

    private const string Source = AllocatorOptions.EnvironmentVariable;
    private static readonly AllocatorOptions s_defaults = new();
    private const string SizeAllowed = "a size in bytes, or with a K, M or G suffix (e.g. 64M)";

    /// <summary>Parses a configuration string; keys not given keep their defaults.</summary>
    /// <param name="config">The configuration, e.g. <c>topology=sim:4;normal=128M</c>.</param>
    /// <returns>Validated options.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ConfigException">A key or value is bad; the message names the key, the value and what is allowed.</exception>
    public static AllocatorOptions Parse(string config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string segment in config.Split(';'))
        {
            string trimmed = segment.Trim();
            if (trimmed.Length == 0)
            {
                continue;
            }

            int eq = trimmed.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                throw new ConfigException(trimmed, $"{Source}: '{trimmed}': expected key=value; known keys: {string.Join(", ", KnownKeys)}");
            }

            string key = trimmed[..eq].Trim().ToLowerInvariant();
            string value = trimmed[(eq + 1)..].Trim();
            if (!KnownKeys.Contains(key))
            {
                throw new ConfigException(key, $"{Source}: '{trimmed}': unknown key '{key}'; known keys: {string.Join(", ", KnownKeys)}");
            }

            if (pairs.TryGetValue(key, out string? first))
            {
                throw new ConfigException(key, $"{Source}: '{key}={value}': duplicate key {key} (first given as '{key}={first}'); give each key once");
            }

            if (value.Length == 0)
            {
                throw new ConfigException(key, $"{Source}: '{key}=': {key} needs a value");
            }

            pairs.Add(key, value);
        }

        TopologySpec topology = pairs.TryGetValue("topology", out string? topologyText) ? ParseTopology(topologyText) : TopologySpec.Os;
        if (pairs.TryGetValue("distance", out string? distanceText))
        {
            topology = ParseDistances(distanceText, topology);
        }

        var options = new AllocatorOptions
        {
            Topology = topology,
            NormalBytes = SizeOr(pairs, "normal", allowZero: false, s_defaults.NormalBytes),
            MovableBytes = SizeOr(pairs, "movable", allowZero: true, s_defaults.MovableBytes),
            NormalMaxBytes = SizeOr(pairs, "normal_max", allowZero: false, s_defaults.NormalMaxBytes),
            MovableMaxBytes = SizeOr(pairs, "movable_max", allowZero: true, s_defaults.MovableMaxBytes),
            BlockBytes = pairs.TryGetValue("block", out string? blockText) ? ParseBlock(blockText) : s_defaults.BlockBytes,
            Bind = pairs.TryGetValue("bind", out string? bindText) ? ParseBind(bindText) : BindPolicy.Preferred,
            DecayMs = pairs.TryGetValue("decay_ms", out string? decayText) ? ParseDecay(decayText) : s_defaults.DecayMs,
            OnBadFree = pairs.TryGetValue("on_bad_free", out string? badFreeText) ? ParseBadFree(badFreeText) : BadFreeAction.Report,
            AdminSocket = pairs.TryGetValue("admin_socket", out string? socketText) ? ParseSocketPath(socketText) : null,
        };

        // Per-key checks passed above; this adds the rules between keys (normal_max >= normal, ...).
        options.Validate();
        return options;
    }

    private static TopologySpec ParseTopology(string value)
    {
        const string allowed = "topology must be os, sim:N (N nodes) or sim:NxC (N nodes of C CPUs)";
        string lower = value.ToLowerInvariant();
        if (lower == "os")
        {
            return TopologySpec.Os;
        }

        if (!lower.StartsWith("sim:", StringComparison.Ordinal))
        {
            throw Bad("topology", value, allowed);
        }

        string shape = lower[4..];
        int x = shape.IndexOf('x', StringComparison.Ordinal);
        string nodesText = x < 0 ? shape : shape[..x];
        string? cpusText = x < 0 ? null : shape[(x + 1)..];
        if (!TryParseCount(nodesText, out int nodes) || (cpusText is not null && !TryParseCount(cpusText, out _)))
        {
            throw Bad("topology", value, allowed);
        }

        int cpus = cpusText is null ? 0 : int.Parse(cpusText, NumberStyles.None, CultureInfo.InvariantCulture);
        if (nodes is < 1 or > TopologySpec.MaxNodes)
        {
            throw Bad("topology", value, $"a simulated topology needs 1..{TopologySpec.MaxNodes} nodes");
        }

        if (cpusText is not null && cpus is < 1 or > TopologySpec.MaxCpusPerNode)
        {
            throw Bad("topology", value, $"CPUs per node must be 1..{TopologySpec.MaxCpusPerNode} (or leave out xC to spread the machine's CPUs)");
        }

        return new TopologySpec { Kind = TopologyKind.Simulated, NodeCount = nodes, CpusPerNode = cpus };
    }

    private static TopologySpec ParseDistances(string value, TopologySpec topology)
    {
        if (topology.Kind != TopologyKind.Simulated)
        {
            throw Bad("distance", value, "distance applies only to a simulated topology (topology=sim:N); an os topology reads distances from the machine");
        }

        int n = topology.NodeCount;
        string[] parts = value.Split(',');
        var numbers = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            string part = parts[i].Trim();
            if (part.StartsWith('-'))
            {
                throw Bad("distance", value, $"distances must not be negative; each is {TopologySpec.LocalDistance}..{TopologySpec.MaxDistance}");
            }

            if (!TryParseCount(part, out numbers[i]))
            {
                throw Bad("distance", value, $"distance must be comma-separated whole numbers {TopologySpec.LocalDistance}..{TopologySpec.MaxDistance}: local,remote or a full {n}x{n} matrix");
            }
        }

        var matrix = new int[n, n];
        if (numbers.Length == 2)
        {
            int local = numbers[0];
            int remote = numbers[1];
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    matrix[i, j] = i == j ? local : remote;
                }
            }

            // With one node the remote distance is never used; still hold it to the rules.
            if (n == 1 && (remote <= local || remote > TopologySpec.MaxDistance))
            {
                throw Bad("distance", value, $"the remote distance must be more than the local one and at most {TopologySpec.MaxDistance}");
            }
        }
        else if (numbers.Length == n * n)
        {
            for (int i = 0; i < numbers.Length; i++)
            {
                matrix[i / n, i % n] = numbers[i];
            }
        }
        else
        {
            throw Bad("distance", value, $"distance needs 2 numbers (local,remote) or {n * n} numbers (a full row-major {n}x{n} matrix for {n} nodes), not {numbers.Length}");
        }

        string? error = TopologySpec.ValidateDistances(matrix, n);
        if (error is not null)
        {
            throw Bad("distance", value, error);
        }

        return new TopologySpec { Kind = TopologyKind.Simulated, NodeCount = n, CpusPerNode = topology.CpusPerNode, Distances = matrix };
    }

    private static long SizeOr(Dictionary<string, string> pairs, string key, bool allowZero, long fallback)
    {
        if (!pairs.TryGetValue(key, out string? value))
        {
            return fallback;
        }

        long bytes = ParseSize(key, value);
        string? error = CheckZoneSize(key, bytes, allowZero);
        return error is null ? bytes : throw Bad(key, value, error);
    }

    private static long ParseBlock(string value)
    {
        long bytes = ParseSize("block", value);
        string? error = CheckBlock(bytes);
        return error is null ? bytes : throw Bad("block", value, error);
    }

    private static BindPolicy ParseBind(string value) => value.ToLowerInvariant() switch
    {
        "preferred" => BindPolicy.Preferred,
        "strict" => BindPolicy.Strict,
        _ => throw Bad("bind", value, "bind must be preferred or strict"),
    };

    private static BadFreeAction ParseBadFree(string value) => value.ToLowerInvariant() switch
    {
        "report" => BadFreeAction.Report,
        "abort" => BadFreeAction.Abort,
        "check" => BadFreeAction.Check,
        _ => throw Bad("on_bad_free", value, "on_bad_free must be report, abort or check"),
    };

    private static int ParseDecay(string value)
    {
        if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int ms))
        {
            throw Bad("decay_ms", value, $"decay_ms must be a whole number of milliseconds: -1 (never purge), 0 (purge at once) or up to {int.MaxValue}");
        }

        string? error = CheckDecay(ms);
        return error is null ? ms : throw Bad("decay_ms", value, error);
    }

    private static string ParseSocketPath(string value)
    {
        string? error = CheckSocketPath(value);
        return error is null ? value : throw Bad("admin_socket", value, error);
    }

    /// <summary>Parses a size: digits, then optionally K, M or G (powers of 1024), then optionally B; case-insensitive.</summary>
    private static long ParseSize(string key, string value)
    {
        if (value.StartsWith('-'))
        {
            throw Bad(key, value, $"{key} must not be negative; it is {SizeAllowed}");
        }

        ReadOnlySpan<char> digits = value;
        if (digits.Length > 1 && digits[^1] is 'b' or 'B')
        {
            digits = digits[..^1];
        }

        long multiplier = 1;
        if (digits.Length > 1)
        {
            switch (digits[^1])
            {
                case 'k' or 'K': multiplier = AllocatorOptions.KiB; break;
                case 'm' or 'M': multiplier = AllocatorOptions.MiB; break;
                case 'g' or 'G': multiplier = AllocatorOptions.GiB; break;
                default: break;
            }

            if (multiplier != 1)
            {
                digits = digits[..^1];
            }
        }

        if (digits.IsEmpty || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long number))
        {
            throw Bad(key, value, $"{key} must be {SizeAllowed}");
        }

        if (number > long.MaxValue / multiplier)
        {
            throw Bad(key, value, $"{key} does not fit in 64 bits; it must be at most {FormatSize(AllocatorOptions.MaxZoneBytes)}");
        }

        return number * multiplier;
    }

    private static bool TryParseCount(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    /// <summary>The rule for a per-node zone size; what is wrong, or null.</summary>
    internal static string? CheckZoneSize(string key, long bytes, bool allowZero)
    {
        if (bytes < 0)
        {
            return $"{key} must not be negative";
        }

        if (bytes == 0 && !allowZero)
        {
            return $"{key} must be more than 0 ({SizeAllowed})";
        }

        return bytes > AllocatorOptions.MaxZoneBytes
            ? $"{key} must be at most {FormatSize(AllocatorOptions.MaxZoneBytes)} (64 TiB) per node"
            : null;
    }

    /// <summary>The rule for the memory block size; what is wrong, or null.</summary>
    internal static string? CheckBlock(long bytes) =>
        bytes <= 0 || (bytes & (bytes - 1)) != 0 || bytes % AllocatorOptions.LargestBuddyBlockBytes != 0 || bytes > AllocatorOptions.MaxBlockBytes
            ? $"block must be a power of two multiple of {FormatSize(AllocatorOptions.LargestBuddyBlockBytes)} (e.g. 16M), at most {FormatSize(AllocatorOptions.MaxBlockBytes)}"
            : null;

    /// <summary>The rule for decay_ms; what is wrong, or null.</summary>
    internal static string? CheckDecay(int ms) =>
        ms < -1 ? "decay_ms must be -1 (never purge), 0 (purge at once) or a positive number of milliseconds" : null;

    /// <summary>The rule for the control socket path; what is wrong, or null.</summary>
    internal static string? CheckSocketPath(string path)
    {
        if (path.Length == 0)
        {
            return "admin_socket needs a path";
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return "admin_socket must not contain a NUL character";
        }

        return Encoding.UTF8.GetByteCount(path) > AllocatorOptions.MaxSocketPathBytes
            ? $"admin_socket must be at most {AllocatorOptions.MaxSocketPathBytes} bytes (the size of sun_path)"
            : null;
    }

    /// <summary>Throws the standard message for a bad value when <paramref name="error"/> is not null.</summary>
    internal static void ThrowIfInvalid(string key, string value, string? error)
    {
        if (error is not null)
        {
            throw Bad(key, value, error);
        }
    }

    private static ConfigException Bad(string key, string value, string what) =>
        new(key, $"{Source}: '{key}={value}': {what}");

    /// <summary>Formats a size with the largest exact suffix: 16M, 4G, 4100K, 123.</summary>
    internal static string FormatSize(long bytes)
    {
        if (bytes != 0 && bytes % AllocatorOptions.GiB == 0)
        {
            return (bytes / AllocatorOptions.GiB).ToString(CultureInfo.InvariantCulture) + "G";
        }

        if (bytes != 0 && bytes % AllocatorOptions.MiB == 0)
        {
            return (bytes / AllocatorOptions.MiB).ToString(CultureInfo.InvariantCulture) + "M";
        }

        return bytes != 0 && bytes % AllocatorOptions.KiB == 0
            ? (bytes / AllocatorOptions.KiB).ToString(CultureInfo.InvariantCulture) + "K"
            : bytes.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Formats a simulated topology's distances: <c>local,remote</c> when uniform, else the full matrix.</summary>
    internal static string FormatDistances(TopologySpec topology)
    {
        int n = topology.NodeCount;
        int local = topology.DistanceOrDefault(0, 0);
        int remote = n > 1 ? topology.DistanceOrDefault(0, 1) : 0;
        bool uniform = n > 1;
        for (int i = 0; i < n && uniform; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (topology.DistanceOrDefault(i, j) != (i == j ? local : remote))
                {
                    uniform = false;
                    break;
                }
            }
        }

        if (uniform)
        {
            return FormattableString.Invariant($"{local},{remote}");
        }

        var sb = new StringBuilder();
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (sb.Length > 0)
                {
                    sb.Append(',');
                }

                sb.Append(topology.DistanceOrDefault(i, j).ToString(CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    internal static string FormatBind(BindPolicy bind) => bind == BindPolicy.Strict ? "strict" : "preferred";

    internal static string FormatBadFree(BadFreeAction action) => action switch
    {
        BadFreeAction.Abort => "abort",
        BadFreeAction.Check => "check",
        _ => "report",
    };
}
