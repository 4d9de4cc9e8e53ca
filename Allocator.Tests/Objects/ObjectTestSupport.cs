using System.Collections.Concurrent;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Topology;

namespace Numalloc.Tests.Objects;

/// <summary>Small allocators over simulated topologies, and the checks every object test ends with.</summary>
internal static unsafe class ObjectTestSupport
{
    public const long MiB = 1024 * 1024;

    /// <summary>An isolated allocator: <paramref name="nodes"/> simulated nodes of 2 virtual CPUs each, 4 MiB blocks, no Movable zone.</summary>
    public static NumaAllocator Create(int nodes = 1, long normalMiB = 16, long normalMaxMiB = 64, BadFreeAction onBadFree = BadFreeAction.Report) =>
        NumaAllocator.Create(Options(nodes, normalMiB, normalMaxMiB, onBadFree));

    public static AllocatorOptions Options(int nodes = 1, long normalMiB = 16, long normalMaxMiB = 64, BadFreeAction onBadFree = BadFreeAction.Report) => new()
    {
        Topology = TopologySpec.Simulate(nodes, cpusPerNode: 2),
        BlockBytes = TestHeaps.BlockBytes,
        NormalBytes = normalMiB * MiB,
        NormalMaxBytes = normalMaxMiB * MiB,
        MovableBytes = 0,
        MovableMaxBytes = 0,
        OnBadFree = onBadFree,
    };

    /// <summary>The first virtual CPU of <paramref name="node"/>.</summary>
    public static int CpuOf(NumaAllocator allocator, int node) => allocator.Heap.Topology.Nodes[node].Cpus[0];

    /// <summary>Every zone's free pages now, by zone index.</summary>
    public static long[] FreePages(NumaAllocator allocator)
    {
        ReadOnlySpan<Zone> zones = allocator.Heap.Pages.Heap.Zones;
        var free = new long[zones.Length];
        for (int i = 0; i < zones.Length; i++)
            free[i] = zones[i].Snapshot().FreePages;
        return free;
    }

    /// <summary>
    /// Flushes this thread's caches, drains every other thread's and every per-CPU cache, gives every
    /// empty slab back, then checks that every zone is back to <paramref name="initialFree"/> free pages
    /// exactly (no growth happened in between) and that nothing is left in slabs or caches.
    /// </summary>
    public static void AssertReconciled(NumaAllocator allocator, long[] initialFree)
    {
        Assert.That(allocator.Heap.DrainCaches(10_000), Is.True, "every magazine drained");
        allocator.Trim();
        Assert.That(allocator.Heap.CachedObjects(), Is.Zero, "no object left in a cache");
        var stats = allocator.Heap.Snapshot();
        Assert.That(stats.Classes.Sum(c => c.Slabs), Is.Zero, "no slab left");
        Assert.That(stats.LargeAllocations, Is.Zero, "no large run left");
        Assert.That(stats.HugeMappings, Is.Zero, "no huge mapping left");
        Assert.That(FreePages(allocator), Is.EqualTo(initialFree), "every zone's free pages are back to their initial count");
        foreach (Zone zone in allocator.Heap.Pages.Heap.Zones)
        {
            ZoneStats s = zone.Snapshot();
            Assert.That(s.FreePages + s.IsolatedFreePages, Is.EqualTo(s.ManagedPages), $"zone {s.Node}/{s.Type}: free == managed");
        }
    }

    /// <summary>Runs <paramref name="body"/>(0..<paramref name="count"/>-1) on as many threads at once, clears each one's virtual CPU at its end, and rethrows every failure together.</summary>
    public static void RunThreads(int count, Action<int> body)
    {
        var failures = new ConcurrentQueue<Exception>();
        var threads = new Thread[count];
        for (int t = 0; t < count; t++)
        {
            int id = t;
            threads[t] = new Thread(() =>
            {
                try
                {
                    body(id);
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
                finally
                {
                    VirtualCpu.Clear();
                }
            });
            threads[t].Start();
        }
        foreach (Thread thread in threads)
            thread.Join();
        if (!failures.IsEmpty)
            throw new AggregateException(failures);
    }

    /// <summary>
    /// Writes a pattern derived from <paramref name="seed"/> into the <paramref name="bytes"/> at
    /// <paramref name="p"/>: the first 64 bytes, one byte in every 509, and the last 64 (cheap enough for
    /// every size up to 64 MiB, dense enough to catch overlapping or lost memory).
    /// </summary>
    public static void Fill(void* p, nuint bytes, ulong seed)
    {
        var b = (byte*)p;
        for (nuint i = 0; i < bytes; i = Next(i, bytes, bytes))
            b[i] = Pattern(seed, i);
    }

    /// <summary>
    /// Whether the first <paramref name="bytes"/> at <paramref name="p"/> still hold the pattern
    /// <see cref="Fill"/> wrote over <paramref name="filledBytes"/> bytes (default: the same), where it wrote it.
    /// </summary>
    public static bool Holds(void* p, nuint bytes, ulong seed, nuint filledBytes = 0)
    {
        if (filledBytes == 0)
            filledBytes = bytes;
        var b = (byte*)p;
        for (nuint i = 0; i < bytes; i = Next(i, bytes, filledBytes))
        {
            if (b[i] != Pattern(seed, i))
                return false;
        }
        return true;
    }

    private static byte Pattern(ulong seed, nuint i) => (byte)((seed * 0x9E3779B97F4A7C15UL >> 56) ^ (ulong)i ^ ((ulong)i >> 8));

    // The next written position after i, below limit, of a fill over filled bytes.
    private static nuint Next(nuint i, nuint limit, nuint filled)
    {
        nuint tail = filled > 64 ? filled - 64 : 0;
        if (i + 1 < 64 || i + 1 >= tail)
            return i + 1;
        nuint next = ((i / 509) + 1) * 509;
        return Math.Min(Math.Min(next, tail), limit);
    }
}
