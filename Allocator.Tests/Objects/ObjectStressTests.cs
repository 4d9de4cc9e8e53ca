using System.Collections.Concurrent;
using Numalloc.Platform;
using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests.Objects;

/// <summary>
/// Many threads on every simulated node: producer/consumer cross-thread frees (xmalloc-test) and random
/// size churn with threads that hand their objects to their successors (larson). Every object's contents
/// are checked at its free; at the end, with everything freed and the caches flushed, every zone has
/// exactly its initial free pages again.
/// </summary>
[NonParallelizable]
[Category("Stress")]
public sealed unsafe class ObjectStressTests
{
    private static readonly int s_threads = Math.Max(4, Environment.ProcessorCount);

    // Mostly small, some mid-size, a few page runs and rare huge mappings.
    private static nuint SizeFor(Random random)
    {
        int roll = random.Next(1000);
        return roll switch
        {
            < 700 => (nuint)random.Next(0, 257),
            < 950 => (nuint)random.Next(257, 8193),
            < 995 => (nuint)random.Next(8193, 70_001),
            < 999 => (nuint)random.Next(70_001, 400_000),
            _ => (nuint)random.Next(4 << 20, 6 << 20),
        };
    }

    [Test, CancelAfter(300_000)]
    public void ProducersAndConsumers_OnEveryNode_FreeAcrossThreads_AndEverythingReconciles(CancellationToken token)
    {
        using NumaAllocator allocator = Create(nodes: 4, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        const int PerProducer = 40_000;
        int producers = s_threads;
        int consumers = s_threads;
        var queue = new BlockingCollection<(nint P, nuint Size, ulong Seed)>(boundedCapacity: 4096);
        long consumed = 0;
        var producerThreads = Task.Run(() =>
        {
            try
            {
                RunThreads(producers, id =>
                {
                    VirtualCpu.Set(CpuOf(allocator, id % 4));
                    var random = new Random(id);
                    for (int i = 0; i < PerProducer && !token.IsCancellationRequested; i++)
                    {
                        nuint size = SizeFor(random);
                        void* p = allocator.Allocate(size);
                        Assert.That(allocator.NodeOf(p), Is.Not.EqualTo(-1));
                        ulong seed = ((ulong)id << 32) | (uint)i;
                        Fill(p, size, seed);
                        queue.Add(((nint)p, size, seed), token);
                    }
                    if (id % 2 == 0)
                        allocator.FlushCurrentThread(); // the others are reaped
                });
            }
            finally
            {
                queue.CompleteAdding();
            }
        }, token);
        RunThreads(consumers, id =>
        {
            VirtualCpu.Set(CpuOf(allocator, (id + 1) % 4));
            foreach ((nint p, nuint size, ulong seed) in queue.GetConsumingEnumerable(token))
            {
                Assert.That(Holds((void*)p, size, seed), Is.True, $"object of {size} bytes kept its contents until its free");
                Assert.That(allocator.UsableSize((void*)p), Is.GreaterThanOrEqualTo(size));
                allocator.Free((void*)p);
                Interlocked.Increment(ref consumed);
            }
        });
        producerThreads.Wait(token);
        Assert.That(consumed, Is.EqualTo((long)producers * PerProducer));
        Assert.That(allocator.Heap.BadFrees + allocator.Heap.Slabs.DoubleFrees, Is.Zero);
        AssertReconciled(allocator, initial);
    }

    [Test, CancelAfter(300_000)]
    public void LarsonChurn_WithThreadsHandingTheirObjectsToSuccessors_Reconciles(CancellationToken token)
    {
        using NumaAllocator allocator = Create(nodes: 4, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        const int Slots = 2000, Rounds = 6, ChurnPerRound = 30_000;
        int workers = s_threads;
        // Each worker's slots survive its thread: the next round's thread (on another node) frees them.
        var slots = new (nint P, nuint Size, ulong Seed)[workers][];
        for (int w = 0; w < workers; w++)
            slots[w] = new (nint, nuint, ulong)[Slots];
        for (int round = 0; round < Rounds && !token.IsCancellationRequested; round++)
        {
            int r = round;
            RunThreads(workers, id =>
            {
                VirtualCpu.Set(CpuOf(allocator, (id + r) % 4));
                var random = new Random((r * 1000) + id);
                var mine = slots[id];
                for (int i = 0; i < ChurnPerRound; i++)
                {
                    int slot = random.Next(Slots);
                    (nint old, nuint oldSize, ulong oldSeed) = mine[slot];
                    nuint size = SizeFor(random);
                    void* p;
                    if (old != 0 && !Holds((void*)old, oldSize, oldSeed))
                        throw new AssertionException($"slot {slot}: {oldSize} bytes lost their contents");
                    if (old != 0 && random.Next(10) == 0)
                    {
                        p = allocator.Reallocate((void*)old, size);
                        if (!Holds(p, Math.Min(oldSize, size), oldSeed, oldSize))
                            throw new AssertionException($"slot {slot}: {oldSize} -> {size} bytes lost their contents in Reallocate");
                    }
                    else
                    {
                        if (old != 0)
                            allocator.Free((void*)old);
                        p = allocator.Allocate(size);
                    }
                    ulong seed = ((ulong)r << 48) | ((ulong)id << 32) | (uint)i;
                    Fill(p, size, seed);
                    mine[slot] = ((nint)p, size, seed);
                }
                // Larson's threads just exit; half of them flush first.
                if (id % 2 == 1)
                    allocator.FlushCurrentThread();
            });
        }
        foreach (var mine in slots)
        {
            foreach ((nint p, nuint size, ulong seed) in mine)
            {
                if (p == 0)
                    continue;
                Assert.That(Holds((void*)p, size, seed), Is.True);
                allocator.Free((void*)p);
            }
        }
        Assert.That(allocator.Heap.BadFrees + allocator.Heap.Slabs.DoubleFrees, Is.Zero);
        AssertReconciled(allocator, initial);
    }

    [Test, CancelAfter(300_000)]
    public void ConcurrentDrainsAndTrims_WhileThreadsChurn_LoseNothing(CancellationToken token)
    {
        using NumaAllocator allocator = Create(nodes: 2, normalMiB: 64, normalMaxMiB: 64);
        long[] initial = FreePages(allocator);
        int stop = 0;
        var drainer = new Thread(() =>
        {
            int i = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if (i++ % 2 == 0)
                    allocator.Heap.DrainCaches(5_000);
                else
                    allocator.Heap.ReleaseEmptySlabs(_ => true);
                Thread.Sleep(1);
            }
        });
        drainer.Start();
        try
        {
            RunThreads(s_threads, id =>
            {
                VirtualCpu.Set(CpuOf(allocator, id % 2));
                var random = new Random(id);
                var held = new List<(nint P, nuint Size, ulong Seed)>();
                for (int i = 0; i < 60_000 && !token.IsCancellationRequested; i++)
                {
                    if (held.Count > 0 && random.Next(2) == 0)
                    {
                        int at = random.Next(held.Count);
                        (nint p, nuint size, ulong seed) = held[at];
                        held[at] = held[^1];
                        held.RemoveAt(held.Count - 1);
                        if (!Holds((void*)p, size, seed))
                            throw new AssertionException($"{size} bytes lost their contents");
                        allocator.Free((void*)p);
                    }
                    else
                    {
                        nuint size = (nuint)random.Next(1, 3000);
                        void* p = allocator.Allocate(size);
                        ulong seed = ((ulong)id << 32) | (uint)i;
                        Fill(p, size, seed);
                        held.Add(((nint)p, size, seed));
                    }
                    if (i % 5000 == 0)
                        allocator.Trim();
                }
                foreach ((nint p, _, _) in held)
                    allocator.Free((void*)p);
            });
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            drainer.Join();
        }
        TestContext.Out.WriteLine(allocator.Heap.Registry.Counters.ToString());
        AssertReconciled(allocator, initial);
        var c = allocator.Heap.Registry.Counters;
        Assert.That(c.DoneRemotely + c.DoneByOwner + c.Coalesced, Is.EqualTo(c.Requests), "every drain request ran exactly once");
    }
}
