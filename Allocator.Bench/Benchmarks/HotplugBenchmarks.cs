using BenchmarkDotNet.Attributes;
using Numalloc.Admin;
using Numalloc.Caches;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Offline latency of a 64 MiB Movable zone full of unpinned movable buffers (every buffer migrated
/// to the other node). Each iteration builds a fresh heap and fills the zone in its setup.
/// </summary>
[BenchmarkCategory("hotplug")]
public unsafe class HotplugOfflineBenchmarks
{
    private const int BufferBytes = 64 * 1024;

    private CachedPageAllocator _caches = null!;
    private MovableHeap _movable = null!;
    private AllocatorAdmin _admin = null!;

    /// <summary>Buffers migrated by the last offline (reported by the README).</summary>
    public static long LastPagesMigrated { get; private set; }

    [IterationSetup]
    public void Setup()
    {
        var options = new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(2),
            NormalBytes = 16L << 20,
            NormalMaxBytes = 64L << 20,
            MovableBytes = 64L << 20,
            MovableMaxBytes = 128L << 20,
        };
        var pages = new PageAllocator(options, NumaTopology.FromOptions(options), PlatformFactory.Default);
        _caches = new CachedPageAllocator(pages);
        _movable = new MovableHeap(pages);
        _admin = AllocatorAdmin.Create(_caches, _movable);
        // Fill node 0's Movable zone down to its min watermark with this-node buffers.
        Zone zone = pages.Heap.ZoneOf(0, ZoneType.Movable);
        while (zone.FreePages - (BufferBytes / 4096) > zone.Snapshot().Watermarks.Min)
        {
            MovableBuffer? b = _movable.Allocate(BufferBytes, node: 0);
            if (b is null)
                break;
            using MovablePin pin = b.Pin();
            pin.Span.Fill(0x5A);
        }
    }

    [IterationCleanup]
    public void Cleanup()
    {
        _movable.Dispose();
        _caches.Dispose();
    }

    [Benchmark(Description = "offline a 64 MiB Movable zone full of unpinned 64 KiB buffers")]
    [InvocationCount(1, 1)]
    public HotplugStatus OfflineFullMovableZone()
    {
        HotplugResult result = _admin.OfflineZone(0, ZoneType.Movable, timeoutMs: 10_000);
        if (!result.IsOk)
            throw new InvalidOperationException($"offline failed: {result.Status} {result.Message}");
        LastPagesMigrated = result.PagesMigrated;
        return result.Status;
    }
}

/// <summary>
/// Order-0 page allocate+free pairs on every core (one worker per core, all on node 0) through the
/// magazines: steady state, and while an operator thread offlines and onlines one 16 MiB block of
/// node 0's Normal zone every second.
/// </summary>
[BenchmarkCategory("hotplug")]
public unsafe class HotplugThroughputBenchmarks
{
    private const int PairsPerThread = 200_000;

    private CachedPageAllocator _caches = null!;
    private AllocatorAdmin _admin = null!;
    private Thread? _operator;
    private volatile bool _stop;
    private int _threads;
    private int[] _cpus = [];

    /// <summary>Whether a 16 MiB block is offlined and onlined every second meanwhile.</summary>
    [Params(false, true)]
    public bool WithHotplug { get; set; }

    /// <summary>Offline attempts and how many committed (printed at cleanup).</summary>
    public static string LastHotplugCounts { get; private set; } = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        var options = new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(2),
            NormalBytes = 64L << 20,
            NormalMaxBytes = 128L << 20,
            MovableBytes = 0,
            MovableMaxBytes = 0,
        };
        NumaTopology topology = NumaTopology.FromOptions(options);
        var pages = new PageAllocator(options, topology, PlatformFactory.Default);
        _caches = new CachedPageAllocator(pages);
        _admin = AllocatorAdmin.Create(_caches, null);
        _threads = Math.Max(1, Environment.ProcessorCount);
        _cpus = [.. Enumerable.Range(0, _threads).Select(i => topology.Nodes[0].Cpus[i % topology.Nodes[0].Cpus.Length])];
        if (WithHotplug)
        {
            int block = pages.Heap.Layout.FirstBlockOfNode(0) + 3; // the last of node 0's four Normal blocks
            _operator = BlockCycler.Start(_admin, block, () => _stop, counts => LastHotplugCounts = counts);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _operator?.Join();
        if (WithHotplug)
            Console.WriteLine($"// hotplug during the run: {LastHotplugCounts}");
        _caches.Dispose();
    }

    [Benchmark(Description = "order-0 page pairs, one worker per core", OperationsPerInvoke = PairsPerThread)]
    public void PagePairs()
    {
        BlockCycler.RunOnCpus(_cpus, () =>
        {
            for (int i = 0; i < PairsPerThread; i++)
                _caches.FreePages(_caches.AllocPages(0), 0);
            _caches.FlushCurrentThread();
        });
    }
}

