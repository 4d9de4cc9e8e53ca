using BenchmarkDotNet.Running;
using Numalloc.Bench.Benchmarks;

namespace Numalloc.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        string verb = args.Length > 0 ? args[0] : "";
        switch (verb)
        {
            case "bench":
                return RunBenchmarks(args[1..]);
            case "drill":
                return Drill.DrillCommand.Run(args[1..], options => new Drill.InProcessDrillTarget(options), Console.Out, Console.Error);
            case "serve":
                return ServeCommand.Run(args[1..], Console.In, Console.Out, Console.Error);
            case "ctl":
                return Ctl.CtlCommand.Run(args[1..], Console.Out, Console.Error);
            default:
                Console.Error.WriteLine("usage: Allocator.Bench bench [--quick] [--artifacts DIR] [BenchmarkDotNet options, e.g. --filter '*Page*']");
                Console.Error.WriteLine("       Allocator.Bench drill [options]");
                Console.Error.WriteLine("       Allocator.Bench ctl --socket PATH [--json] OP [ARGS]");
                Console.Error.WriteLine("       Allocator.Bench serve --socket PATH [--nodes N] [--threads N]");
                return 64;
        }
    }

    private static int RunBenchmarks(string[] args)
    {
        bool quick = args.Contains("--quick");
        string artifacts = Path.GetFullPath("artifacts/bench");
        int at = Array.IndexOf(args, "--artifacts");
        if (at >= 0 && at + 1 < args.Length)
            artifacts = Path.GetFullPath(args[at + 1]);
        string[] rest = args.Where((a, i) => a != "--quick" && !(at >= 0 && (i == at || i == at + 1))).ToArray();
        if (!rest.Contains("--filter"))
            rest = [.. rest, "--filter", "*"];
        // A bare word (eng/bench.sh --quick Hotplug) matches any benchmark whose full name contains it.
        int f = Array.IndexOf(rest, "--filter");
        if (f + 1 < rest.Length && rest[f + 1].IndexOfAny(['*', '?']) < 0)
            rest[f + 1] = $"*{rest[f + 1]}*";
        // Before the cases are built: parameter sources trim themselves in quick mode.
        BenchConfig.SetRunEnvironment(artifacts, quick);
        // Counters of an earlier run must not show beside this run's times.
        string counters = BenchConfig.CountersDirectory(artifacts);
        if (Directory.Exists(counters))
            Directory.Delete(counters, recursive: true);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest, BenchConfig.Create(artifacts, quick)).ToArray();
        IReadOnlyList<ScalingSeries> scaling = ScalingReport.FromSummaries(summaries);
        if (scaling.Count > 0)
        {
            string plot = Path.Combine(artifacts, "managed-scaling.svg");
            File.WriteAllText(plot, ScalingPlot.ToSvg(scaling, "Throughput by threads (BenchmarkDotNet multi-thread suites)"));
            Console.WriteLine($"bench: scaling plot in {plot}");
        }
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
