using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// 2^<see cref="Order"/> pages allocated and freed, single thread: through the page caches
/// (<see cref="CachedPageAllocator"/>: order 0 from the magazine, higher orders on to the zonelist walk),
/// straight from the zonelist walk (<see cref="PageAllocator"/>, buddy under the zone lock), and an
/// anonymous <c>mmap</c> + <c>munmap</c> of the same size. Nothing touches the memory: the kernel's side
/// is the mapping alone, as the allocator's is its bookkeeping.
/// </summary>
[QuickIterationTime]
[BenchmarkCategory("pages")]
public unsafe class PageOrderBenchmarks
{
    private const int CounterProbePairs = 10_000;

    private CachedPageAllocator _pages = null!;

    /// <summary>The orders measured: 4 KiB to 2 MiB, fewer in quick mode.</summary>
    public static IEnumerable<int> Orders => BenchConfig.IsQuick ? [0, 9] : [0, 2, 4, 9];

    /// <summary>Log2 of the pages per allocation.</summary>
    [ParamsSource(nameof(Orders))]
    public int Order { get; set; }

    private nuint SizeBytes => (nuint)HeapLayout.PageSize << Order;

    [GlobalSetup]
    public void Setup()
    {
        var options = new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 32L << 20, MovableBytes = 0 };
        _pages = new CachedPageAllocator(new PageAllocator(options, NumaTopology.FromOptions(options), PlatformFactory.Default));
        // Warm: the zone's block is online and the caches hold pages, as in a steady-state workload.
        CachedPair();
        ZonePair();
    }

    [GlobalCleanup]
    public void Cleanup() => _pages.Dispose();

    [GlobalCleanup(Target = nameof(CachedPair))]
    public void CleanupCachedPair()
    {
        RecordCounters(nameof(CachedPair), CachedPair);
        Cleanup();
    }

    [GlobalCleanup(Target = nameof(ZonePair))]
    public void CleanupZonePair()
    {
        RecordCounters(nameof(ZonePair), ZonePair);
        Cleanup();
    }

    [Benchmark(Baseline = true, Description = "mmap + munmap, anonymous")]
    public void MmapPair()
    {
        nuint size = SizeBytes;
        void* p = Interop.Libc.Mmap(null, size, Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE, Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_ANONYMOUS, -1, 0);
        if ((nint)p == Interop.Libc.MAP_FAILED)
            throw new InvalidOperationException($"mmap of {size} bytes failed: errno {Marshal.GetLastPInvokeError()}");
        Interop.Libc.Munmap(p, size);
    }

    [Benchmark(Description = "CachedPageAllocator AllocPages + FreePages")]
    public void CachedPair() => _pages.FreePages(_pages.AllocPages(Order), Order);

    [Benchmark(Description = "PageAllocator (zone) AllocPages + FreePages")]
    public void ZonePair() => _pages.Pages.FreePages(_pages.Pages.AllocPages(Order), Order);

    private void RecordCounters(string method, Action pair)
    {
        CountersPerOperation counters = AllocatorCounters.Measure(() => AllocatorCounters.Read(_pages), () =>
        {
            for (int i = 0; i < CounterProbePairs; i++)
                pair();
        }, CounterProbePairs);
        CounterSidecar.Record(nameof(PageOrderBenchmarks), method, [(nameof(Order), Order)], counters);
    }
}
