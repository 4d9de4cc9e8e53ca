using System.Globalization;
using System.Net;
using System.Text;

namespace Numalloc.Bench.Drill;

/// <summary>What one drill step did and what the workload saw while it ran.</summary>
internal sealed record DrillStepReport(int Index, string Step, TimeSpan Start, TimeSpan Duration)
{
    /// <summary>The step's result (lower case, the design's table), "ok" for steady steps.</summary>
    public string Result { get; init; } = "ok";

    /// <summary>The result the scenario expected.</summary>
    public string Expected { get; init; } = "ok";

    /// <summary>True for offline and online steps: the chart marks where they began.</summary>
    public bool Hotplug { get; init; }

    /// <summary>Extra words from the step (e.g. "12 pages in use").</summary>
    public string? Detail { get; init; }

    /// <summary>Allocations per second over the step.</summary>
    public double OpsPerSecond { get; init; }

    /// <summary>Allocation latency percentiles, ns.</summary>
    public long P50Ns { get; init; }

    /// <inheritdoc cref="P50Ns"/>
    public long P99Ns { get; init; }

    /// <inheritdoc cref="P50Ns"/>
    public long P999Ns { get; init; }

    /// <summary>Pages migrated by the step.</summary>
    public long PagesMigrated { get; init; }

    /// <summary>Cache drains: done by the requester, by the magazine's owner, coalesced.</summary>
    public long DrainsRemote { get; init; }

    /// <inheritdoc cref="DrainsRemote"/>
    public long DrainsByOwner { get; init; }

    /// <inheritdoc cref="DrainsRemote"/>
    public long DrainsCoalesced { get; init; }

    /// <summary>Zonelist reader restarts during the step.</summary>
    public long ReaderRestarts { get; init; }

    /// <summary>Allocation failures the step explains (memory really taken away) and the rest.</summary>
    public long ExpectedFailures { get; init; }

    /// <inheritdoc cref="ExpectedFailures"/>
    public long SpuriousFailures { get; init; }

    /// <summary>True when the step ended as the scenario said it must.</summary>
    public bool AsExpected => Result == Expected;
}

/// <summary>Throughput over one sampling interval of the drill.</summary>
internal readonly record struct ThroughputSample(double Seconds, double OpsPerSecond);

/// <summary>
/// The drill's report: a table per step, a throughput timeline with the steps marked, and the
/// integrity verdict. Written to the terminal (<see cref="WriteTable"/>) and as a self-contained
/// HTML page with an inline SVG chart (<see cref="ToHtml"/>): nothing is fetched when it is opened.
/// </summary>
internal sealed class DrillReport
{
    public DrillReport(string title, IReadOnlyList<DrillStepReport> steps, IReadOnlyList<ThroughputSample> timeline, IReadOnlyList<string> checksumMismatches)
    {
        Title = title;
        Steps = steps;
        Timeline = timeline;
        ChecksumMismatches = checksumMismatches;
    }

    /// <summary>One line that says what ran (heap, threads, seed).</summary>
    public string Title { get; }

    /// <summary>Per step, in order.</summary>
    public IReadOnlyList<DrillStepReport> Steps { get; }

    /// <summary>Throughput samples over the whole drill.</summary>
    public IReadOnlyList<ThroughputSample> Timeline { get; }

    /// <summary>Every object whose contents did not match its checksum, named.</summary>
    public IReadOnlyList<string> ChecksumMismatches { get; }

    /// <summary>Spurious allocation failures over every step.</summary>
    public long SpuriousFailures => Steps.Sum(s => s.SpuriousFailures);

    /// <summary>Steps that did not end as the scenario expected.</summary>
    public IEnumerable<DrillStepReport> UnexpectedResults => Steps.Where(s => !s.AsExpected);

    /// <summary>True when the drill may gate a deployment: no spurious failure, no checksum mismatch, every step as expected.</summary>
    public bool Passed => SpuriousFailures == 0 && ChecksumMismatches.Count == 0 && !UnexpectedResults.Any();

    /// <summary>The process exit code: 0 passed, 1 failed.</summary>
    public int ExitCode => Passed ? 0 : 1;

    private static readonly string[] s_columns =
        ["#", "step", "time", "result", "alloc/s", "p50", "p99", "p99.9", "migrated", "drains r/o/c", "restarts", "fail exp/spur"];

    /// <summary>The rows of the table, as text cells.</summary>
    internal IEnumerable<string[]> Rows() => Steps.Select(s => new[]
    {
        s.Index.ToString(CultureInfo.InvariantCulture),
        s.Step,
        FormatSeconds(s.Duration),
        s.AsExpected ? s.Result + (s.Detail is null ? "" : $" ({s.Detail})") : $"{s.Result} (expected {s.Expected})" + (s.Detail is null ? "" : $" ({s.Detail})"),
        FormatRate(s.OpsPerSecond),
        FormatNs(s.P50Ns),
        FormatNs(s.P99Ns),
        FormatNs(s.P999Ns),
        s.PagesMigrated.ToString(CultureInfo.InvariantCulture),
        string.Create(CultureInfo.InvariantCulture, $"{s.DrainsRemote}/{s.DrainsByOwner}/{s.DrainsCoalesced}"),
        s.ReaderRestarts.ToString(CultureInfo.InvariantCulture),
        string.Create(CultureInfo.InvariantCulture, $"{s.ExpectedFailures}/{s.SpuriousFailures}"),
    });

