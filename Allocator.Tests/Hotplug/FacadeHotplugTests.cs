using Numalloc.Admin;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;

namespace Numalloc.Tests.Hotplug;

/// <summary>Hot-remove through the public facade: objects, large allocations and movable buffers of NumaAllocator against its Admin.</summary>
[NonParallelizable]
public sealed unsafe class FacadeHotplugTests
{
    private static NumaAllocator CreateAllocator() => NumaAllocator.Create(new AllocatorOptions
    {
        Topology = TopologySpec.Simulate(2, 2),
        NormalBytes = 16 * AllocatorOptions.MiB,
        MovableBytes = 16 * AllocatorOptions.MiB,
        NormalMaxBytes = 128 * AllocatorOptions.MiB,
        MovableMaxBytes = 64 * AllocatorOptions.MiB,
        BlockBytes = 8 * AllocatorOptions.MiB,
    });

    [Test]
    public void BusyOfflineOfANormalZone_RollsBack_AndTheNodeServesAgainAfterwards()
    {
        using NumaAllocator allocator = CreateAllocator();
        var live = new List<nint>();
        for (int i = 0; i < 2000; i++)
            live.Add((nint)allocator.AllocateOnNode((nuint)(16 + (i % 64) * 32), 1));

        HotplugResult result = allocator.Admin.OfflineZone(1, ZoneType.Normal, 5000);
        Assert.That(result.Status, Is.EqualTo(HotplugStatus.Busy), result.Message);

        // After the rollback node 1 serves strict requests again, small and large.
        for (int i = 0; i < 20_000; i++)
        {
            void* p = allocator.TryAllocateOnNode((nuint)(16 + (i % 256) * 16), 1);
            Assert.That(p != null, $"allocation {i} on node 1 failed after the rollback");
            Assert.That(allocator.NodeOf(p), Is.EqualTo(1));
            live.Add((nint)p);
        }
        void* large = allocator.TryAllocateOnNode(300_000, 1);
        Assert.That(large != null, "large allocation on node 1 after the rollback");
        allocator.Free(large);
        // And local large allocations from a thread of node 1 keep succeeding while they churn.
        var random = new Random(7);
        var held = new Queue<nint>();
        var failures = new List<string>();
        var thread = new Thread(() =>
        {
            Numalloc.Platform.VirtualCpu.Set(2); // a CPU of node 1
            for (int i = 0; i < 3000; i++)
            {
                nuint size = (nuint)random.Next(64 * 1024, 1024 * 1024 + 1);
                void* p = allocator.TryAllocate(size);
                if (p == null)
                    failures.Add($"{i}: {size}");
                else
                    held.Enqueue((nint)p);
                if (held.Count > 4)
                    allocator.Free((void*)held.Dequeue());
            }
            while (held.Count > 0)
                allocator.Free((void*)held.Dequeue());
        });
        thread.Start();
        thread.Join();
        Assert.That(failures, Is.Empty);
        foreach (nint p in live)
            allocator.Free((void*)p);
    }

    [Test]
    public void OfflineOfAMovableZone_MigratesTheFacadesBuffers_AndAFreedNormalZoneGoesOffline()
    {
        using NumaAllocator allocator = CreateAllocator();
        var buffers = new List<MovableBuffer>();
        for (int i = 0; i < 32; i++)
        {
            MovableBuffer buffer = allocator.AllocateMovable(32 * 1024, node: 1);
            using (MovablePin pin = buffer.Pin())
                pin.Span.Fill((byte)i);
            buffers.Add(buffer);
        }
        var objects = new List<nint>();
        for (int i = 0; i < 1000; i++)
            objects.Add((nint)allocator.AllocateOnNode(64, 1));
        foreach (nint p in objects)
            allocator.Free((void*)p);

        HotplugResult movable = allocator.Admin.OfflineZone(1, ZoneType.Movable, 5000);
        Assert.That(movable.Status, Is.EqualTo(HotplugStatus.Ok), movable.Message);
        Assert.That(movable.PagesMigrated, Is.GreaterThan(0));
        for (int i = 0; i < buffers.Count; i++)
        {
            using MovablePin pin = buffers[i].Pin();
            Assert.That(pin.Span.ToArray(), Has.All.EqualTo((byte)i), $"buffer {i} after migration");
            Assert.That(allocator.NodeOf((void*)pin.Address), Is.EqualTo(0), "migrated to the other node");
        }

        // The objects were freed: their slabs are empty, so node 1's Normal zone can go (the caches are drained by the offline).
        HotplugResult normal = allocator.Admin.OfflineZone(1, ZoneType.Normal, 5000);
        Assert.That(normal.Status, Is.EqualTo(HotplugStatus.Ok), normal.Message);
        Assert.That(allocator.TryAllocateOnNode(64, 1) == null, "node 1 has no memory now");
        Assert.That(allocator.Admin.OnlineNode(1).IsOk, Is.True);
        void* back = allocator.TryAllocateOnNode(64, 1);
        Assert.That(back != null && allocator.NodeOf(back) == 1, "node 1 serves again after online");
        allocator.Free(back);
        foreach (MovableBuffer buffer in buffers)
            buffer.Free();
    }

