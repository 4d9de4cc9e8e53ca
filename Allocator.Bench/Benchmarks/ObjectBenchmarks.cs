using System.Buffers;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// One allocate + free pair of <see cref="Size"/> bytes, single thread: <see cref="NumaAllocator"/>
/// (its fast path: the thread's magazine), <c>NativeMemory.Alloc</c> + <c>Free</c> (glibc malloc),
/// <c>ArrayPool&lt;byte&gt;.Shared</c> rent + return, <see cref="NumaMemoryPool"/> and
/// <c>MemoryPool&lt;byte&gt;.Shared</c> rent + dispose of the owner. Target: NumaAllocator at most 0.5x NativeMemory.
/// The NumaAllocator cases record the allocator's counters per pair (<see cref="AllocatorCountersColumn"/>).
/// </summary>
[QuickIterationTime]
[BenchmarkCategory("objects")]
public unsafe class ObjectBenchmarks
{
    private const int CounterProbePairs = 100_000;

    private NumaAllocator _allocator = null!;
    private NumaMemoryPool _numaPool = null!;

    /// <summary>The sizes measured: 16 B to 64 KiB, fewer in quick mode.</summary>
    public static IEnumerable<int> Sizes => BenchConfig.IsQuick ? [16, 256, 4096, 65536] : [16, 64, 256, 1024, 4096, 16384, 65536];

    /// <summary>Bytes per allocation.</summary>
    [ParamsSource(nameof(Sizes))]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 64L << 20, MovableBytes = 0 });
        _numaPool = new NumaMemoryPool(_allocator);
        // Warm: the pairs measured below hit the thread's magazine (or pool), as a steady-state workload does.
        NumaAllocatorPair();
        ArrayPoolPair();
        NumaMemoryPoolPair();
        MemoryPoolPair();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _numaPool.Dispose();
        _allocator.Dispose();
    }

    [GlobalCleanup(Target = nameof(NumaAllocatorPair))]
    public void CleanupNumaAllocatorPair()
    {
        RecordCounters(nameof(NumaAllocatorPair), NumaAllocatorPair);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(NumaMemoryPoolPair))]
    public void CleanupNumaMemoryPoolPair()
    {
        RecordCounters(nameof(NumaMemoryPoolPair), NumaMemoryPoolPair);
        Cleanup();
    }

    [Benchmark(Baseline = true, Description = "NativeMemory.Alloc + Free")]
    public void NativeMemoryPair() => NativeMemory.Free(NativeMemory.Alloc((nuint)Size));

    [Benchmark(Description = "NumaAllocator Allocate + Free")]
    public void NumaAllocatorPair() => _allocator.Free(_allocator.Allocate((nuint)Size));

    [Benchmark(Description = "ArrayPool<byte>.Shared Rent + Return")]
    public void ArrayPoolPair() => ArrayPool<byte>.Shared.Return(ArrayPool<byte>.Shared.Rent(Size));

    [Benchmark(Description = "NumaMemoryPool Rent + Dispose")]
    public void NumaMemoryPoolPair() => _numaPool.Rent(Size).Dispose();

    [Benchmark(Description = "MemoryPool<byte>.Shared Rent + Dispose")]
    public void MemoryPoolPair() => MemoryPool<byte>.Shared.Rent(Size).Dispose();

    // After the measured iterations (steady state): a fixed count of pairs between two counter readings.
    private void RecordCounters(string method, Action pair)
    {
        CountersPerOperation counters = AllocatorCounters.Measure(() => AllocatorCounters.Read(_allocator), () =>
        {
            for (int i = 0; i < CounterProbePairs; i++)
                pair();
        }, CounterProbePairs);
        CounterSidecar.Record(nameof(ObjectBenchmarks), method, [(nameof(Size), Size)], counters);
    }
}

/// <summary>
/// Batches: <see cref="BatchSize"/> objects of <see cref="Size"/> bytes allocated, then freed in a random
/// order (a fixed-seed permutation, the same every run), single thread, the same contenders as
/// <see cref="ObjectBenchmarks"/>. Reported per object (one allocation and its free).
/// </summary>
[QuickIterationTime]
[BenchmarkCategory("objects", "batch")]
public unsafe class ObjectBatchBenchmarks
{
    /// <summary>Objects allocated before the first is freed.</summary>
    public const int BatchSize = 1000;

    private const int CounterProbeBatches = 100;
    private const int FreeOrderSeed = 20261123;

    private NumaAllocator _allocator = null!;
    private NumaMemoryPool _numaPool = null!;
    private int[] _freeOrder = [];
    private nint[] _pointers = [];
    private nint[] _inFreeOrder = [];
    private byte[][] _arrays = [];
    private IMemoryOwner<byte>[] _owners = [];

    /// <summary>Bytes per allocation (as <see cref="ObjectBenchmarks.Sizes"/>).</summary>
    [ParamsSource(nameof(Sizes))]
    public int Size { get; set; }

    /// <summary>The sizes measured.</summary>
    public static IEnumerable<int> Sizes => ObjectBenchmarks.Sizes;

