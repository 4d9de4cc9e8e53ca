using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Tests.Platform;

namespace Numalloc.Tests.Hotplug;

/// <summary>
/// The drill torture: workers on every node allocate, free, pin and check raw pages (small: order 0
/// through the caches; large: orders 1..3) and movable buffers, while an operator thread offlines and
/// onlines zones, blocks and whole nodes for a fixed number of operations.
/// </summary>
[NonParallelizable]
public sealed unsafe class DrillTortureTests
{
    private const int Operations = 450;         // operator offline/online cycles
    private const int MinWorkerIterations = 3000;
    private const int Workers = 4;
    private const int LiveItems = 24;

    private sealed class Item
    {
        public nint Pointer;
        public int Order;
        public MovableBuffer? Buffer;
        public ulong Seed;
    }

    private sealed class WorkerCounts
    {
        public long Allocations;
        public long Failures;
        public long ChecksumErrors;
        public long Pins;
        public long Iterations;
    }

    [Test, Category("Stress")]
    public void Drill_AllocationsPinsAndChecksums_SurviveOfflineAndOnlineOfZonesBlocksAndNodes()
    {
        // Three nodes: workers run on nodes 0 and 1; node 2 holds movable buffers placed there and
        // whatever falls back, so its Normal zone can often go offline too.
        using var rig = new HotplugRig(nodes: 3, normalMiB: 8, normalMaxMiB: 24, movableMiB: 8, movableMaxMiB: 24);
        int operatorDone = 0;
        var counts = new WorkerCounts[Workers];
        var threads = new Thread[Workers];
        for (int w = 0; w < Workers; w++)
        {
            int id = w;
            counts[w] = new WorkerCounts();
            threads[w] = new Thread(() => Work(rig, id, rig.CpuOf(id % 2), counts[id], () => Volatile.Read(ref operatorDone) != 0));
            threads[w].Start();
        }

        // A second requester draining every cache concurrently with the offlines' drains: requests
        // then meet owners inside the allocator and each other (by-owner runs and coalescing).
        var drainer = new Thread(() =>
        {
            VirtualCpu.Set(rig.CpuOf(2));
            for (int i = 0; Volatile.Read(ref operatorDone) == 0; i++)
            {
                rig.Cache.DrainAll();
                if (i % 8 == 7)
                    Thread.Sleep(1); // throttle only; nothing waits on it
            }
            VirtualCpu.Clear();
        });
        drainer.Start();

        var results = new Dictionary<HotplugStatus, int>();
        long offlineBlocks = 0;
        Exception? operatorFailure = null;
        var op = new Thread(() =>
        {
            try
            {
                HotplugTarget[] targets =
                [
                    HotplugTarget.ZoneOf(2, ZoneType.Movable),
                    HotplugTarget.ZoneOf(0, ZoneType.Movable),
                    HotplugTarget.Node(2),
                    HotplugTarget.ZoneOf(2, ZoneType.Normal),
                    HotplugTarget.ZoneOf(1, ZoneType.Movable),
                    HotplugTarget.Block(-1), // a Movable block of node 1, chosen at run time
                    HotplugTarget.Node(1),
                    HotplugTarget.ZoneOf(0, ZoneType.Normal),
                    HotplugTarget.Node(0),
                ];
                for (int i = 0; i < Operations; i++)
                {
                    HotplugTarget target = targets[i % targets.Length];
                    if (target.Kind == HotplugTargetKind.Block)
                    {
                        int[] movable = rig.BlocksOf(1, ZoneType.Movable, BlockState.Online);
                        target = HotplugTarget.Block(movable[^1], ZoneType.Movable);
                    }
                    HotplugResult result = rig.Hotplug.Offline(target, timeoutMs: 500);
                    results[result.Status] = results.GetValueOrDefault(result.Status) + 1;
                    if (result.Status is not (HotplugStatus.Ok or HotplugStatus.Busy or HotplugStatus.TimedOut))
                        throw new AssertionException($"offline {target}: {result.Status} {result.Message}");
                    if (!result.IsOk)
                        continue;
                    foreach (int block in result.Blocks)
                    {
                        if (rig.Heap.Blocks.State(block) != BlockState.Offline)
                            throw new AssertionException($"block {block} of {target} is not Offline");
                        if (OperatingSystem.IsLinux() && ProcessMemory.ProtectionAt((nint)rig.Heap.Layout.AddressOfBlock(block)) != "---p")
                            throw new AssertionException($"block {block} of {target} is still accessible");
                    }
                    offlineBlocks += result.Blocks.Length;
                    HotplugResult online = rig.Hotplug.Online(target);
                    if (!online.IsOk)
                        throw new AssertionException($"online {target}: {online.Status} {online.Message}");
                }
            }
            catch (Exception e)
            {
                operatorFailure = e;
            }
            finally
            {
                Volatile.Write(ref operatorDone, 1);
            }
        });
        op.Start();
        op.Join();
        drainer.Join();
        foreach (Thread t in threads)
            t.Join();

        Assert.That(operatorFailure, Is.Null, operatorFailure?.ToString());
        long failures = counts.Sum(c => c.Failures);
        long checksumErrors = counts.Sum(c => c.ChecksumErrors);
        var drains = rig.Cache.Registry.Counters;
        var movable = rig.Movable.Stats;
        TestContext.Out.WriteLine(
            $"operations {Operations}: " + string.Join(", ", results.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}")) +
            $"; blocks offlined {offlineBlocks}; worker iterations {counts.Sum(c => c.Iterations)}, allocations {counts.Sum(c => c.Allocations)}, pins {counts.Sum(c => c.Pins)}" +
            $"; failures {failures}, checksum errors {checksumErrors}" +
            $"; drains: requests {drains.Requests} = remote {drains.DoneRemotely} + by owner {drains.DoneByOwner} + coalesced {drains.Coalesced}, reaped {drains.SetsReaped}" +
            $"; migrated {movable.Migrated} buffers / {movable.PagesMigrated} pages, pinned rollbacks {movable.PinnedRollbacks}, frees completed by the migrator {movable.FreesCompletedByMigrator}" +
            $"; zonelist generation {rig.Pages.Zonelists.Generation}, reader restarts {rig.Pages.Zonelists.ReaderRestarts}");
        Assert.That(failures, Is.Zero, "no spurious allocation failure");
        Assert.That(checksumErrors, Is.Zero, "every checksum intact");
        Assert.That(results.GetValueOrDefault(HotplugStatus.Ok), Is.GreaterThan(0), "some offlines committed");
        Assert.That(drains.DoneRemotely + drains.DoneByOwner + drains.Coalesced, Is.EqualTo(drains.Requests), "every drain request ran exactly once");
        Assert.That(rig.Heap.Snapshot().Blocks.Count(b => b.State is BlockState.Isolated or BlockState.Onlining), Is.Zero);
        rig.AssertReconciled();
        // Exact reconciliation: every zone's managed pages are its Online blocks, all free now.
        long managed = rig.Heap.Zones.ToArray().Sum(z => z.Snapshot().ManagedPages);
        long onlineBlocks = rig.Heap.Snapshot().Blocks.Count(b => b.State == BlockState.Online);
        Assert.That(managed, Is.EqualTo(onlineBlocks * TestHeaps.PagesPerBlock));
    }