    /// <summary>
    /// The drill torture at object level: workers on every node make small and large objects and movable
    /// buffers through the facade, check every byte at free and at every re-pin, and free a share on
    /// another thread, while an operator offlines and onlines zones and whole nodes a fixed number of
    /// times. Verdict: no allocation failed, no byte changed, every drain ran exactly once, and with
    /// everything freed and trimmed every zone's free pages equal its managed pages.
    /// </summary>
    [Test, Category("Stress"), CancelAfter(600_000)]
    public void ObjectDrillTorture_NoSpuriousFailure_NoChangedByte_DrainsExactlyOnce_AndItReconciles()
    {
        using NumaAllocator allocator = NumaAllocator.Create(new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(3, 2),
            NormalBytes = 8 * AllocatorOptions.MiB,
            MovableBytes = 8 * AllocatorOptions.MiB,
            // Room to grow well past what the workers need: the three Normal zones together onlined at
            // most 132 MiB in five runs, and 128 MiB each lets the two left during a node's offline
            // hold all of it, so the verdict never depends on how the threads' interleaving fragmented
            // a zone (the buddy's tests cover fragmentation: ZoneTests.TheTailOfALargeRun_*).
            NormalMaxBytes = 128 * AllocatorOptions.MiB,
            MovableMaxBytes = 32 * AllocatorOptions.MiB,
            BlockBytes = 4 * AllocatorOptions.MiB,
        });
        const int Workers = 3, Operations = 60;
        int operatorDone = 0;
        long failures = 0, mismatches = 0, allocations = 0;
        var inboxes = Enumerable.Range(0, Workers).Select(_ => new System.Collections.Concurrent.ConcurrentQueue<(nint P, int Size, byte Tag)>()).ToArray();
        var results = new Dictionary<HotplugStatus, int>();

        void Check(nint p, int size, byte tag)
        {
            var span = new ReadOnlySpan<byte>((void*)p, size);
            if (span.IndexOfAnyExcept(tag) >= 0)
                Interlocked.Increment(ref mismatches);
        }

        var threads = new Thread[Workers];
        for (int w = 0; w < Workers; w++)
        {
            int id = w;
            threads[w] = new Thread(() =>
            {
                Numalloc.Platform.VirtualCpu.Set(id * 2); // worker w runs on node w
                var random = new Random(id);
                var live = new List<(nint P, int Size, byte Tag)>();
                var buffers = new List<(MovableBuffer Buffer, byte Tag)>();
                while (Volatile.Read(ref operatorDone) == 0)
                {
                    while (inboxes[id].TryDequeue(out var foreign))
                    {
                        Check(foreign.P, foreign.Size, foreign.Tag);
                        allocator.Free((void*)foreign.P);
                    }
                    int roll = random.Next(100);
                    if (roll < 60 || live.Count == 0)
                    {
                        int size = roll < 55 ? random.Next(1, 4097) : random.Next(64 * 1024, 512 * 1024);
                        void* p = allocator.TryAllocate((nuint)size);
                        Interlocked.Increment(ref allocations);
                        if (p == null)
                        {
                            Interlocked.Increment(ref failures);
                            continue;
                        }
                        byte tag = (byte)random.Next(1, 256);
                        new Span<byte>(p, size).Fill(tag);
                        live.Add(((nint)p, size, tag));
                        if (live.Count > 400)
                            roll = 99; // make room below
                    }
                    else if (roll < 75)
                    {
                        if (buffers.Count < 24)
                        {
                            MovableBuffer? buffer = allocator.TryAllocateMovable(random.Next(1, 32 * 1024));
                            Interlocked.Increment(ref allocations);
                            if (buffer is null)
                            {
                                Interlocked.Increment(ref failures);
                                continue;
                            }
                            byte tag = (byte)random.Next(1, 256);
                            using (MovablePin pin = buffer.Pin())
                                pin.Span.Fill(tag);
                            buffers.Add((buffer, tag));
                        }
                        else
                        {
                            int i = random.Next(buffers.Count);
                            using (MovablePin pin = buffers[i].Buffer.Pin())
                            {
                                if (pin.Span.IndexOfAnyExcept(buffers[i].Tag) >= 0)
                                    Interlocked.Increment(ref mismatches);
                            }
                            buffers[i].Buffer.Free();
                            buffers.RemoveAt(i);
                        }
                    }
                    if (roll >= 75 && live.Count > 0)
                    {
                        int i = random.Next(live.Count);
                        var item = live[i];
                        live[i] = live[^1];
                        live.RemoveAt(live.Count - 1);
                        if (random.Next(4) == 0)
                        {
                            inboxes[(id + 1) % Workers].Enqueue(item); // freed by the next worker
                        }
                        else
                        {
                            Check(item.P, item.Size, item.Tag);
                            allocator.Free((void*)item.P);
                        }
                    }
                }
                foreach (var item in live)
                {
                    Check(item.P, item.Size, item.Tag);
                    allocator.Free((void*)item.P);
                }
                foreach (var (buffer, tag) in buffers)
                {
                    using (MovablePin pin = buffer.Pin())
                    {
                        if (pin.Span.IndexOfAnyExcept(tag) >= 0)
                            Interlocked.Increment(ref mismatches);
                    }
                    buffer.Free();
                }
                allocator.FlushCurrentThread();
            });
            threads[w].Start();
        }