    [GlobalSetup]
    public void Setup()
    {
        // Room for a whole batch of the largest size (1000 x 64 KiB) beside the slabs.
        _allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 256L << 20, MovableBytes = 0 });
        _numaPool = new NumaMemoryPool(_allocator);
        _freeOrder = BatchOrder.Shuffled(BatchSize, FreeOrderSeed);
        _pointers = new nint[BatchSize];
        _inFreeOrder = new nint[BatchSize];
        _arrays = new byte[BatchSize][];
        _owners = new IMemoryOwner<byte>[BatchSize];
        // Warm: the slabs, caches and pools hold a batch's worth, as in a steady-state workload.
        NumaAllocatorBatch();
        NumaAllocatorBulkBatch();
        ArrayPoolBatch();
        NumaMemoryPoolBatch();
        MemoryPoolBatch();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _numaPool.Dispose();
        _allocator.Dispose();
    }

    [GlobalCleanup(Target = nameof(NumaAllocatorBatch))]
    public void CleanupNumaAllocatorBatch()
    {
        RecordCounters(nameof(NumaAllocatorBatch), NumaAllocatorBatch);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(NumaAllocatorBulkBatch))]
    public void CleanupNumaAllocatorBulkBatch()
    {
        RecordCounters(nameof(NumaAllocatorBulkBatch), NumaAllocatorBulkBatch);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(NumaMemoryPoolBatch))]
    public void CleanupNumaMemoryPoolBatch()
    {
        RecordCounters(nameof(NumaMemoryPoolBatch), NumaMemoryPoolBatch);
        Cleanup();
    }

    [Benchmark(Baseline = true, Description = "NativeMemory.Alloc, then Free", OperationsPerInvoke = BatchSize)]
    public void NativeMemoryBatch()
    {
        nint[] pointers = _pointers;
        for (int i = 0; i < pointers.Length; i++)
            pointers[i] = (nint)NativeMemory.Alloc((nuint)Size);
        foreach (int i in _freeOrder)
            NativeMemory.Free((void*)pointers[i]);
    }

    [Benchmark(Description = "NumaAllocator Allocate, then Free", OperationsPerInvoke = BatchSize)]
    public void NumaAllocatorBatch()
    {
        NumaAllocator allocator = _allocator;
        nint[] pointers = _pointers;
        for (int i = 0; i < pointers.Length; i++)
            pointers[i] = (nint)allocator.Allocate((nuint)Size);
        foreach (int i in _freeOrder)
            allocator.Free((void*)pointers[i]);
    }

    /// <summary>The bulk calls; the free order is the others' (the copy into it is part of the time).</summary>
    [Benchmark(Description = "NumaAllocator AllocateBulk, then FreeBulk", OperationsPerInvoke = BatchSize)]
    public void NumaAllocatorBulkBatch()
    {
        NumaAllocator allocator = _allocator;
        nint[] pointers = _pointers, inFreeOrder = _inFreeOrder;
        allocator.AllocateBulk((nuint)Size, pointers);
        int[] order = _freeOrder;
        for (int i = 0; i < order.Length; i++)
            inFreeOrder[i] = pointers[order[i]];
        allocator.FreeBulk(inFreeOrder);
    }

    [Benchmark(Description = "ArrayPool<byte>.Shared Rent, then Return", OperationsPerInvoke = BatchSize)]
    public void ArrayPoolBatch()
    {
        byte[][] arrays = _arrays;
        for (int i = 0; i < arrays.Length; i++)
            arrays[i] = ArrayPool<byte>.Shared.Rent(Size);
        foreach (int i in _freeOrder)
            ArrayPool<byte>.Shared.Return(arrays[i]);
    }

    [Benchmark(Description = "NumaMemoryPool Rent, then Dispose", OperationsPerInvoke = BatchSize)]
    public void NumaMemoryPoolBatch() => RentThenDispose(_numaPool);

    [Benchmark(Description = "MemoryPool<byte>.Shared Rent, then Dispose", OperationsPerInvoke = BatchSize)]
    public void MemoryPoolBatch() => RentThenDispose(MemoryPool<byte>.Shared);

    private void RentThenDispose(MemoryPool<byte> pool)
    {
        IMemoryOwner<byte>[] owners = _owners;
        for (int i = 0; i < owners.Length; i++)
            owners[i] = pool.Rent(Size);
        foreach (int i in _freeOrder)
            owners[i].Dispose();
    }

    private void RecordCounters(string method, Action batch)
    {
        CountersPerOperation counters = AllocatorCounters.Measure(() => AllocatorCounters.Read(_allocator), () =>
        {
            for (int i = 0; i < CounterProbeBatches; i++)
                batch();
        }, (long)CounterProbeBatches * BatchSize);
        CounterSidecar.Record(nameof(ObjectBatchBenchmarks), method, [(nameof(Size), Size)], counters);
    }
}

/// <summary>The order a batch is freed in.</summary>
internal static class BatchOrder
{
    /// <summary>A permutation of 0..<paramref name="count"/>-1, the same for the same seed (Fisher-Yates).</summary>
    public static int[] Shuffled(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int[] order = new int[count];
        for (int i = 0; i < count; i++)
            order[i] = i;
        var random = new Random(seed); // seeded: the legacy generator, stable across runs and runtimes
        for (int i = count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
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
