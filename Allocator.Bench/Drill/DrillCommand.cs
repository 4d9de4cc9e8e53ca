using System.Net.Sockets;

namespace Numalloc.Bench.Drill;

/// <summary><c>Allocator.Bench drill [options]</c>: parse, run the scenario, print the table, write the HTML report, exit 0 only if the drill passed.</summary>
internal static class DrillCommand
{
    /// <summary>Exit codes beyond the report's own 0 (passed) and 1 (failed).</summary>
    public const int UsageError = 64, Unavailable = 69;

    /// <summary>Runs the drill; <paramref name="inProcess"/> builds the simulated heap the default mode runs against.</summary>
    public static int Run(IReadOnlyList<string> args, Func<DrillOptions, IDrillTarget> inProcess, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(inProcess);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        DrillOptions options;
        DrillScenario scenario;
        try
        {
            options = DrillOptions.Parse(args);
            scenario = options.ScenarioPath is null
                ? DrillScenario.Default(options.Nodes)
                : DrillScenario.Parse(File.ReadAllText(options.ScenarioPath));
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine("drill: " + e.Message);
            error.WriteLine(DrillOptions.Usage);
            return UsageError;
        }

        IDrillTarget target;
        try
        {
            target = options.AttachSocket is null ? inProcess(options) : new AttachedDrillTarget(options.AttachSocket);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            error.WriteLine($"drill: cannot attach to {options.AttachSocket}: {e.Message}");
            return Unavailable;
        }

        DrillReport report;
        using (target)
        {
            output.WriteLine($"drill: {target.Description}; {scenario.Steps.Count} steps");
            report = new DrillRunner(options, scenario, target, ReferenceEquals(output, Console.Out) ? DrillProgress.ForConsole(options.Plain) : new DrillProgress(output, false, TimeSpan.FromSeconds(1))).Run();
        }

        output.WriteLine();
        report.WriteTable(output);
        string reportPath = Path.GetFullPath(options.ReportPath);
        Directory.CreateDirectory(Path.GetDirectoryName(reportPath)!);
        File.WriteAllText(reportPath, report.ToHtml());
        output.WriteLine($"report: {reportPath}");
        return report.ExitCode;
    }
}
