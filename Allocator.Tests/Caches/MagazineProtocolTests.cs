using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

[NonParallelizable]
public unsafe class MagazineProtocolTests
{
    [Test]
    public void Layout_ProtocolWordsSitAtFixedOffsetsInOneLine()
    {
        Assert.That(sizeof(MagazineSet), Is.EqualTo(64));
        Assert.That(Marshal.OffsetOf<MagazineSet>(nameof(MagazineSet.InAllocator)), Is.EqualTo((nint)0));
        Assert.That(Marshal.OffsetOf<MagazineSet>(nameof(MagazineSet.Pending)), Is.EqualTo((nint)8));
        Assert.That(MagazineSet.StrideBytes(8) % 64, Is.Zero);
    }

    [TestCase(8)]
    [TestCase(16)]
    [TestCase(64)]
    public void Layout_NoMagazineCountSitsAMultipleOf4KiBFromTheProtocolWords(int capacity)
    {
        // The fast paths store InAllocator, then load a magazine's count: a count whose low 12 address
        // bits fall in the header's line waits on that store ("4K aliasing"). 80 magazines: the object classes.
        for (int kind = 0; kind < 80; kind++)
        {
            long offset = MagazineSet.HeaderBytes + ((long)kind * MagazineSet.StrideBytes(capacity));
            Assert.That(offset % 4096, Is.GreaterThanOrEqualTo(MagazineSet.HeaderBytes), $"capacity {capacity}, magazine {kind} at {offset}");
        }
    }

    [Test]
    public void Enter_WithNothingPending_TakesTheFastPath_AndExitClearsInAllocator()
    {
        using var rig = new CacheRig();
        MagazineSet* set = rig.Registry.Current;
        using (MagazineScope scope = MagazineSet.EnterScope(set))
        {
            Assert.That(scope.Bypass, Is.False);
            Assert.That(set->InAllocator, Is.EqualTo(1));
        }

        Assert.That(set->InAllocator, Is.Zero);
    }

    [Test]
    public void NestedEnter_DoesNotReReadPending_AndKeepsTheOuterFastPathDecision()
    {
        using var rig = new CacheRig();
        MagazineSet* set = rig.Registry.Current;
        Assert.That(MagazineSet.Enter(set), Is.False, "outer: nothing pending");
        // The hook: a request lands between the outer and the nested entry.
        Interlocked.Or(ref set->Pending, MagazineRegistry.DrainAllWork);
        Assert.That(MagazineSet.Enter(set), Is.False, "nested: keeps the outer decision although Pending is now non-zero");
        Assert.That(set->InAllocator, Is.EqualTo(2), "the word counts the depth");
        MagazineSet.Exit(set);
        Assert.That(set->Pending & MagazineSet.WorkMask, Is.EqualTo(1), "a nested exit never runs the work");
        Assert.That(set->InAllocator, Is.EqualTo(1));
        MagazineSet.Exit(set);
        Assert.That(set->Pending & (MagazineSet.WorkMask | MagazineSet.Busy), Is.Zero, "the outermost exit ran it");
        Assert.That(set->Pending >> 32, Is.EqualTo(1), "one completion");
        Assert.That(rig.Registry.Counters.DoneByOwner, Is.EqualTo(1));
    }

    [Test]
    public void NestedEnter_DoesNotReReadPending_AndKeepsTheOuterBypassDecision()
    {
        using var rig = new CacheRig();
        MagazineSet* set = rig.Registry.Current;
        Interlocked.Or(ref set->Pending, MagazineSet.Busy); // someone works on the magazines
        Assert.That(MagazineSet.Enter(set), Is.True, "outer: bypass");
        Interlocked.And(ref set->Pending, ~MagazineSet.Busy); // the hook: the work finishes meanwhile
        Assert.That(MagazineSet.Enter(set), Is.True, "nested: still bypasses");
        MagazineSet.Exit(set);
        MagazineSet.Exit(set);
        Assert.That(MagazineSet.Enter(set), Is.False, "the next outermost entry reads Pending afresh");
        MagazineSet.Exit(set);
    }

