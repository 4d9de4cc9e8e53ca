using BenchmarkDotNet.Attributes;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Multi-thread throughput for 1, 2, ... ProcessorCount threads (one worker per core, as
/// dotnet/performance does): private churn, producer/consumer cross-thread frees, larson-style
/// random replacement. Time is per invocation, in which every thread does ThroughputWorkloads.OpsPerThread
/// (16 384) allocation+free pairs: flat time over thread counts is perfect scaling. The NumaAllocator
/// cases record the allocator's counters per pair (<see cref="AllocatorCountersColumn"/>): cross-thread
/// frees show as cache refills and flushes.
/// </summary>
[BenchmarkCategory("multithread")]
public class MultiThreadBenchmarks
{
    private WorkerPool _pool = null!;
    private ThroughputWorkloads.ProducerConsumerRings _rings = null!;
    private ThroughputWorkloads.LarsonSlots _larson = null!;
    private ThroughputWorkloads.LarsonSlots _numaLarson = null!;

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
        _numaLarson = new ThroughputWorkloads.LarsonSlots(Threads);
        NumaRawAllocator.Instance = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 64L << 20, MovableBytes = 0 });
        _numaLarson.Fill(default(NumaRawAllocator));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _larson.Release(default(NativeMemoryAllocator));
        // Each worker's thread-local caches go back before the heap does.
        _pool.Run(_ => NumaRawAllocator.Instance.FlushCurrentThread());
        _numaLarson.Release(default(NumaRawAllocator));
        _pool.Dispose();
        NumaRawAllocator.Instance.Dispose();
    }

    [GlobalCleanup(Target = nameof(ChurnNumaAllocator))]
    public void CleanupChurnNumaAllocator()
    {
        RecordCounters(nameof(ChurnNumaAllocator), ChurnNumaAllocator);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(ProducerConsumerNumaAllocator))]
    public void CleanupProducerConsumerNumaAllocator()
    {
        RecordCounters(nameof(ProducerConsumerNumaAllocator), ProducerConsumerNumaAllocator);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(LarsonNumaAllocator))]
    public void CleanupLarsonNumaAllocator()
    {
        RecordCounters(nameof(LarsonNumaAllocator), LarsonNumaAllocator);
        Cleanup();
    }

    [IterationSetup]
    public void IterationSetup() => _rings.Reset();

    // After the measured iterations: a few more invocations between two counter readings.
    private void RecordCounters(string method, Action invocation)
    {
        const int Invocations = 4;
        CountersPerOperation counters = AllocatorCounters.Measure(() => AllocatorCounters.Read(NumaRawAllocator.Instance), () =>
        {
            for (int i = 0; i < Invocations; i++)
                invocation();
        }, (long)Invocations * Threads * ThroughputWorkloads.OpsPerThread);
        CounterSidecar.Record(nameof(MultiThreadBenchmarks), method, [(nameof(Threads), Threads)], counters);
    }

    [Benchmark(Description = "private churn, NativeMemory")]
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

    [Benchmark(Description = "private churn, NumaAllocator")]
    [BenchmarkCategory("churn")]
    public void ChurnNumaAllocator() => _pool.Run(w => ThroughputWorkloads.PrivateChurn(default(NumaRawAllocator), w));

    [Benchmark(Description = "producer/consumer, NumaAllocator")]
    [BenchmarkCategory("xmalloc")]
    public void ProducerConsumerNumaAllocator()
    {
        _rings.Reset();
        _pool.Run(w => _rings.Run(default(NumaRawAllocator), w, Threads));
    }

    [Benchmark(Description = "larson, NumaAllocator")]
    [BenchmarkCategory("larson")]
    public void LarsonNumaAllocator()
    {
        _numaLarson.NextRound();
        _pool.Run(w => _numaLarson.Run(default(NumaRawAllocator), w));
    }
}