    /// <summary>Writes the summary table and the verdict as aligned plain text.</summary>
    public void WriteTable(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var rows = Rows().ToList();
        int[] widths = s_columns.Select((c, i) => Math.Max(c.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        writer.WriteLine(Title);
        writer.WriteLine(FormatRow(s_columns, widths));
        writer.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (string[] row in rows)
            writer.WriteLine(FormatRow(row, widths));
        writer.WriteLine();
        foreach (string line in VerdictLines())
            writer.WriteLine(line);
    }

    private IEnumerable<string> VerdictLines()
    {
        yield return string.Create(CultureInfo.InvariantCulture,
            $"spurious failures: {SpuriousFailures}, checksum mismatches: {ChecksumMismatches.Count}, steps not as expected: {UnexpectedResults.Count()}");
        foreach (string mismatch in ChecksumMismatches.Take(20))
            yield return "checksum mismatch: " + mismatch;
        foreach (DrillStepReport step in UnexpectedResults)
            yield return $"step {step.Index} '{step.Step}' ended {step.Result}, expected {step.Expected}";
        yield return Passed ? "drill: PASSED" : "drill: FAILED";
    }

    private static string FormatRow(string[] cells, int[] widths)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < cells.Length; i++)
        {
            if (i > 0)
                sb.Append("  ");
            // Text columns left, numbers right.
            sb.Append(i is 1 or 3 ? cells[i].PadRight(widths[i]) : cells[i].PadLeft(widths[i]));
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>The report as one self-contained HTML page: the table, the verdict and the throughput chart.</summary>
    public string ToHtml()
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>numalloc drill</title>\n")
          .Append("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}")
          .Append("td:nth-child(2),td:nth-child(4){text-align:left}.fail{color:#b00}.pass{color:#070}</style></head><body>\n")
          .Append("<h1>numalloc hot-remove drill</h1>\n<p>").Append(WebUtility.HtmlEncode(Title)).Append("</p>\n")
          .Append(ChartSvg()).Append('\n')
          .Append("<table><tr>");
        foreach (string column in s_columns)
            sb.Append("<th>").Append(WebUtility.HtmlEncode(column)).Append("</th>");
        sb.Append("</tr>\n");
        foreach (string[] row in Rows())
        {
            sb.Append("<tr>");
            foreach (string cell in row)
                sb.Append("<td>").Append(WebUtility.HtmlEncode(cell)).Append("</td>");
            sb.Append("</tr>\n");
        }
        sb.Append("</table>\n<ul>");
        foreach (string line in VerdictLines())
            sb.Append("<li class=\"").Append(Passed ? "pass" : "fail").Append("\">").Append(WebUtility.HtmlEncode(line)).Append("</li>");
        sb.Append("</ul>\n</body></html>\n");
        return sb.ToString();
    }

    /// <summary>The throughput-over-time chart, hotplug steps marked by vertical lines with their number.</summary>
    internal string ChartSvg()
    {
        const double width = 900, height = 320, left = 70, right = 20, top = 20, bottom = 40;
        double plotWidth = width - left - right, plotHeight = height - top - bottom;
        double endSeconds = Math.Max(
            Timeline.Count == 0 ? 0 : Timeline.Max(s => s.Seconds),
            Steps.Count == 0 ? 0 : Steps.Max(s => (s.Start + s.Duration).TotalSeconds));
        endSeconds = Math.Max(endSeconds, 1e-3);
        double maxRate = Math.Max(1, Timeline.Count == 0 ? 1 : Timeline.Max(s => s.OpsPerSecond)) * 1.1;
        string X(double seconds) => (left + (seconds / endSeconds * plotWidth)).ToString("F1", CultureInfo.InvariantCulture);
        string Y(double rate) => (top + plotHeight - (rate / maxRate * plotHeight)).ToString("F1", CultureInfo.InvariantCulture);

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#888\"/>");
        for (int tick = 0; tick <= 4; tick++)
        {
            double rate = maxRate * tick / 4;
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 4}\" y=\"{Y(rate)}\" text-anchor=\"end\">{FormatRate(rate)}</text>");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + (plotWidth / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\">seconds (0 to {endSeconds:F1}); allocations per second</text>");
        foreach (DrillStepReport step in Steps.Where(s => s.Hotplug))
        {
            string x = X(step.Start.TotalSeconds);
            string colour = step.AsExpected ? "#c60" : "#b00";
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{top + plotHeight}\" stroke=\"{colour}\" stroke-dasharray=\"4 3\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x}\" y=\"{top + 12}\" fill=\"{colour}\">{step.Index}<title>{WebUtility.HtmlEncode(step.Step)}: {step.Result}</title></text>");
        }
        if (Timeline.Count > 0)
        {
            sb.Append("<polyline fill=\"none\" stroke=\"#06c\" stroke-width=\"1.5\" points=\"");
            foreach (ThroughputSample sample in Timeline)
                sb.Append(X(sample.Seconds)).Append(',').Append(Y(sample.OpsPerSecond)).Append(' ');
            sb.Append("\"/>");
        }
        sb.Append("</svg>");
        return sb.ToString();
    }

    internal static string FormatSeconds(TimeSpan t) => t.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture) + "s";

    internal static string FormatNs(long ns) => ns switch
    {
        < 10_000 => ns.ToString(CultureInfo.InvariantCulture) + "ns",
        < 10_000_000 => (ns / 1000.0).ToString("F1", CultureInfo.InvariantCulture) + "us",
        _ => (ns / 1_000_000.0).ToString("F1", CultureInfo.InvariantCulture) + "ms",
    };

    internal static string FormatRate(double perSecond) => perSecond switch
    {
        >= 1e6 => (perSecond / 1e6).ToString("F2", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (perSecond / 1e3).ToString("F1", CultureInfo.InvariantCulture) + "k",
        _ => perSecond.ToString("F0", CultureInfo.InvariantCulture),
    };
}
