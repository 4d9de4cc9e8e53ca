using System.Diagnostics;
using System.Runtime.Versioning;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Platform;

namespace Numalloc.Tests.Pages;

/// <summary>
/// Purging free pages back to the OS: decay driven by explicit purger ticks (no sleeps), Trim, the
/// decay_ms extremes, zero-fill after a purge, and allocation and free racing the purger.
/// </summary>
[Platform("Linux")]
[SupportedOSPlatform("linux")]
[NonParallelizable]
public sealed unsafe class PurgeTests
{
    private const long MiB = TestHeaps.MiB;
    private const int MaxOrder = PageHeap.MaxOrder;
    private const int SpikeBlocks = 50; // 50 x 4 MiB = 200 MiB
    private static readonly nuint s_blockBytes = (nuint)HeapLayout.PageSize << MaxOrder;

    private static AllocatorOptions Options(int decayMs, long normalMiB = 16, long normalMaxMiB = 512) => new()
    {
        BlockBytes = TestHeaps.BlockBytes,
        NormalBytes = normalMiB * MiB,
        NormalMaxBytes = normalMaxMiB * MiB,
        MovableBytes = 0,
        MovableMaxBytes = 0,
        DecayMs = decayMs,
    };

    private static PageHeap Heap(int decayMs, bool startPurger = false, long normalMiB = 16, long normalMaxMiB = 512, IPlatform? platform = null) =>
        new(Options(decayMs, normalMiB, normalMaxMiB), TestHeaps.Simulated(1), platform ?? PlatformFactory.Default, startPurger);

    // Allocates SpikeBlocks largest blocks and writes every page of them.
    private static List<int> Spike(PageHeap heap)
    {
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        var blocks = new List<int>();
        for (int i = 0; i < SpikeBlocks; i++)
        {
            int page = zone.TryAllocate(MaxOrder, PageAllocFlags.None);
            Assert.That(page, Is.Not.EqualTo(PageDescriptor.NoPage), $"spike block {i}");
            new Span<byte>(heap.AddressOfPage(page), (int)s_blockBytes).Fill(0xA5);
            blocks.Add(page);
        }
        return blocks;
    }

    private static void FreeAll(PageHeap heap, List<int> blocks)
    {
        foreach (int page in blocks)
            heap.FreePages(heap.AddressOfPage(page), MaxOrder);
    }

    private static int Resident(PageHeap heap, List<int> blocks) =>
        blocks.Sum(page => ProcessMemory.ResidentPageCount(heap.AddressOfPage(page), s_blockBytes, HeapLayout.PageSize));

    private static long SpikePages => (long)SpikeBlocks << MaxOrder;

    [Test]
    public void FreedLargeRun_IsStampedWithThePurgeClock_SoItWaitsForItsDecay()
    {
        using PageHeap heap = Heap(decayMs: 1000);
        heap.PurgeTick(5000);
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        int page = zone.TryAllocate(4, PageAllocFlags.None);
        ref PageDescriptor head = ref heap.Descriptor(page);
        head.Flags = 0xFF; // a large run of 9 pages, as the object heap marks it
        head.Owner = 9;

        Assert.That(heap.TryFreeRun(heap.AddressOfPage(page), 9, 0xFF), Is.True);

        Assert.That(heap.PurgeTick(5999), Is.Zero, "999 ms after the free: still within the decay (stamp 0 purged it at once)");
        Assert.That(heap.PurgeTick(6000), Is.GreaterThan(0), "its decay ended");
    }

