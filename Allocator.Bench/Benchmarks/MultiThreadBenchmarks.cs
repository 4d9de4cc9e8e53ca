using BenchmarkDotNet.Attributes;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Multi-thread throughput for 1, 2, ... ProcessorCount threads (one worker per core, as
/// dotnet/performance does): private churn, producer/consumer cross-thread frees, larson-style
/// random replacement. Time is per allocation+free (OperationsPerInvoke = threads × ops per thread).
/// </summary>
[BenchmarkCategory("multithread")]
public class MultiThreadBenchmarks
{
    private WorkerPool _pool = null!;
    private ThroughputWorkloads.ProducerConsumerRings _rings = null!;
    private ThroughputWorkloads.LarsonSlots _larson = null!;

    public static IEnumerable<int> ThreadCounts => Enumerable.Range(1, Environment.ProcessorCount);

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _pool = new WorkerPool(Threads);
        _rings = new ThroughputWorkloads.ProducerConsumerRings(Threads);
        _larson = new ThroughputWorkloads.LarsonSlots(Threads);
        _larson.Fill(default(NativeMemoryAllocator));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _larson.Release(default(NativeMemoryAllocator));
        _pool.Dispose();
    }

    [IterationSetup]
    public void IterationSetup() => _rings.Reset();

    private int Ops => Threads * ThroughputWorkloads.OpsPerThread;

    [Benchmark(Description = "private churn, NativeMemory", OperationsPerInvoke = 1)]
    [BenchmarkCategory("churn")]
    public void ChurnNativeMemory() => _pool.Run(w => ThroughputWorkloads.PrivateChurn(default(NativeMemoryAllocator), w));

    [Benchmark(Description = "producer/consumer, NativeMemory")]
    [BenchmarkCategory("xmalloc")]
    public void ProducerConsumerNativeMemory()
    {
        _rings.Reset();
        _pool.Run(w => _rings.Run(default(NativeMemoryAllocator), w, Threads));
    }

    [Benchmark(Description = "larson, NativeMemory")]
    [BenchmarkCategory("larson")]
    public void LarsonNativeMemory()
    {
        _larson.NextRound();
        _pool.Run(w => _larson.Run(default(NativeMemoryAllocator), w));
    }
}
