using System.Buffers;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// One allocate + free pair of <see cref="Size"/> bytes, single thread: <see cref="NumaAllocator"/>
/// (its fast path: the thread's magazine), <c>NativeMemory.Alloc</c> + <c>Free</c> (glibc malloc), and
/// <c>ArrayPool&lt;byte&gt;.Shared</c> rent + return. Target: NumaAllocator at most 0.5x NativeMemory.
/// </summary>
[BenchmarkCategory("objects")]
public unsafe class ObjectBenchmarks
{
    private NumaAllocator _allocator = null!;

    /// <summary>Bytes per allocation.</summary>
    [Params(16, 64, 256, 1024, 4096)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 64L << 20, MovableBytes = 0 });
        // Warm: the pairs measured below hit the thread's magazine, as a steady-state workload does.
        _allocator.Free(_allocator.Allocate((nuint)Size));
        ArrayPool<byte>.Shared.Return(ArrayPool<byte>.Shared.Rent(Size));
    }

    [GlobalCleanup]
    public void Cleanup() => _allocator.Dispose();

    [Benchmark(Baseline = true, Description = "NativeMemory.Alloc + Free")]
    public void NativeMemoryPair() => NativeMemory.Free(NativeMemory.Alloc((nuint)Size));

    [Benchmark(Description = "NumaAllocator Allocate + Free")]
    public void NumaAllocatorPair() => _allocator.Free(_allocator.Allocate((nuint)Size));

    [Benchmark(Description = "ArrayPool<byte>.Shared Rent + Return")]
    public void ArrayPoolPair() => ArrayPool<byte>.Shared.Return(ArrayPool<byte>.Shared.Rent(Size));
}

/// <summary>
/// The two-thread scaling check: <see cref="Threads"/> threads each run <see cref="PairsPerThread"/>
/// allocate + free pairs of 64 B on their own objects, against the same threads running a loop that
/// allocates nothing, in the same run. Time per invocation is per thread's work, so the speed-up of two
/// threads over one is 2 x T(1) / T(2); the allocator's speed-up should be at least 0.9x the loop's
/// (which is what the machine gives two threads at all: a busy or SMT-shared machine lowers both).
/// </summary>
[BenchmarkCategory("objects-scaling")]
public unsafe class ObjectScalingBenchmarks
{
    /// <summary>Pairs (or loop steps) each thread runs per invocation.</summary>
    public const int PairsPerThread = 2_000_000;

    private NumaAllocator _allocator = null!;
    private Thread[] _workers = [];
    private Barrier _barrier = null!;
    private volatile int _mode; // 0 = stop, 1 = allocate, 2 = no-allocation loop
    private long _sink;

    /// <summary>Threads working at once.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 64L << 20, MovableBytes = 0 });
        _barrier = new Barrier(Threads);
        _workers = new Thread[Threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true };
            _workers[i].Start();
        }
        _mode = 1;
        AllocatePairs();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _mode = 0;
        _barrier.SignalAndWait();
        foreach (Thread worker in _workers)
            worker.Join();
        _barrier.Dispose();
        _allocator.Dispose();
    }

    [Benchmark(Baseline = true, Description = "loop without allocation, per thread")]
    public void NoAllocation() => RunAll(2);

    [Benchmark(Description = "NumaAllocator 64 B pairs, per thread")]
    public void AllocateFree() => RunAll(1);

    private void RunAll(int mode)
    {
        _mode = mode;
        _barrier.SignalAndWait(); // start the workers
        Work(mode);
        _barrier.SignalAndWait(); // wait for them
    }

    private void WorkerLoop()
    {
        while (true)
        {
            _barrier.SignalAndWait();
            int mode = _mode;
            if (mode == 0)
                return;
            Work(mode);
            _barrier.SignalAndWait();
        }
    }

    private void Work(int mode)
    {
        if (mode == 1)
            AllocatePairs();
        else
            Interlocked.Add(ref _sink, Spin());
    }

    private void AllocatePairs()
    {
        NumaAllocator allocator = _allocator;
        for (int i = 0; i < PairsPerThread; i++)
            allocator.Free(allocator.Allocate(64));
    }

    // A dependent chain of cheap arithmetic, no memory traffic: what two threads gain when nothing is shared.
    private static long Spin()
    {
        ulong x = 88172645463325252UL;
        for (int i = 0; i < PairsPerThread; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        return (long)x;
    }
}
