using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Tests.Hotplug;

namespace Numalloc.Tests.Movable;

/// <summary>Movable buffers: placement, pins, frees and the handle state machine of handle.pml.</summary>
[NonParallelizable]
public sealed unsafe class MovableHeapTests
{
    private static int HeadPage(HotplugRig rig, MovableBuffer buffer)
    {
        using MovablePin pin = buffer.Pin();
        return rig.Heap.Layout.PageOf((void*)pin.Address);
    }

    private static PageLocation Where(HotplugRig rig, MovableBuffer buffer)
    {
        using MovablePin pin = buffer.Pin();
        Assert.That(rig.Heap.TryLocate((void*)pin.Address, out PageLocation where), Is.True);
        return where;
    }

    [Test]
    public void Buffers_PreferTheMovableZone_AndFallBackToNormalWhenItIsFull()
    {
        using var rig = new HotplugRig(nodes: 1, normalMiB: 8, normalMaxMiB: 8, movableMiB: 4, movableMaxMiB: 4);
        var buffers = new List<MovableBuffer>();
        for (int i = 0; i < 20; i++) // 5 MiB: more than the 4 MiB Movable zone
            buffers.Add(rig.Movable.Allocate(256 * 1024, node: 0)!);
        Assert.That(Where(rig, buffers[0]).Zone, Is.EqualTo(ZoneType.Movable));
        Assert.That(buffers.Select(b => Where(rig, b).Zone), Does.Contain(ZoneType.Normal), "a full Movable zone falls back to Normal");
        foreach (MovableBuffer b in buffers)
            b.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void Pins_Nest_AndFreeOfAPinnedBuffer_IsRefusedWithNothingChanged()
    {
        using var rig = new HotplugRig(nodes: 1);
        MovableBuffer buffer = rig.Movable.Allocate(10_000)!;
        Assert.That(buffer.Handle, Is.Not.Zero);
        HotplugRig.Fill(buffer, 3);
        using (MovablePin outer = buffer.Pin())
        {
            using (MovablePin inner = buffer.Pin())
            {
                Assert.That(inner.Address, Is.EqualTo(outer.Address));
                Assert.That(rig.Movable.Inspect(buffer.Handle).Pins, Is.EqualTo(2));
                Assert.That(outer.Span.Length, Is.EqualTo(10_000));
            }
            Assert.That(rig.Movable.Inspect(buffer.Handle).Pins, Is.EqualTo(1));
            var e = Assert.Throws<InvalidOperationException>(buffer.Free);
            Assert.That(e!.Message, Does.Contain("pinned"));
            Assert.That(rig.Movable.Inspect(buffer.Handle), Is.EqualTo((HandleState.Normal, 1, false)));
        }
        Assert.That(HotplugRig.Holds(buffer, 3), Is.True);
        buffer.Free();
        Assert.That(buffer.IsFreed, Is.True);
        Assert.Throws<ObjectDisposedException>(buffer.Free, "double free");
        Assert.Throws<ObjectDisposedException>(() => buffer.Pin(), "pin after free");
        rig.AssertReconciled();
    }

    [Test]
    public void AStaleHandle_IsRefused_AndNeverReachesTheBufferThatReusedItsSlot()
    {
        using var rig = new HotplugRig(nodes: 1);
        MovableBuffer first = rig.Movable.Allocate(4096)!;
        first.Free();
        MovableBuffer second = rig.Movable.Allocate(4096)!;
        Assert.That((uint)second.Handle, Is.EqualTo((uint)first.Handle), "the slot was reused");
        Assert.That(second.Handle, Is.Not.EqualTo(first.Handle), "with the next generation");
        Assert.Throws<ObjectDisposedException>(first.Free);
        Assert.Throws<ObjectDisposedException>(() => first.Pin());
        Assert.That(second.IsFreed, Is.False);
        Assert.Throws<ArgumentException>(() => rig.Movable.Pin(0));
        Assert.Throws<InvalidOperationException>(() => rig.Movable.Unpin(second.Handle), "unpin of an unpinned buffer");
        second.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void BadSizes_AreRefusedClearly()
    {
        using var rig = new HotplugRig(nodes: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Movable.Allocate(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Movable.Allocate(MovableHeap.MaxSizeBytes + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Movable.Allocate(64, node: 7));
        rig.AssertReconciled();
    }

    [Test]
    public void MigrateOne_MovesAnUnpinnedBufferToTheNearestOtherNode_WithItsContents()
    {
        using var rig = new HotplugRig(nodes: 2);
        MovableBuffer buffer = rig.Movable.Allocate(3 * 4096 + 5, node: 0)!;
        HotplugRig.Fill(buffer, 11);
        int page = HeadPage(rig, buffer);
        Assert.That(rig.Movable.MigrateOne((int)(uint)buffer.Handle - 1, page), Is.EqualTo(MigrationOutcome.Migrated));
        Assert.That(rig.Movable.NodeOf(buffer.Handle), Is.EqualTo(1));
        Assert.That(HotplugRig.Holds(buffer, 11), Is.True);
        Assert.That(rig.Movable.Inspect(buffer.Handle), Is.EqualTo((HandleState.Normal, 0, false)));
        Assert.That(rig.Movable.Stats.PagesMigrated, Is.EqualTo(4));
        buffer.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void MigrateOne_OfAPinnedBuffer_RollsBackToNormalAfterTheWindow_KeepingThePin()
    {
        using var rig = new HotplugRig(nodes: 2);
        MovableBuffer buffer = rig.Movable.Allocate(4096, node: 0)!;
        int page = HeadPage(rig, buffer);
        using (MovablePin pin = buffer.Pin())
        {
            Assert.That(rig.Movable.MigrateOne((int)(uint)buffer.Handle - 1, page), Is.EqualTo(MigrationOutcome.Pinned));
            Assert.That(rig.Movable.Inspect(buffer.Handle), Is.EqualTo((HandleState.Normal, 1, false)));
            Assert.That(rig.Heap.Layout.PageOf((void*)pin.Address), Is.EqualTo(page), "a pinned buffer never moves");
        }
        Assert.That(rig.Movable.MigrateOne((int)(uint)buffer.Handle - 1, page), Is.EqualTo(MigrationOutcome.Migrated));
        buffer.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void AFreeDuringTheCopy_OnlySetsFreeRequested_AndTheMigratorCompletesIt()
    {
        using var rig = new HotplugRig(nodes: 2);
        MovableBuffer buffer = rig.Movable.Allocate(8192, node: 0)!;
        MovableBuffer neighbour = rig.Movable.Allocate(8192, node: 1)!;
        HotplugRig.Fill(neighbour, 77);
        int page = HeadPage(rig, buffer);
        (HandleState, int, bool) seen = default;
        rig.Movable.TestHookWhileMigrating = _ =>
        {
            buffer.Free();
            seen = rig.Movable.Inspect(buffer.Handle);
        };
        Assert.That(rig.Movable.MigrateOne((int)(uint)buffer.Handle - 1, page), Is.EqualTo(MigrationOutcome.Gone));
        rig.Movable.TestHookWhileMigrating = null;
        Assert.That(seen, Is.EqualTo((HandleState.Migrating, 0, true)), "the free only flagged the buffer");
        Assert.That(buffer.IsFreed, Is.True);
        Assert.That(rig.Movable.Stats.FreesCompletedByMigrator, Is.EqualTo(1));
        Assert.That(HotplugRig.Holds(neighbour, 77), Is.True, "no foreign write");
        // The slot is reused at the next generation; the stale handle cannot reach it.
        MovableBuffer next = rig.Movable.Allocate(4096)!;
        Assert.Throws<ObjectDisposedException>(buffer.Free);
        next.Free();
        neighbour.Free();
        rig.AssertReconciled();
    }

    [Test]
    public void ANestedPin_OfABufferBeingMigrated_WaitsOutTheWindow_AndTheMigrationCompletesLater()
    {
        using var rig = new HotplugRig(nodes: 2);
        MovableBuffer buffer = rig.Movable.Allocate(4096, node: 0)!;
        HotplugRig.Fill(buffer, 5);
        int page = HeadPage(rig, buffer);
        int slot = (int)(uint)buffer.Handle - 1;
        rig.Movable.MigratePendingWindowTicks = System.Diagnostics.Stopwatch.Frequency / 5; // 200 ms: the nested pin meets it
        var outerHeld = new ManualResetEventSlim();
        var migrationPending = new ManualResetEventSlim();
        bool ok = true;
        var holder = new Thread(() =>
        {
            using MovablePin outer = buffer.Pin();
            outerHeld.Set();
            migrationPending.Wait();
            using MovablePin inner = buffer.Pin(); // waits while MigratePending; the window rolls back
            ok = inner.Address == outer.Address;
        });
        holder.Start();
        outerHeld.Wait();
        var migrator = new Thread(() =>
        {
            var outcomes = new List<MigrationOutcome>();
            MigrationOutcome outcome;
            long lastWord = 0, rolledBackAt = 0;
            do
            {
                // The retry rule (the controller's): only after the word changed (the holder moved on) or
                // another window passed, never back to back. The time bound matters: the holder may finish
                // between MigrateOne's return and the read of the word below, and then never change it again.
                while (outcomes.Count > 0 && rig.Movable.WordOf(slot) == lastWord
                       && System.Diagnostics.Stopwatch.GetTimestamp() - rolledBackAt < rig.Movable.MigratePendingWindowTicks)
                    Thread.Yield();
                outcome = rig.Movable.MigrateOne(slot, page);
                lastWord = rig.Movable.WordOf(slot);
                rolledBackAt = System.Diagnostics.Stopwatch.GetTimestamp();
                outcomes.Add(outcome);
            }
            while (outcome != MigrationOutcome.Migrated);
        });
        migrator.Start();
        // Until the migration is pending (or, on a starved box, its first window already closed).
        while (rig.Movable.Inspect(buffer.Handle).State != HandleState.MigratePending && rig.Movable.Stats.PinnedRollbacks == 0)
            Thread.Yield();
        migrationPending.Set();
        holder.Join();
        migrator.Join();
        Assert.That(ok, Is.True, "nested pins see one address");
        Assert.That(rig.Movable.NodeOf(buffer.Handle), Is.EqualTo(1));
        Assert.That(HotplugRig.Holds(buffer, 5), Is.True);
        buffer.Free();
        rig.AssertReconciled();
    }

    [Test, Category("Stress")]
    public void CrossedPinsAndContinuousPinning_AgainstMigrations_NeverDeadlockOrWriteForeignMemory()
    {
        const int Iterations = 300;
        using var rig = new HotplugRig(nodes: 2);
        MovableBuffer a = rig.Movable.Allocate(4096, node: 0)!;
        MovableBuffer b = rig.Movable.Allocate(4096, node: 0)!;
        HotplugRig.Fill(a, 1);
        HotplugRig.Fill(b, 2);
        int failures = 0;
        int done = 0;
        var start = new Barrier(3);
        void Crossing(MovableBuffer first, MovableBuffer second, int firstSeed, int secondSeed)
        {
            start.SignalAndWait();
            for (int i = 0; i < Iterations; i++)
            {
                using MovablePin p1 = first.Pin();
                using MovablePin p2 = second.Pin();
                Thread.Yield(); // hold the crossed pins a while: the migrator meets them
                using MovablePin nested = first.Pin();
                if (p1.Span[100] != (byte)(firstSeed + 700) || p2.Span[100] != (byte)(secondSeed + 700) || nested.Address != p1.Address)
                    Interlocked.Increment(ref failures);
            }
            Interlocked.Increment(ref done);
        }
        var t1 = new Thread(() => Crossing(a, b, 1, 2));
        var t2 = new Thread(() => Crossing(b, a, 2, 1));
        int migrations = 0;
        var migrator = new Thread(() =>
        {
            var last = new long[2];
            start.SignalAndWait();
            while (Volatile.Read(ref done) < 2)
            {
                foreach ((MovableBuffer buf, int i) in new[] { (a, 0), (b, 1) })
                {
                    int slot = (int)(uint)buf.Handle - 1;
                    if (rig.Movable.WordOf(slot) == last[i])
                    {
                        Thread.Yield();
                        continue;
                    }
                    int page;
                    using (MovablePin pin = buf.Pin())
                        page = rig.Heap.Layout.PageOf((void*)pin.Address);
                    if (rig.Movable.MigrateOne(slot, page) == MigrationOutcome.Migrated)
                        migrations++;
                    last[i] = rig.Movable.WordOf(slot);
                }
            }
        });
        t1.Start();
        t2.Start();
        migrator.Start();
        t1.Join();
        t2.Join();
        migrator.Join();
        // With the pin holders gone, each migration completes at the first try.
        foreach (MovableBuffer buf in new[] { a, b })
            Assert.That(rig.Movable.MigrateOne((int)(uint)buf.Handle - 1, HeadPage(rig, buf)), Is.EqualTo(MigrationOutcome.Migrated));
        Assert.That(failures, Is.Zero, "pinned contents and addresses stable");
        Assert.That(HotplugRig.Holds(a, 1) && HotplugRig.Holds(b, 2), Is.True);
        TestContext.Out.WriteLine($"migrations during the crossing: {migrations}, pin rollbacks: {rig.Movable.Stats.PinnedRollbacks}");
        a.Free();
        b.Free();
        rig.AssertReconciled();
    }

    [Test, Category("Stress")]
    public void FreesRacingMigrations_FreeEachBufferExactlyOnce()
    {
        const int Buffers = 400;
        using var rig = new HotplugRig(nodes: 2);
        var buffers = new MovableBuffer[Buffers];
        var pages = new int[Buffers];
        for (int i = 0; i < Buffers; i++)
        {
            buffers[i] = rig.Movable.Allocate(4096, node: 0)!;
            pages[i] = HeadPage(rig, buffers[i]);
        }
        var go = new Barrier(2);
        var freer = new Thread(() =>
        {
            go.SignalAndWait();
            for (int i = Buffers - 1; i >= 0; i--) // from the other end: the two meet in the middle
                buffers[i].Free();
        });
        freer.Start();
        go.SignalAndWait();
        var outcomes = new int[4];
        for (int i = 0; i < Buffers; i++)
            outcomes[(int)rig.Movable.MigrateOne((int)(uint)buffers[i].Handle - 1, pages[i])]++;
        freer.Join();
        Assert.That(buffers.All(b => b.IsFreed), Is.True);
        Assert.That(outcomes[(int)MigrationOutcome.Migrated] + outcomes[(int)MigrationOutcome.Gone], Is.EqualTo(Buffers));
        TestContext.Out.WriteLine($"migrated {outcomes[0]}, gone {outcomes[1]}, completed by migrator {rig.Movable.Stats.FreesCompletedByMigrator}");
        rig.AssertReconciled();
    }
}
