using System.Globalization;
using System.Text;

namespace Numalloc.Platform;

/// <summary>
/// Parses the kernel's cpulist format (sysfs <c>cpu/possible</c>, <c>node/nodeN/cpulist</c>,
/// cpuset files): comma-separated ids and inclusive ranges, like <c>0-3,8-11</c> or <c>0,2,4</c>.
/// Shared by the platform and topology layers.
/// </summary>
internal static class CpuList
{
    /// <summary>
    /// Ids above this are rejected as malformed: the kernel's NR_CPUS tops out at 8192, and
    /// the bound stops a corrupt range like <c>0-2000000000</c> from allocating gigabytes.
    /// </summary>
    public const int MaxId = 65535;

    /// <summary>
    /// Parses a cpulist into its ids, ascending and without duplicates. Leading and trailing
    /// whitespace (the newline sysfs files end with) is ignored; an empty list gives an empty array.
    /// </summary>
    /// <param name="text">The cpulist, for example "0-3,8-11\n".</param>
    /// <returns>A new array the caller owns.</returns>
    /// <exception cref="FormatException">The text is not a cpulist; the message quotes it and says why.</exception>
    public static int[] Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ReadOnlySpan<char> remaining = text.AsSpan().Trim();
        if (remaining.IsEmpty)
        {
            return [];
        }

        var ids = new List<int>();
        while (true)
        {
            int comma = remaining.IndexOf(',');
            ReadOnlySpan<char> item = comma < 0 ? remaining : remaining[..comma];
            int dash = item.IndexOf('-');
            if (dash < 0)
            {
                ids.Add(ParseId(item, text));
            }
            else
            {
                int first = ParseId(item[..dash], text);
                int last = ParseId(item[(dash + 1)..], text);
                if (first > last)
                {
                    ThrowMalformed(text, string.Create(CultureInfo.InvariantCulture, $"range {first}-{last} runs backwards"));
                }

                for (int id = first; id <= last; id++)
                {
                    ids.Add(id);
                }
            }

            if (comma < 0)
            {
                break;
            }

            remaining = remaining[(comma + 1)..];
        }

        ids.Sort();
        int[] result = new int[CountDistinct(ids)];
        int count = 0;
        foreach (int id in ids)
        {
            // Sorted, so a duplicate can only repeat the previous id.
            if (count == 0 || result[count - 1] != id)
            {
                result[count++] = id;
            }
        }

        return result;
    }

    /// <summary>
    /// One more than the highest id in a cpulist (the size of a table indexed by those ids):
    /// "0-7,16-23" gives 24. An empty list gives 0.
    /// </summary>
    /// <exception cref="FormatException">The text is not a cpulist.</exception>
    public static int HighestIdPlusOne(string text)
    {
        int[] ids = Parse(text);
        return ids.Length == 0 ? 0 : ids[^1] + 1;
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

    private static int ParseId(ReadOnlySpan<char> digits, string text)
    {
        if (digits.IsEmpty)
        {
            ThrowMalformed(text, "a cpu id is missing");
        }

        int id = 0;
        foreach (char c in digits)
        {
            if (c is < '0' or > '9')
            {
                ThrowMalformed(text, string.Create(CultureInfo.InvariantCulture, $"'{c}' is not a digit"));
            }

            id = (id * 10) + (c - '0');
            if (id > MaxId)
            {
                ThrowMalformed(text, string.Create(CultureInfo.InvariantCulture, $"cpu id {digits} exceeds {MaxId}"));
            }
        }

        return id;
    }

    private static int CountDistinct(List<int> sortedIds)
    {
        int count = 0;
        for (int i = 0; i < sortedIds.Count; i++)
        {
            if (i == 0 || sortedIds[i] != sortedIds[i - 1])
            {
                count++;
            }
        }

        return count;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowMalformed(string text, string reason) =>
        throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"Malformed cpulist \"{text.Trim()}\": {reason}."));
}
