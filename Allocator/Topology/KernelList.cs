using System.Globalization;
using System.Text;

namespace Numalloc.Topology;

/// <summary>
/// The kernel's list format for CPU and node sets, as sysfs prints it (<c>bitmap_print_to_pagebuf</c>
/// with list=true): comma-separated ids and inclusive ranges, e.g. <c>0-3,8-11</c>, with a trailing
/// newline. An empty set is an empty line.
/// </summary>
/// <remarks>
/// May be unified with the platform layer's parser later; kept here so Topology has no dependency
/// on work in progress under Platform/.
/// </remarks>
internal static class KernelList
{
    /// <summary>Largest id accepted; far above the kernel's NR_CPUS (8192) and MAX_NUMNODES (1024),
    /// low enough that a corrupt range cannot make us allocate gigabytes.</summary>
    internal const int MaxId = (1 << 20) - 1;

    /// <summary>Parses a kernel list into ascending, distinct ids.</summary>
    /// <exception cref="FormatException">The text is not a kernel list; the message quotes it.</exception>
    public static int[] Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            return [];
        }

        var ids = new SortedSet<int>();
        foreach (string part in trimmed.Split(','))
        {
            int dash = part.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                ids.Add(ParseId(part, text));
                continue;
            }

            int first = ParseId(part[..dash], text);
            int last = ParseId(part[(dash + 1)..], text);
            if (last < first)
            {
                ThrowMalformed(text);
            }

            for (int id = first; id <= last; id++)
            {
                ids.Add(id);
            }
        }

        var result = new int[ids.Count];
        ids.CopyTo(result);
        return result;
    }

    /// <summary>Formats ids (any order, duplicates allowed) the way the kernel prints them: <c>0-3,8</c>.</summary>
    public static string Format(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sorted = new SortedSet<int>(ids);
        var sb = new StringBuilder();
        int runStart = -1;
        int previous = -2;
        foreach (int id in sorted)
        {
            if (id != previous + 1)
            {
                AppendRun(sb, runStart, previous);
                runStart = id;
            }

            previous = id;
        }

        AppendRun(sb, runStart, previous);
        return sb.ToString();
    }

    private static void AppendRun(StringBuilder sb, int first, int last)
    {
        if (first < 0)
        {
            return;
        }

        if (sb.Length > 0)
        {
            sb.Append(',');
        }

        sb.Append(first.ToString(CultureInfo.InvariantCulture));
        if (last != first)
        {
            sb.Append('-').Append(last.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static int ParseId(string token, string text)
    {
        // Digits only: no sign, no inner whitespace, nothing the kernel would not print.
        if (token.Length == 0 || token.Length > 7)
        {
            ThrowMalformed(text);
        }

        int value = 0;
        foreach (char c in token)
        {
            if (c is < '0' or > '9')
            {
                ThrowMalformed(text);
            }

            value = (value * 10) + (c - '0');
        }

        if (value > MaxId)
        {
            ThrowMalformed(text);
        }

        return value;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowMalformed(string text) =>
        throw new FormatException(
            $"'{text.TrimEnd('\n')}' is not a kernel id list (expected ids and ranges like 0-3,8-11, each id at most {MaxId})");
}
