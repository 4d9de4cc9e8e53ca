using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using Perfolizer.Horology;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// The one configuration every suite runs under (after dotnet/performance's RecommendedConfig):
/// Median/Min/Max columns, GitHub markdown and JSON exporters, results under artifacts/bench.
/// <c>--quick</c> selects a short job for smoke runs.
/// </summary>
internal static class BenchConfig
{
    /// <summary>Set to 1 by <c>bench --quick</c> in the host; the benchmark processes inherit it.</summary>
    public const string QuickVariable = "NUMALLOC_BENCH_QUICK";

    /// <summary>Whether this is a quick run: suites with many parameter values measure fewer of them.</summary>
    public static bool IsQuick => Environment.GetEnvironmentVariable(QuickVariable) == "1";

    /// <summary>
    /// Tells this process and the benchmark processes it starts (which inherit its environment) whether
    /// the run is quick and where counter sidecars go. Call before the cases are built.
    /// </summary>
    public static void SetRunEnvironment(string artifactsPath, bool quick)
    {
        Environment.SetEnvironmentVariable(QuickVariable, quick ? "1" : "0");
        Environment.SetEnvironmentVariable(CounterSidecar.DirectoryVariable, CountersDirectory(artifactsPath));
    }

    /// <summary>Where the benchmarks' counter sidecars go under <paramref name="artifactsPath"/>.</summary>
    public static string CountersDirectory(string artifactsPath) => Path.Combine(artifactsPath, "counters");

    public static IConfig Create(string artifactsPath, bool quick)
    {
        string counters = CountersDirectory(artifactsPath);
        Job job = quick
            ? Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithLaunchCount(1)
            : Job.Default.WithLaunchCount(1);
        return ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max)
            .AddColumn(CategoriesColumn.Default)
            .AddColumn(AllocatorCountersColumn.All(counters))
            // Joined summaries: a baseline serves its own suite only (two suites share a parameter value,
            // e.g. Size=16 in the pair and batch suites, but not a category).
            .AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByParams, BenchmarkLogicalGroupRule.ByCategory)
            .AddExporter(MarkdownExporter.GitHub, JsonExporter.Full)
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend))
            .WithArtifactsPath(artifactsPath)
            .WithOptions(ConfigOptions.JoinSummary | ConfigOptions.DisableLogFile);
    }
}

/// <summary>
/// In quick mode, iterations of 100 ms instead of BenchmarkDotNet's 500 ms: for nanosecond-scale suites
/// with many cases, still millions of operations per iteration, and the quick run stays short.
/// Full runs keep the default.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class QuickIterationTimeAttribute : JobMutatorConfigBaseAttribute
{
    public QuickIterationTimeAttribute()
        : base(BenchConfig.IsQuick ? Job.Default.WithIterationTime(TimeInterval.FromMilliseconds(100)) : Job.Default)
    {
    }
}
