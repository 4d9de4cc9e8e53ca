using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

[NonParallelizable]
public class MagazineStressTests
{
    private const int Kinds = 2;
    private const int ItemsPerKind = 2048;
    private const int Owners = 4;
    private const int OwnerIterations = 100_000;
    private const int Requesters = 2;
    private const int MinDrainsPerRequester = 100;
    private const int MaxDrainsPerRequester = 5_000;

    /// <summary>
    /// Owners allocate and free (some calls nested) while requesters drain every magazine and CPU cache
    /// again and again; two owners exit early (reaped), two park idle. Bounded by iterations; the
    /// invariants are checked at the end: the counter identity holds exactly, every item is in exactly
    /// one place, and no item was ever handed out while it was live.
    /// </summary>
    [Test, Category("Stress"), NonParallelizable, CancelAfter(300_000)]
    public void Drains_RacingOwnersThatAllocateAndFree_RunExactlyOnce_AndLoseNoItem(CancellationToken token)
    {
        using var rig = new CacheRig(kinds: Kinds, itemsPerKind: ItemsPerKind, magazineCapacity: 16);
        RunStress(rig, token, out string report);
        TestContext.Out.WriteLine(report);
    }

    /// <summary>The stress body, shared with the forced-owner-fence child process.</summary>
    internal static void RunStress(CacheRig rig, CancellationToken token, out string report, int ownerIterations = OwnerIterations, int minDrains = MinDrainsPerRequester)
    {
        var live = new int[Kinds * ItemsPerKind];
        int doubleHandouts = 0, badFrees = 0, allocFailures = 0, drainTimeouts = 0;
        using var idle = new ManualResetEventSlim();
        using var ownersDone = new CountdownEvent(Owners);
        var threads = new List<Thread>();

        for (int o = 0; o < Owners; o++)
        {
            int me = o;
            threads.Add(new Thread(() =>
            {
                Numalloc.Platform.VirtualCpu.Set(me);
                var rng = new Random(me);
                var held = new List<(int Kind, nint Item)>();
                for (int it = 0; it < ownerIterations; it++)
                {
                    if (it % 7 == 0)
                    {
                        // An outer frame around the calls: they run nested and keep its decision.
                        using MagazineScope outer = rig.Registry.EnterScope();
                        AllocateSome(rig, rng, held, live, ref doubleHandouts, ref allocFailures);
                    }
                    else
                    {
                        AllocateSome(rig, rng, held, live, ref doubleHandouts, ref allocFailures);
                    }

                    int keep = held.Count > 24 ? 0 : rng.Next(held.Count + 1);
                    while (held.Count > keep)
                    {
                        (int kind, nint item) = held[^1];
                        held.RemoveAt(held.Count - 1);
                        FreeOne(rig, kind, item, live, ref badFrees);
                    }
                }

                foreach ((int kind, nint item) in held)
                {
                    FreeOne(rig, kind, item, live, ref badFrees);
                }

                ownersDone.Signal();
                if (me >= 2)
                {
                    idle.Wait(); // parked with items in its magazines
                }
            }));
        }

        for (int r = 0; r < Requesters; r++)
        {
            threads.Add(new Thread(() =>
            {
                // At least minDrains, and on while owners run (bounded by MaxDrainsPerRequester either way).
                for (int d = 0; d < minDrains || (ownersDone.CurrentCount != 0 && d < MaxDrainsPerRequester); d++)
                {
                    if (!rig.Registry.DrainAll(MagazineRegistry.DrainAllWork, timeoutMs: 60_000))
                    {
                        Interlocked.Increment(ref drainTimeouts);
                    }

                    Thread.SpinWait(d % 64);
                }
            }));
        }

        foreach (Thread thread in threads)
        {
            thread.IsBackground = true;
            thread.Start();
        }

        ownersDone.Wait(token);
        for (int i = Owners; i < threads.Count; i++)
        {
            while (!threads[i].Join(100))
            {
                token.ThrowIfCancellationRequested();
            }
        }

        threads[0].Join();
        threads[1].Join();

        // Quiescent: exited owners' sets still registered, idle owners parked.
        for (int kind = 0; kind < Kinds; kind++)
        {
            long everywhere = rig.Backends[kind].FreeCount + rig.Caches[kind].TotalCount + rig.Registry.CountMagazineItems(kind);
            Assert.That(everywhere, Is.EqualTo(ItemsPerKind), $"kind {kind}: backend + CPU caches + magazines");
        }

        Assert.That(rig.Registry.DrainAll(), Is.True);
        idle.Set();
        threads[2].Join();
        threads[3].Join();

        Assert.That(doubleHandouts, Is.Zero, "an item was handed out while live");
        Assert.That(badFrees, Is.Zero);
        Assert.That(allocFailures, Is.Zero);
        Assert.That(drainTimeouts, Is.Zero);
        Assert.That(live, Is.All.Zero);
        rig.AssertEverythingInBackends();
        MagazineCounters c = rig.AssertCounterIdentity();
        CpuCacheStats s0 = rig.Caches[0].GetStats();
        report = $"{c}; kind 0 CPU caches: {s0}";
    }

    private static void AllocateSome(CacheRig rig, Random rng, List<(int, nint)> held, int[] live, ref int doubleHandouts, ref int allocFailures)
    {
        int count = 1 + rng.Next(6);
        for (int i = 0; i < count; i++)
        {
            int kind = rng.Next(Kinds);
            if (!rig.Registry.TryAllocate(kind, out nint item))
            {
                Interlocked.Increment(ref allocFailures);
                continue;
            }

            if (Interlocked.CompareExchange(ref live[LiveIndex(rig, kind, item)], 1, 0) != 0)
            {
                Interlocked.Increment(ref doubleHandouts);
            }

            held.Add((kind, item));
        }
    }

    private static void FreeOne(CacheRig rig, int kind, nint item, int[] live, ref int badFrees)
    {
        // Not live before it is freed: another thread may pop it the moment it is in a cache.
        if (Interlocked.CompareExchange(ref live[LiveIndex(rig, kind, item)], 0, 1) != 1)
        {
            Interlocked.Increment(ref badFrees);
        }

        rig.Registry.Free(kind, item);
    }

    private static int LiveIndex(CacheRig rig, int kind, nint item) =>
        kind * ItemsPerKind + rig.Backends[kind].IndexOf(item);
}
