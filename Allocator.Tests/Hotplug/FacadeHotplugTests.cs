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
}