    private static void Work(HotplugRig rig, int id, int cpu, WorkerCounts counts, Func<bool> stop)
    {
        VirtualCpu.Set(cpu);
        var random = new Random(1000 + id);
        var live = new List<Item>(LiveItems);
        ulong seed = (ulong)id << 48;
        try
        {
            for (long i = 0; i < MinWorkerIterations || !stop(); i++)
            {
                counts.Iterations++;
                int r = random.Next(100);
                if (live.Count == LiveItems || (r < 40 && live.Count > 0))
                {
                    int k = random.Next(live.Count);
                    Release(rig, live[k], counts);
                    live[k] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    continue;
                }
                if (r < 50 && live.Count > 0)
                {
                    // Hold a pin across a yield: migrations meet pinned buffers.
                    Item item = live[random.Next(live.Count)];
                    if (item.Buffer is not null)
                    {
                        using MovablePin pin = item.Buffer.Pin();
                        counts.Pins++;
                        if (!CheckBytes((byte*)pin.Address, item.Buffer.Length, item.Seed))
                            counts.ChecksumErrors++;
                        Thread.Yield();
                        if (!CheckBytes((byte*)pin.Address, item.Buffer.Length, item.Seed))
                            counts.ChecksumErrors++;
                    }
                    continue;
                }
                var next = new Item { Seed = ++seed * 0x9E3779B97F4A7C15UL };
                if (r < 70)
                {
                    next.Order = 0;
                    next.Pointer = (nint)rig.Cache.AllocPages(0);
                }
                else if (r < 80)
                {
                    next.Order = 1 + random.Next(3);
                    next.Pointer = (nint)rig.Cache.AllocPages(next.Order);
                }
                else
                {
                    int node = r < 88 ? 2 : -1;
                    next.Buffer = rig.Movable.Allocate(1 + random.Next(64 * 1024), node);
                }
                counts.Allocations++;
                if (next.Pointer == 0 && next.Buffer is null)
                {
                    counts.Failures++;
                    continue;
                }
                if (next.Buffer is not null)
                {
                    using MovablePin pin = next.Buffer.Pin();
                    FillBytes((byte*)pin.Address, next.Buffer.Length, next.Seed);
                }
                else
                {
                    FillBytes((byte*)next.Pointer, HeapLayout.PageSize << next.Order, next.Seed);
                }
                live.Add(next);
            }
            foreach (Item item in live)
                Release(rig, item, counts);
            rig.Cache.FlushCurrentThread();
        }
        finally
        {
            VirtualCpu.Clear();
        }
    }

    private static void Release(HotplugRig rig, Item item, WorkerCounts counts)
    {
        if (item.Buffer is not null)
        {
            using (MovablePin pin = item.Buffer.Pin())
            {
                if (!CheckBytes((byte*)pin.Address, item.Buffer.Length, item.Seed))
                    counts.ChecksumErrors++;
            }
            item.Buffer.Free();
            return;
        }
        if (!CheckBytes((byte*)item.Pointer, HeapLayout.PageSize << item.Order, item.Seed))
            counts.ChecksumErrors++;
        rig.Cache.FreePages((void*)item.Pointer, item.Order);
    }

    // The seed at the start, every 1 KiB, and the last byte (which no 8-byte word covers).
    private static void FillBytes(byte* p, int length, ulong seed)
    {
        for (int offset = 0; offset + 8 < length; offset += offset < 64 ? 8 : 1024)
            *(ulong*)(p + offset) = seed + (ulong)offset;
        p[length - 1] = (byte)seed;
    }

    private static bool CheckBytes(byte* p, int length, ulong seed)
    {
        for (int offset = 0; offset + 8 < length; offset += offset < 64 ? 8 : 1024)
        {
            if (*(ulong*)(p + offset) != seed + (ulong)offset)
                return false;
        }
        return p[length - 1] == (byte)seed;
    }
}