    [Test]
    public void Exit_OnException_ClearsInAllocator()
    {
        using var rig = new CacheRig();
        MagazineSet* set = rig.Registry.Current;
        Assert.Throws<InvalidOperationException>(() =>
        {
            using MagazineScope outer = rig.Registry.EnterScope();
            using MagazineScope nested = rig.Registry.EnterScope();
            throw new InvalidOperationException("thrown inside the allocator");
        });
        Assert.That(set->InAllocator, Is.Zero);
    }

    [Test]
    public void Drain_OfIdleThreadsMagazine_RunsExactlyOnce()
    {
        using var rig = new CacheRig();
        using var owner = new ParkedOwner(rig, inside: false, (0, 6));
        MagazineSet* ownerSet = owner.Set;
        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.GreaterThan(0));

        Assert.That(rig.Registry.DrainAll(), Is.True);

        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.Zero);
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c, Is.EqualTo(new MagazineCounters(1, 1, 0, 0, 0)));
        rig.AssertEverythingInBackends();
        owner.Release();
    }

    [Test]
    public void Drain_OfExitedThreadsMagazine_IsReapedAndFlushed()
    {
        using var rig = new CacheRig(kinds: 2);
        var owner = new Thread(() =>
        {
            FillMagazine(rig, kind: 0, count: 5);
            FillMagazine(rig, kind: 1, count: 3);
        });
        owner.Start();
        owner.Join();
        Assert.That(rig.Registry.SetCount, Is.EqualTo(1));
        Assert.That(rig.Registry.CountMagazineItems(0) + rig.Registry.CountMagazineItems(1), Is.GreaterThan(0));

        Assert.That(rig.Registry.DrainAll(), Is.True);

        Assert.That(rig.Registry.SetCount, Is.Zero);
        Assert.That(rig.Registry.Counters.SetsReaped, Is.EqualTo(1));
        rig.AssertCounterIdentity();
        rig.AssertEverythingInBackends();
    }

    [Test, CancelAfter(30_000)]
    public void Drain_WhileOwnerIsInside_WaitsForTheOwnersExit(CancellationToken token)
    {
        using var rig = new CacheRig();
        using var owner = new ParkedOwner(rig, inside: true, (0, 6));
        MagazineSet* ownerSet = owner.Set;
        int before = MagazineSet.CountOf(ownerSet, 0);

        Task<bool> drain = Task.Run(() => rig.Registry.DrainAll(), token);
        while ((Volatile.Read(ref ownerSet->Pending) & MagazineSet.WorkMask) == 0)
        {
            token.ThrowIfCancellationRequested();
            Thread.Yield();
        }

        Assert.That(drain.Wait(50, token), Is.False, "the requester waits while the owner is inside");
        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.EqualTo(before), "nobody touched the magazines of an owner inside");

        owner.Release();
        Assert.That(drain.Wait(Timeout.Infinite, token), Is.True);
        Assert.That(drain.Result, Is.True);
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c.Requests, Is.EqualTo(1));
        Assert.That(c.DoneByOwner + c.DoneRemotely, Is.EqualTo(1), "once, by the owner at its exit or by the requester right after it");
        rig.AssertEverythingInBackends();
    }

    [Test, CancelAfter(30_000)]
    public void DrainAll_ReachesEveryMagazineAndCpuCache_AndReconcilesExactly(CancellationToken token)
    {
        using var rig = new CacheRig(kinds: 2, itemsPerKind: 512);
        using var release = new ManualResetEventSlim();
        using var ready = new CountdownEvent(4);
        var threads = new List<Thread>();
        for (int i = 0; i < 4; i++)
        {
            int cpu = i;
            bool idle = i < 2;
            var thread = new Thread(() =>
            {
                Numalloc.Platform.VirtualCpu.Set(cpu);
                FillMagazine(rig, kind: 0, count: 7 + cpu);
                FillMagazine(rig, kind: 1, count: 3 + cpu);
                ready.Signal();
                if (idle)
                {
                    release.Wait(); // parked: an idle thread never re-enters the allocator
                }
            });
            threads.Add(thread);
            thread.Start();
        }

        ready.Wait(token);
        threads[2].Join();
        threads[3].Join(); // two exited threads, two idle ones
        Assert.That(rig.Caches[0].TotalCount + rig.Caches[1].TotalCount, Is.GreaterThan(0), "some items sit in CPU caches");

        Assert.That(rig.Registry.DrainAll(), Is.True);

        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c.Requests, Is.EqualTo(2), "one request to each live set; exited sets are reaped");
        Assert.That(c.SetsReaped, Is.EqualTo(2));
        rig.AssertEverythingInBackends();
        release.Set();
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
    }

    [Test, CancelAfter(30_000)]
    public void TwoThreadsInsideTheAllocator_DrainingEachOther_DoNotDeadlock(CancellationToken token)
    {
        using var rig = new CacheRig();
        var sets = new nint[2];
        using var bothInside = new Barrier(2);
        var results = new bool[2];
        Task[] tasks = new Task[2];
        for (int i = 0; i < 2; i++)
        {
            int me = i;
            tasks[i] = Task.Factory.StartNew(() =>
            {
                FillMagazine(rig, kind: 0, count: 5);
                using MagazineScope scope = rig.Registry.EnterScope(); // outermost: may wait
                sets[me] = (nint)scope.Set;
                bothInside.SignalAndWait(token);
                results[me] = DeferredWork.Request((MagazineSet*)sets[1 - me], MagazineRegistry.DrainAllWork, timeoutMs: Timeout.Infinite);
            }, token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        Task.WaitAll(tasks, token);
        Assert.That(results, Is.All.True);
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c.Requests, Is.EqualTo(2));
        Assert.That(c.DoneByOwner, Is.EqualTo(2), "each serviced its own Pending while it waited, from inside");
        Assert.That(rig.Registry.CountMagazineItems(0), Is.Zero);
    }

    [Test, CancelAfter(30_000)]
    public void Request_FromANestedFrame_NeverWaits_AndTheOwnerRunsItAtItsExit(CancellationToken token)
    {
        using var rig = new CacheRig();
        using var owner = new ParkedOwner(rig, inside: true, (0, 5));
        MagazineSet* ownerSet = owner.Set;

        bool done;
        using (rig.Registry.EnterScope())
        using (rig.Registry.EnterScope())
        {
            done = DeferredWork.Request(ownerSet, MagazineRegistry.DrainAllWork, timeoutMs: Timeout.Infinite);
        }

        Assert.That(done, Is.False, "a nested frame returns at once while the owner is inside");
        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.GreaterThan(0));
        owner.Release();
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c, Is.EqualTo(new MagazineCounters(1, 0, 1, 0, 0)));
    }

    [Test, CancelAfter(30_000)]
    public void Request_WhenTheOwnerStaysInsidePastTheTimeout_ReturnsFalse_AndTheOwnerStillRunsItOnce(CancellationToken token)
    {
        using var rig = new CacheRig();
        using var owner = new ParkedOwner(rig, inside: true, (0, 5));
        MagazineSet* ownerSet = owner.Set;

        Assert.That(rig.Registry.DrainAll(MagazineRegistry.DrainAllWork, timeoutMs: 20), Is.False);
        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.GreaterThan(0), "not run while the owner is inside");

        owner.Release();
        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.Zero, "the owner ran it at its exit");
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c, Is.EqualTo(new MagazineCounters(1, 0, 1, 0, 0)));
    }

    [Test]
    public void Request_WhoseBitIsAlreadyPending_IsCoalescedAndRunsOnce()
    {
        using var rig = new CacheRig();
        using var owner = new ParkedOwner(rig, inside: false, (0, 5));
        MagazineSet* ownerSet = owner.Set;
        // A first requester set the bit and has not claimed yet (we stand in for it, and count it).
        Interlocked.Or(ref ownerSet->Pending, MagazineRegistry.DrainAllWork);
        rig.Registry.CountRequests(1, 0);

        Assert.That(DeferredWork.Request(ownerSet, MagazineRegistry.DrainAllWork, Timeout.Infinite), Is.True);

        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c, Is.EqualTo(new MagazineCounters(2, 1, 0, 1, 0)));
        Assert.That(ownerSet->Pending >> 32, Is.EqualTo(1), "one claim ran the merged request");
        owner.Release();
    }

    [Test]
    public void RegisteredDrainWork_DrainsOnlyItsKinds_AndCallbacksRunOncePerClaim()
    {
        using var rig = new CacheRig(kinds: 2);
        uint kind1Only = rig.Registry.RegisterDrainWork(1);
        int calls = 0;
        uint callback = rig.Registry.RegisterWork(_ => Interlocked.Increment(ref calls));
        using var owner = new ParkedOwner(rig, inside: false, (0, 5), (1, 5));
        MagazineSet* ownerSet = owner.Set;

        Assert.That(rig.Registry.DrainAll(kind1Only | callback), Is.True);

        Assert.That(MagazineSet.CountOf(ownerSet, 0), Is.GreaterThan(0), "kind 0 untouched");
        Assert.That(MagazineSet.CountOf(ownerSet, 1), Is.Zero);
        Assert.That(rig.Caches[1].TotalCount, Is.Zero);
        Assert.That(calls, Is.EqualTo(1));
        MagazineCounters c = rig.AssertCounterIdentity();
        Assert.That(c.Requests, Is.EqualTo(2), "two bits to one set");
        owner.Release();
    }

    [Test]
    public void FlushCurrentThread_ReturnsItsItemsAndUnregisters()
    {
        using var rig = new CacheRig();
        var thread = new Thread(() =>
        {
            FillMagazine(rig, kind: 0, count: 6);
            rig.Registry.FlushCurrentThread();
        });
        thread.Start();
        thread.Join();
        Assert.That(rig.Registry.SetCount, Is.Zero);
        rig.Caches[0].DrainAll();
        rig.AssertEverythingInBackends();
    }

    [Test]
    public void Free_OfIsolatedItem_NeverEntersAMagazine()
    {
        using var rig = new CacheRig();
        MagazineSet* set = rig.Registry.Current;
        Assert.That(rig.Registry.TryAllocate(0, out nint item), Is.True);
        rig.Backends[0].Isolate(item);
        int before = MagazineSet.CountOf(set, 0);
        rig.Registry.Free(0, item);
        Assert.That(MagazineSet.CountOf(set, 0), Is.EqualTo(before));
        Assert.That(rig.Backends[0].Holds(item), Is.True);
    }

    /// <summary>
    /// A thread that fills its magazines, then parks (outside the allocator, or inside one
    /// scope when <c>inside</c>) until released; its set stays registered meanwhile.
    /// </summary>
    private sealed unsafe class ParkedOwner : IDisposable
    {
        private readonly ManualResetEventSlim _parked = new();
        private readonly ManualResetEventSlim _release = new();
        private readonly Thread _thread;
        private MagazineSet* _set;

        public ParkedOwner(CacheRig rig, bool inside, params (int Kind, int Count)[] fills)
        {
            _thread = new Thread(() =>
            {
                foreach (var (kind, count) in fills)
                    FillMagazine(rig, kind, count);
                _set = rig.Registry.Current;
                if (inside)
                {
                    using MagazineScope scope = rig.Registry.EnterScope();
                    Park();
                }
                else
                {
                    Park();
                }
            });
            _thread.Start();
            _parked.Wait();
        }

        public MagazineSet* Set => _set;

        /// <summary>Lets the owner leave (its scope too, if inside) and waits for the thread to end.</summary>
        public void Release()
        {
            _release.Set();
            _thread.Join();
        }

        public void Dispose()
        {
            Release();
            _parked.Dispose();
            _release.Dispose();
        }

        private void Park()
        {
            _parked.Set();
            _release.Wait();
        }
    }


    /// <summary>Allocates <paramref name="count"/> items then frees them, leaving some in the caller's magazine.</summary>
    internal static void FillMagazine(CacheRig rig, int kind, int count)
    {
        var items = new nint[count];
        for (int i = 0; i < count; i++)
        {
            Assert.That(rig.Registry.TryAllocate(kind, out items[i]), Is.True);
        }

        foreach (nint item in items)
        {
            rig.Registry.Free(kind, item);
        }
    }
}