/// <summary>
/// Object allocation throughput (64 B pairs through <see cref="NumaAllocator"/>, one worker per core on
/// node 0) in steady state and while an operator offlines and onlines one 16 MiB block of node 0's
/// Normal zone every second: issue 6's "at least 80% of steady state".
/// </summary>
[BenchmarkCategory("hotplug")]
public unsafe class HotplugObjectThroughputBenchmarks
{
    private const int PairsPerThread = 200_000;

    private NumaAllocator _allocator = null!;
    private Thread? _operator;
    private volatile bool _stop;
    private int _threads;
    private int[] _cpus = [];

    /// <summary>Whether a 16 MiB block is offlined and onlined every second meanwhile.</summary>
    [Params(false, true)]
    public bool WithHotplug { get; set; }

    /// <summary>Offline attempts and how many committed (printed at cleanup).</summary>
    public static string LastHotplugCounts { get; private set; } = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        _allocator = NumaAllocator.Create(new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(2),
            NormalBytes = 64L << 20,
            NormalMaxBytes = 128L << 20,
            MovableBytes = 0,
            MovableMaxBytes = 0,
        });
        NumaTopology topology = _allocator.Admin.Topology;
        _threads = Math.Max(1, Environment.ProcessorCount);
        _cpus = [.. Enumerable.Range(0, _threads).Select(i => topology.Nodes[0].Cpus[i % topology.Nodes[0].Cpus.Length])];
        if (WithHotplug)
        {
            AllocatorAdmin admin = _allocator.Admin;
            int block = admin.GetBlocks().Where(b => b.Node == 0 && b.State == BlockState.Online).Max(b => b.Id);
            _operator = BlockCycler.Start(admin, block, () => _stop, counts => LastHotplugCounts = counts);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _operator?.Join();
        if (WithHotplug)
            Console.WriteLine($"// hotplug during the run: {LastHotplugCounts}");
        _allocator.Dispose();
    }

    [Benchmark(Description = "64 B object pairs, one worker per core", OperationsPerInvoke = PairsPerThread)]
    public void ObjectPairs()
    {
        BlockCycler.RunOnCpus(_cpus, () =>
        {
            for (int i = 0; i < PairsPerThread; i++)
                _allocator.Free(_allocator.Allocate(64));
            _allocator.FlushCurrentThread();
        });
    }
}

/// <summary>The operator of the throughput-under-hotplug benchmarks: offlines one block and onlines it again, once a second.</summary>
internal static class BlockCycler
{
    /// <summary>Runs <paramref name="work"/> on one new thread per entry of <paramref name="cpus"/>, each on that virtual CPU, and waits for all.</summary>
    public static void RunOnCpus(int[] cpus, Action work)
    {
        var workers = new Thread[cpus.Length];
        for (int t = 0; t < cpus.Length; t++)
        {
            int cpu = cpus[t];
            workers[t] = new Thread(() =>
            {
                VirtualCpu.Set(cpu);
                work();
                VirtualCpu.Clear();
            });
            workers[t].Start();
        }
        foreach (Thread w in workers)
            w.Join();
    }

    public static Thread Start(AllocatorAdmin admin, int block, Func<bool> stop, Action<string> report)
    {
        var thread = new Thread(() =>
        {
            int attempts = 0, committed = 0;
            while (!stop())
            {
                attempts++;
                if (admin.OfflineBlock(block, timeoutMs: 100).IsOk)
                {
                    committed++;
                    admin.OnlineBlock(block, ZoneType.Normal);
                }
                report($"{committed}/{attempts} offlines committed");
                for (int i = 0; i < 100 && !stop(); i++)
                    Thread.Sleep(10); // the 1 s period of the scenario
            }
        })
        { IsBackground = true };
        thread.Start();
        return thread;
    }
}
