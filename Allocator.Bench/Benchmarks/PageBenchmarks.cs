using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// One order-0 page (4 KiB) allocated and freed, single thread: through the magazine, through the
/// per-CPU cache alone (magazines off), straight from the zone, and NativeMemory.AlignedAlloc. The
/// "thread cache" cases make the same calls through a <see cref="ThreadPageCache"/> opened once per
/// invocation (a ref struct cannot live in a field), so each runs <see cref="PairsPerInvoke"/> pairs; the
/// baseline does too, for equal loop overhead.
/// </summary>
[QuickIterationTime]
[BenchmarkCategory("pages")]
public unsafe class PageBenchmarks
{
    private CachedPageAllocator _withMagazines = null!;
    private CachedPageAllocator _cpuCacheOnly = null!;

    [GlobalSetup]
    public void Setup()
    {
        var options = new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 16L << 20, MovableBytes = 0 };
        NumaTopology topology = NumaTopology.FromOptions(options);
        _withMagazines = new CachedPageAllocator(new PageAllocator(options, topology, PlatformFactory.Default));
        _cpuCacheOnly = new CachedPageAllocator(new PageAllocator(options, topology, PlatformFactory.Default), useMagazines: false);
        // Warm both so the measured pairs hit the caches, as a steady-state workload does.
        _withMagazines.FreePages(_withMagazines.AllocPages(0), 0);
        _cpuCacheOnly.FreePages(_cpuCacheOnly.AllocPages(0), 0);
    }

    // The floor of the per-CPU path: one cache word, taken with a CAS and released with a store, twice.
    private long* _floorWord;

    [GlobalSetup(Target = nameof(CasFloor))]
    public void SetupFloor() => _floorWord = (long*)NativeMemory.AlignedAlloc(64, 64);

    [GlobalCleanup(Target = nameof(CasFloor))]
    public void CleanupFloor() => NativeMemory.AlignedFree(_floorWord);

    [GlobalCleanup]
    public void Cleanup()
    {
        _withMagazines.Dispose();
        _cpuCacheOnly.Dispose();
    }

    /// <summary>Pairs per invocation of the looping cases.</summary>
    public const int PairsPerInvoke = 1000;

    [Benchmark(Baseline = true, Description = "NativeMemory.AlignedAlloc(4096, 4096) + free")]
    public void NativeMemoryAligned() => NativeMemory.AlignedFree(NativeMemory.AlignedAlloc(4096, 4096));

    [Benchmark(OperationsPerInvoke = PairsPerInvoke, Description = "NativeMemory.AlignedAlloc(4096, 4096) + free, looped")]
    public void NativeMemoryAlignedLooped()
    {
        for (int i = 0; i < PairsPerInvoke; i++)
            NativeMemory.AlignedFree(NativeMemory.AlignedAlloc(4096, 4096));
    }

    [Benchmark(OperationsPerInvoke = PairsPerInvoke, Description = "order-0 page, magazine, thread cache")]
    public void MagazineThreadCache()
    {
        using ThreadPageCache cache = _withMagazines.OpenThreadCache();
        for (int i = 0; i < PairsPerInvoke; i++)
            cache.FreePage(cache.AllocPage());
    }

    [Benchmark(OperationsPerInvoke = PairsPerInvoke, Description = "order-0 page, per-CPU cache only, thread cache")]
    public void CpuCacheOnlyThreadCache()
    {
        using ThreadPageCache cache = _cpuCacheOnly.OpenThreadCache();
        for (int i = 0; i < PairsPerInvoke; i++)
            cache.FreePage(cache.AllocPage());
    }

    [Benchmark(Description = "order-0 page, magazine")]
    public void Magazine() => _withMagazines.FreePages(_withMagazines.AllocPages(0), 0);

    [Benchmark(Description = "order-0 page, per-CPU cache only")]
    public void CpuCacheOnly() => _cpuCacheOnly.FreePages(_cpuCacheOnly.AllocPages(0), 0);

    /// <summary>What the per-CPU path cannot go below: its two CAS takes and release stores, with no allocator work.</summary>
    [Benchmark(OperationsPerInvoke = PairsPerInvoke, Description = "floor: two CAS take + release of one word, no allocator")]
    public void CasFloor()
    {
        long* word = _floorWord;
        for (int i = 0; i < PairsPerInvoke; i++)
        {
            long observed = *word;
            if (Interlocked.CompareExchange(ref *word, observed | 1, observed) == observed)
                Volatile.Write(ref *word, observed + 2);
            observed = *word;
            if (Interlocked.CompareExchange(ref *word, observed | 1, observed) == observed)
                Volatile.Write(ref *word, observed + 2);
        }
    }

    [Benchmark(Description = "order-0 page, zone (buddy, zone lock)")]
    public void Zone() => _withMagazines.Pages.FreePages(_withMagazines.Pages.AllocPages(0), 0);
}