    [Test]
    public void Spike_OfFreedPages_IsPurgedByTheTickThatEndsItsDecay_NotBefore()
    {
        using PageHeap heap = Heap(decayMs: 1000);
        heap.PurgeTick(5000);
        long before = ProcessMemory.ResidentBytes();
        List<int> blocks = Spike(heap);
        FreeAll(heap, blocks); // stamped 5000 on the purge clock
        long peak = ProcessMemory.ResidentBytes();
        Assert.That(peak - before, Is.GreaterThan(180 * MiB), "the spike is resident");

        Assert.That(heap.PurgeTick(5999), Is.Zero, "999 ms after the free: still within the decay");
        Assert.That(Resident(heap, blocks), Is.EqualTo((int)SpikePages), "nothing purged early");
        Assert.That(heap.Snapshot().DirtyPages, Is.EqualTo(SpikePages));

        long purged = heap.PurgeTick(6000);

        long after = ProcessMemory.ResidentBytes();
        TestContext.Out.WriteLine($"RSS before {before / MiB} MiB, peak {peak / MiB} MiB, after the decay tick {after / MiB} MiB");
        Assert.Multiple(() =>
        {
            Assert.That(purged, Is.EqualTo(SpikePages * HeapLayout.PageSize), "exactly the spike");
            Assert.That(heap.Snapshot().PurgedBytes, Is.EqualTo(SpikePages * HeapLayout.PageSize));
            Assert.That(heap.Snapshot().DirtyPages, Is.Zero);
            Assert.That(Resident(heap, blocks), Is.Zero, "mincore: every spike page is gone");
            Assert.That(peak - after, Is.GreaterThan(180 * MiB), "RSS (statm) fell back");
        });
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void Trim_PurgesTheSpikeAtOnce_AndCountsItExactly()
    {
        using PageHeap heap = Heap(decayMs: 3_600_000);
        List<int> blocks = Spike(heap);
        FreeAll(heap, blocks);
        long peak = ProcessMemory.ResidentBytes();

        long purged = heap.Trim();

        long after = ProcessMemory.ResidentBytes();
        TestContext.Out.WriteLine($"RSS peak {peak / MiB} MiB, after Trim {after / MiB} MiB");
        Assert.Multiple(() =>
        {
            Assert.That(purged, Is.EqualTo(SpikePages * HeapLayout.PageSize));
            Assert.That(heap.Snapshot().PurgedBytes, Is.EqualTo(purged));
            Assert.That(Resident(heap, blocks), Is.Zero);
            Assert.That(peak - after, Is.GreaterThan(180 * MiB), "RSS (statm) fell back");
            Assert.That(heap.Trim(), Is.Zero, "nothing dirty is left");
        });
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void Spike_IsPurgedByTheBackgroundThread_WithinAGenerousBound()
    {
        using PageHeap heap = Heap(decayMs: 200, startPurger: true);
        Assert.That(heap.PurgeIntervalMs, Is.EqualTo(25));
        List<int> blocks = Spike(heap);
        long peak = ProcessMemory.ResidentBytes();
        FreeAll(heap, blocks);

        // Polls with a bound far above decay + tick, so a starved 2-core box does not fail it.
        var clock = Stopwatch.StartNew();
        while (Resident(heap, blocks) > 0 && clock.Elapsed < TimeSpan.FromSeconds(60))
            Thread.Sleep(20);

        long after = ProcessMemory.ResidentBytes();
        TestContext.Out.WriteLine($"purged after {clock.ElapsedMilliseconds} ms (decay 200 ms); RSS peak {peak / MiB} MiB, after {after / MiB} MiB");
        Assert.That(Resident(heap, blocks), Is.Zero, "the purger returned the spike");
        Assert.That(peak - after, Is.GreaterThan(180 * MiB), "RSS (statm) fell back");
        Assert.That(heap.Snapshot().PurgedBytes, Is.EqualTo(SpikePages * HeapLayout.PageSize));
    }

    [Test]
    public void DecayMinusOne_NeverPurgesByTime_ButTrimStillDoes()
    {
        using PageHeap heap = Heap(decayMs: -1, startPurger: true);
        Assert.That(heap.PurgeIntervalMs, Is.Zero, "no purger thread");
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        int page = zone.TryAllocate(MaxOrder, PageAllocFlags.None);
        new Span<byte>(heap.AddressOfPage(page), (int)s_blockBytes).Fill(1);
        heap.FreePages(heap.AddressOfPage(page), MaxOrder);

        Assert.That(heap.PurgeTick(1_000_000_000), Is.Zero);
        Assert.That(heap.PurgeTick(2_000_000_000), Is.Zero);
        Assert.That(ProcessMemory.ResidentPageCount(heap.AddressOfPage(page), s_blockBytes, HeapLayout.PageSize), Is.EqualTo(1 << MaxOrder));
        Assert.That(heap.Snapshot().DirtyPages, Is.EqualTo(1 << MaxOrder));

        Assert.That(heap.Trim(), Is.EqualTo((long)s_blockBytes));
        Assert.That(ProcessMemory.ResidentPageCount(heap.AddressOfPage(page), s_blockBytes, HeapLayout.PageSize), Is.Zero);
    }

    [Test]
    public void DecayZero_PurgesAtTheFree_OnTheFreeingThread()
    {
        using PageHeap heap = Heap(decayMs: 0, startPurger: true);
        Assert.That(heap.PurgeIntervalMs, Is.Zero, "no thread: the free itself purges");
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        int page = zone.TryAllocate(MaxOrder, PageAllocFlags.None);
        new Span<byte>(heap.AddressOfPage(page), (int)s_blockBytes).Fill(1);

        heap.FreePages(heap.AddressOfPage(page), MaxOrder);

        ZoneStats stats = zone.Snapshot();
        Assert.Multiple(() =>
        {
            Assert.That(stats.DirtyPages, Is.Zero);
            Assert.That(stats.PurgedPages, Is.EqualTo(1 << MaxOrder));
            Assert.That(stats.Purges, Is.EqualTo(1));
            Assert.That(ProcessMemory.ResidentPageCount(heap.AddressOfPage(page), s_blockBytes, HeapLayout.PageSize), Is.Zero);
        });
    }

    [Test]
    public void PurgedPages_ReadBackAsZero_WhenAllocatedAgain()
    {
        using PageHeap heap = Heap(decayMs: -1, normalMiB: 16, normalMaxMiB: 16);
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        List<int> pages = TestHeaps.Drain(zone, 0);
        Assert.That(pages, Has.Count.GreaterThan(3000));
        foreach (int page in pages)
            new Span<byte>(heap.AddressOfPage(page), HeapLayout.PageSize).Fill(0xAB);
        foreach (int page in pages)
            zone.Free(page, 0, heap.AddressOfPage(page));

        long purged = heap.Trim();
        List<int> again = TestHeaps.Drain(zone, 0);

        Assert.That(purged, Is.EqualTo(heap.Snapshot().PurgedBytes));
        Assert.That(purged, Is.GreaterThanOrEqualTo(pages.Count * (long)HeapLayout.PageSize), "every written page was purged");
        Assert.That(again, Has.Count.EqualTo(pages.Count));
        int nonZero = again.Count(page => new Span<byte>(heap.AddressOfPage(page), HeapLayout.PageSize).IndexOfAnyExcept((byte)0) >= 0);
        Assert.That(nonZero, Is.Zero, "MADV_DONTNEED on private anonymous memory: zero-filled on the next touch");
    }

    [Test]
    public void BlockBeingPurged_IsNeitherServedNorFreeable_WhileTheMadviseRuns()
    {
        var platform = new PurgeHookPlatform(PlatformFactory.Default);
        using PageHeap heap = Heap(decayMs: -1, platform: platform);
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        int victim = zone.TryAllocate(MaxOrder, PageAllocFlags.None);
        new Span<byte>(heap.AddressOfPage(victim), (int)s_blockBytes).Fill(3);
        heap.FreePages(heap.AddressOfPage(victim), MaxOrder);
        bool hookRan = false;
        platform.OnPurge = address =>
        {
            platform.OnPurge = null; // once: the block freed below is purged by the same trim
            hookRan = true;
            Assert.That((nint)address, Is.EqualTo((nint)heap.AddressOfPage(victim)));
            ZoneStats during = zone.Snapshot();
            Assert.That(during.PurgingPages, Is.EqualTo(1 << MaxOrder));
            Assert.That(heap.Descriptor(victim).State, Is.EqualTo(PageState.Purging));
            Assert.Throws<InvalidOperationException>(() => heap.FreePages(heap.AddressOfPage(victim), MaxOrder), "a free of it is a double free");
            var served = new List<int>();
            int page;
            while (served.Count < 1024 && (page = zone.TryAllocate(0, PageAllocFlags.None)) != PageDescriptor.NoPage)
                served.Add(page);
            Assert.That(served, Has.None.InRange(victim, victim + (1 << MaxOrder) - 1), "no page of the block in flight is served");
            foreach (int p in served)
                zone.Free(p, 0, heap.AddressOfPage(p));
        };

        heap.Trim();

        Assert.That(hookRan, Is.True);
        Assert.That(zone.Snapshot().PurgingPages, Is.Zero);
        Assert.That(ProcessMemory.ResidentPageCount(heap.AddressOfPage(victim), s_blockBytes, HeapLayout.PageSize), Is.Zero);
        TestHeaps.AssertReconciled(heap);
    }

    [Test]
    public void FailedPurge_LeavesTheBlockDirty_AndCountsTheFailure()
    {
        var platform = new FaultInjectingPlatform(PlatformFactory.Default);
        using PageHeap heap = Heap(decayMs: -1, platform: platform);
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        int page = zone.TryAllocate(MaxOrder, PageAllocFlags.None);
        heap.FreePages(heap.AddressOfPage(page), MaxOrder);
        platform.FailNth(PlatformCall.Purge, 1);

        Assert.That(heap.Trim(), Is.Zero);
        ZoneStats stats = zone.Snapshot();
        Assert.That(stats.PurgeFailures, Is.EqualTo(1));
        Assert.That(stats.DirtyPages, Is.EqualTo(1 << MaxOrder), "still dirty: the next purge retries it");

        Assert.That(heap.Trim(), Is.EqualTo((long)s_blockBytes));
        TestHeaps.AssertReconciled(heap);
    }

    [Test, Category("Stress"), NonParallelizable, CancelAfter(300_000)]
    public void AllocAndFree_RacingThePurger_KeepContentsAndFreeCountsExact()
    {
        const int Workers = 2, OpsPerWorker = 60_000, LivePerWorker = 48;
        using PageHeap heap = Heap(decayMs: 1, normalMiB: 32, normalMaxMiB: 64);
        Zone zone = heap.ZoneOf(0, ZoneType.Normal);
        long corrupt = 0, failed = 0;
        int running = Workers;

        var workers = new Thread[Workers];
        for (int w = 0; w < Workers; w++)
        {
            int seed = w;
            workers[w] = new Thread(() =>
            {
                var random = new Random(seed);
                var live = new List<(int Page, int Order, byte Value)>();
                for (int op = 0; op < OpsPerWorker; op++)
                {
                    if (live.Count < LivePerWorker && (live.Count == 0 || random.Next(2) == 0))
                    {
                        int order = random.Next(5);
                        int page = zone.TryAllocate(order, PageAllocFlags.None);
                        if (page == PageDescriptor.NoPage)
                        {
                            Interlocked.Increment(ref failed);
                            continue;
                        }
                        byte value = (byte)random.Next(1, 256);
                        new Span<byte>(heap.AddressOfPage(page), HeapLayout.PageSize << order).Fill(value);
                        live.Add((page, order, value));
                    }
                    else
                    {
                        int i = random.Next(live.Count);
                        (int page, int order, byte value) = live[i];
                        live[i] = live[^1];
                        live.RemoveAt(live.Count - 1);
                        if (new Span<byte>(heap.AddressOfPage(page), HeapLayout.PageSize << order).IndexOfAnyExcept(value) >= 0)
                            Interlocked.Increment(ref corrupt);
                        zone.Free(page, order, heap.AddressOfPage(page));
                    }
                }
                foreach ((int page, int order, byte value) in live)
                {
                    if (new Span<byte>(heap.AddressOfPage(page), HeapLayout.PageSize << order).IndexOfAnyExcept(value) >= 0)
                        Interlocked.Increment(ref corrupt);
                    zone.Free(page, order, heap.AddressOfPage(page));
                }
                Interlocked.Decrement(ref running);
            });
            workers[w].Start();
        }

        // The purger, driven directly: every tick finds every dirty block expired (decay 1 ms, the
        // clock moves 2 ms a tick), and every eighth round is a trim.
        uint now = 0;
        long ticks = 0;
        while (Volatile.Read(ref running) > 0)
        {
            now += 2;
            heap.PurgeTick(now);
            if (++ticks % 8 == 0)
                heap.Trim();
        }
        foreach (Thread t in workers)
            t.Join();

        ZoneStats stats = zone.Snapshot();
        TestContext.Out.WriteLine($"{ticks} ticks, {stats.Purges} madvise calls, {stats.PurgedPages} pages purged");
        Assert.Multiple(() =>
        {
            Assert.That(Interlocked.Read(ref corrupt), Is.Zero, "no live page was purged under its owner");
            Assert.That(Interlocked.Read(ref failed), Is.Zero, "no allocation failed while pages were in flight");
            Assert.That(stats.PurgingPages, Is.Zero);
            Assert.That(stats.PurgedPages, Is.GreaterThan(0));
            Assert.That(stats.DirtyPages, Is.LessThanOrEqualTo(stats.FreePages));
        });
        TestHeaps.AssertReconciled(heap);
    }

    /// <summary>The real platform, with a callback inside Purge before the madvise.</summary>
    private sealed class PurgeHookPlatform(IPlatform inner) : IPlatform
    {
        public Action<nint>? OnPurge { get; set; }

        public nuint PageSize => inner.PageSize;

        public int PossibleCpuCount => inner.PossibleCpuCount;

        public int CurrentCpu => inner.CurrentCpu;

        public void* Reserve(nuint sizeBytes, nuint alignmentBytes) => inner.Reserve(sizeBytes, alignmentBytes);

        public void Commit(void* address, nuint sizeBytes) => inner.Commit(address, sizeBytes);

        public void Decommit(void* address, nuint sizeBytes) => inner.Decommit(address, sizeBytes);

        public void Purge(void* address, nuint sizeBytes)
        {
            OnPurge?.Invoke((nint)address);
            inner.Purge(address, sizeBytes);
        }

        public void Release(void* address, nuint sizeBytes) => inner.Release(address, sizeBytes);

        public void Bind(void* address, nuint sizeBytes, int node, BindMode mode) => inner.Bind(address, sizeBytes, node, mode);

        public bool TryQueryBinding(void* address, out BindMode mode, out int node) => inner.TryQueryBinding(address, out mode, out node);

        public void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes) => inner.QueryNodeOfPages(pages, nodes);

        public int QueryCurrentCpu(out int node) => inner.QueryCurrentCpu(out node);
    }
}
