using System.Globalization;

namespace Numalloc.Bench.Drill;

/// <summary>A moment of the drill, as the progress display shows it.</summary>
internal readonly record struct DrillProgressState(
    int StepNumber, int StepCount, string Step, long PagesMigrated, long PagesToMigrate, double OpsPerSecond, long Failures);

/// <summary>
/// Live progress: on a terminal one line redrawn in place (step, migration bar, allocations per
/// second, failures); otherwise (CI logs) a plain line at most once per interval and one per step.
/// </summary>
internal sealed class DrillProgress
{
    private readonly TextWriter _writer;
    private readonly bool _interactive;
    private readonly TimeSpan _plainInterval;
    private long _lastPlainTicks = long.MinValue;
    private int _lastPlainStep = -1;
    private bool _lineOpen;

    /// <param name="writer">Where progress goes.</param>
    /// <param name="interactive">True: redraw one line with ANSI escapes; false: plain lines.</param>
    /// <param name="plainInterval">Plain mode: the least time between two lines of the same step.</param>
    public DrillProgress(TextWriter writer, bool interactive, TimeSpan plainInterval)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
        _interactive = interactive;
        _plainInterval = plainInterval;
    }

    /// <summary>For the console: interactive only when stdout is a terminal and TERM is not "dumb".</summary>
    public static DrillProgress ForConsole(bool forcePlain) =>
        new(Console.Out,
            !forcePlain && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is { } term && term != "dumb",
            TimeSpan.FromSeconds(1));

    /// <summary>Shows <paramref name="state"/>; plain mode drops updates that come too soon.</summary>
    public void Update(in DrillProgressState state)
    {
        string line = Format(state, _interactive);
        if (_interactive)
        {
            // Carriage return + erase line: redraw in place.
            _writer.Write("\r\u001b[2K" + line);
            _lineOpen = true;
            _writer.Flush();
            return;
        }

        long now = Environment.TickCount64;
        if (state.StepNumber == _lastPlainStep && now - _lastPlainTicks < (long)_plainInterval.TotalMilliseconds)
            return;
        _lastPlainStep = state.StepNumber;
        _lastPlainTicks = now;
        _writer.WriteLine(line);
    }

    /// <summary>Ends the live line (if any) and prints one line about a finished step.</summary>
    public void StepDone(DrillStepReport step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (_lineOpen)
        {
            _writer.Write("\r\u001b[2K");
            _lineOpen = false;
        }
        string verdict = step.AsExpected ? step.Result : $"{step.Result} (expected {step.Expected})";
        _writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {step.Index}: {step.Step} -> {verdict}{(step.Detail is null ? "" : $" ({step.Detail})")} in {DrillReport.FormatSeconds(step.Duration)}, {DrillReport.FormatRate(step.OpsPerSecond)} alloc/s"));
        _writer.Flush();
    }

    /// <summary>The progress line.</summary>
    internal static string Format(in DrillProgressState state, bool withBar)
    {
        string migration = "";
        if (state.PagesToMigrate > 0)
        {
            long done = Math.Min(state.PagesMigrated, state.PagesToMigrate);
            migration = withBar
                ? $"  [{Bar(done, state.PagesToMigrate, 20)}] {done}/{state.PagesToMigrate} pages"
                : $"  migrated {done}/{state.PagesToMigrate} pages";
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"[{state.StepNumber}/{state.StepCount}] {state.Step}{migration}  {DrillReport.FormatRate(state.OpsPerSecond)} alloc/s  failures {state.Failures}");
    }

    internal static string Bar(long done, long total, int width)
    {
        int filled = total <= 0 ? 0 : (int)Math.Clamp(done * width / total, 0, width);
        return new string('#', filled) + new string('.', width - filled);
    }
}
