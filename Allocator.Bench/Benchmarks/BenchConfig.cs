using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// The one configuration every suite runs under (after dotnet/performance's RecommendedConfig):
/// Median/Min/Max columns, GitHub markdown and JSON exporters, results under artifacts/bench.
/// <c>--quick</c> selects a short job for smoke runs.
/// </summary>
internal static class BenchConfig
{
    public static IConfig Create(string artifactsPath, bool quick)
    {
        Job job = quick
            ? Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithLaunchCount(1)
            : Job.Default.WithLaunchCount(1);
        return ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max)
            .AddColumn(CategoriesColumn.Default)
            .AddExporter(MarkdownExporter.GitHub, JsonExporter.Full)
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend))
            .WithArtifactsPath(artifactsPath)
            .WithOptions(ConfigOptions.JoinSummary | ConfigOptions.DisableLogFile);
    }
}
