using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Carries <see cref="CountersPerOperation"/> from a benchmark to the summary. BenchmarkDotNet runs each
/// case in a process of its own, so the benchmark writes one small JSON file per case into the directory
/// named by <see cref="DirectoryVariable"/> (set by the host on the job) and the host's column reads it.
/// </summary>
internal static class CounterSidecar
{
    /// <summary>The environment variable naming the directory of the sidecar files.</summary>
    public const string DirectoryVariable = "NUMALLOC_BENCH_COUNTERS_DIR";

    /// <summary>
    /// The name of one benchmark case, the same in the benchmark and in the host:
    /// <c>Type.Method(Name=Value,...)</c>, parameters ordered by name, values in the invariant culture.
    /// </summary>
    public static string CaseKey(string type, string method, IEnumerable<(string Name, object? Value)> parameters)
    {
        var key = new StringBuilder().Append(type).Append('.').Append(method).Append('(');
        bool first = true;
        foreach ((string name, object? value) in parameters.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (!first)
                key.Append(',');
            key.Append(name).Append('=').Append(Convert.ToString(value, CultureInfo.InvariantCulture));
            first = false;
        }
        return key.Append(')').ToString();
    }

    /// <summary>The directory from <see cref="DirectoryVariable"/>, or null when the run did not ask for counters.</summary>
    public static string? Directory => Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } dir ? dir : null;

    /// <summary>Writes the counters of one case into <see cref="Directory"/>; nothing when the run did not ask for counters.</summary>
    public static void Record(string type, string method, IEnumerable<(string Name, object? Value)> parameters, CountersPerOperation counters)
    {
        if (Directory is { } directory)
            Write(directory, CaseKey(type, method, parameters), counters);
    }

    /// <summary>Writes the counters of the case <paramref name="key"/> into <paramref name="directory"/> (replacing an older file).</summary>
    public static void Write(string directory, string key, CountersPerOperation counters)
    {
        System.IO.Directory.CreateDirectory(directory);
        File.WriteAllText(PathOf(directory, key), JsonSerializer.Serialize(counters));
    }

    /// <summary>The counters of the case <paramref name="key"/>, or null when its benchmark wrote none.</summary>
    public static CountersPerOperation? Read(string directory, string key)
    {
        string path = PathOf(directory, key);
        return File.Exists(path) ? JsonSerializer.Deserialize<CountersPerOperation>(File.ReadAllText(path)) : null;
    }

    // Keys hold characters a file name should not ('(', '/', spaces in values): keep letters, digits and a few marks.
    private static string PathOf(string directory, string key)
    {
        var name = new StringBuilder(key.Length + 5);
        foreach (char c in key)
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '=' or ',' or '-' ? c : '_');
        return Path.Combine(directory, name.Append(".json").ToString());
    }
}
