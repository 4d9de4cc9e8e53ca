using BenchmarkDotNet.Reports;

namespace Numalloc.Bench.Benchmarks;

/// <summary>Throughput at one thread count.</summary>
/// <param name="Threads">Threads working at once.</param>
/// <param name="OpsPerSecond">Operations (allocation + free) per second over all threads.</param>
internal readonly record struct ScalingPoint(int Threads, double OpsPerSecond);

/// <summary>One allocator on one workload over thread counts, ordered by threads.</summary>
internal sealed record ScalingSeries(string Workload, string Allocator, IReadOnlyList<ScalingPoint> Points);

/// <summary>One measured multi-thread case: which benchmark, how many threads, how long one invocation took.</summary>
internal readonly record struct ScalingMeasurement(string Type, string Method, int Threads, double NanosecondsPerInvocation);

/// <summary>
/// Turns the multi-thread suites' results (time per invocation, every thread doing a fixed number of
/// operations) into throughput series for <see cref="ScalingPlot"/>.
/// </summary>
internal static class ScalingReport
{
    // Benchmark method -> what it measures and how many operations each thread does per invocation.
    private static readonly Dictionary<(string Type, string Method), (string Workload, string Allocator, int OpsPerThread)> s_cases = new()
    {
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.ChurnNativeMemory))] = ("private churn", "NativeMemory", ThroughputWorkloads.OpsPerThread),
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.ChurnNumaAllocator))] = ("private churn", "NumaAllocator", ThroughputWorkloads.OpsPerThread),
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.ProducerConsumerNativeMemory))] = ("producer/consumer", "NativeMemory", ThroughputWorkloads.OpsPerThread),
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.ProducerConsumerNumaAllocator))] = ("producer/consumer", "NumaAllocator", ThroughputWorkloads.OpsPerThread),
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.LarsonNativeMemory))] = ("larson", "NativeMemory", ThroughputWorkloads.OpsPerThread),
        [(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.LarsonNumaAllocator))] = ("larson", "NumaAllocator", ThroughputWorkloads.OpsPerThread),
        [(nameof(ObjectScalingBenchmarks), nameof(ObjectScalingBenchmarks.AllocateFree))] = ("64 B pairs", "NumaAllocator", ObjectScalingBenchmarks.PairsPerThread),
        [(nameof(ObjectScalingBenchmarks), nameof(ObjectScalingBenchmarks.NoAllocation))] = ("64 B pairs", "loop without allocation", ObjectScalingBenchmarks.PairsPerThread),
    };

    /// <summary>The series of every successful multi-thread case in <paramref name="summaries"/>; empty when none ran.</summary>
    public static IReadOnlyList<ScalingSeries> FromSummaries(IEnumerable<Summary> summaries)
    {
        var measurements = new List<ScalingMeasurement>();
        foreach (Summary summary in summaries)
        {
            foreach (BenchmarkReport report in summary.Reports)
            {
                if (!report.Success || report.ResultStatistics is null || report.BenchmarkCase.Parameters["Threads"] is not int threads)
                    continue;
                var descriptor = report.BenchmarkCase.Descriptor;
                // ResultStatistics are per operation: back to per invocation, whatever OperationsPerInvoke says.
                measurements.Add(new ScalingMeasurement(descriptor.Type.Name, descriptor.WorkloadMethod.Name, threads,
                    report.ResultStatistics.Mean * descriptor.OperationsPerInvoke));
            }
        }
        return Build(measurements);
    }

    /// <summary>Groups known cases into series (workloads and allocators in first-seen order, points by threads); unknown cases are skipped.</summary>
    public static IReadOnlyList<ScalingSeries> Build(IEnumerable<ScalingMeasurement> measurements)
    {
        var series = new List<(string Workload, string Allocator, List<ScalingPoint> Points)>();
        foreach (ScalingMeasurement m in measurements)
        {
            if (!s_cases.TryGetValue((m.Type, m.Method), out var known) || m.NanosecondsPerInvocation <= 0)
                continue;
            int at = series.FindIndex(s => s.Workload == known.Workload && s.Allocator == known.Allocator);
            if (at < 0)
            {
                series.Add((known.Workload, known.Allocator, []));
                at = series.Count - 1;
            }
            double opsPerSecond = (double)m.Threads * known.OpsPerThread / (m.NanosecondsPerInvocation * 1e-9);
            series[at].Points.Add(new ScalingPoint(m.Threads, opsPerSecond));
        }
        return series
            .Select(s => new ScalingSeries(s.Workload, s.Allocator, s.Points.OrderBy(p => p.Threads).ToArray()))
            .ToArray();
    }
}