        var targets = new List<(string Name, Func<HotplugResult> Offline, Func<HotplugResult> Online)>();
        for (int node = 0; node < 3; node++)
        {
            int n = node;
            targets.Add(($"node {n} movable", () => allocator.Admin.OfflineZone(n, ZoneType.Movable, 2000), () => allocator.Admin.OnlineZone(n, ZoneType.Movable)));
            targets.Add(($"node {n} normal", () => allocator.Admin.OfflineZone(n, ZoneType.Normal, 2000), () => allocator.Admin.OnlineZone(n, ZoneType.Normal)));
            targets.Add(($"node {n}", () => allocator.Admin.OfflineNode(n, 2000), () => allocator.Admin.OnlineNode(n)));
        }
        for (int i = 0; i < Operations; i++)
        {
            var (name, offline, online) = targets[i % targets.Count];
            HotplugResult result = offline();
            results[result.Status] = results.GetValueOrDefault(result.Status) + 1;
            Assert.That(result.Status, Is.Not.EqualTo(HotplugStatus.InProgress).And.Not.EqualTo(HotplugStatus.Cancelled), $"{name}: {result.Message}");
            if (result.IsOk)
                Assert.That(online().IsOk, Is.True, $"online {name}");
        }
        Volatile.Write(ref operatorDone, 1);
        foreach (Thread thread in threads)
            thread.Join();
        for (int w = 0; w < Workers; w++)
        {
            while (inboxes[w].TryDequeue(out var left))
            {
                Check(left.P, left.Size, left.Tag);
                allocator.Free((void*)left.P);
            }
        }
        allocator.Trim();

        global::Numalloc.Caches.MagazineCounters objectDrains = allocator.Heap.Registry.Counters;
        AllocatorStats stats = allocator.Admin.GetStats();
        TestContext.Out.WriteLine($"results {string.Join(", ", results.Select(r => $"{r.Key} {r.Value}"))}; {allocations} allocations, {failures} failed, {mismatches} changed; " +
            $"object drains {objectDrains.Requests} = {objectDrains.DoneRemotely} remote + {objectDrains.DoneByOwner} by owner + {objectDrains.Coalesced} coalesced; " +
            $"page drains {stats.Drains.Requests}; {stats.Movable.PagesMigrated} pages migrated; reader restarts {stats.Zonelists.ReaderRestarts}; " +
            $"Normal zones grew to {stats.Nodes.Sum(n => n.Zones.Where(z => z.Zone == ZoneType.Normal).Sum(z => z.ManagedPages))} pages");
        Assert.Multiple(() =>
        {
            Assert.That(results.GetValueOrDefault(HotplugStatus.Ok), Is.GreaterThan(0), "some offlines committed");
            Assert.That(failures, Is.Zero, "no spurious allocation failure");
            Assert.That(mismatches, Is.Zero, "no byte changed");
            Assert.That(objectDrains.Requests, Is.EqualTo(objectDrains.DoneRemotely + objectDrains.DoneByOwner + objectDrains.Coalesced));
            Assert.That(stats.Drains.Requests, Is.EqualTo(stats.Drains.DoneRemotely + stats.Drains.DoneByOwner + stats.Drains.Coalesced));
            foreach (NodeStatsInfo node in stats.Nodes)
            {
                foreach (ZoneStatsInfo zone in node.Zones)
                    Assert.That(zone.FreePages + zone.IsolatedFreePages, Is.EqualTo(zone.ManagedPages), $"zone {zone.Node}/{zone.Zone}: free == managed");
            }
        });
    }
}
