using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;

namespace Numalloc.Tests.Hotplug;

/// <summary>Offlines that migrate buffers other threads keep pinning (nested, crossed) and freeing.</summary>
[NonParallelizable]
public sealed unsafe class MigrationRaceTests
{
    [Test, Category("Stress")]
    public void AnOffline_AgainstContinuousNestedAndCrossedPinsAndFrees_CompletesWithinTheTimeout()
    {
        const int Rounds = 6;
        using var rig = new HotplugRig(nodes: 2);
        for (int round = 0; round < Rounds; round++)
        {
            int from = round % 2;
            var buffers = new MovableBuffer[8];
            for (int i = 0; i < buffers.Length; i++)
            {
                buffers[i] = rig.Movable.Allocate(16 * 1024, node: from)!;
                HotplugRig.Fill(buffers[i], i);
            }
            int stop = 0;
            long foreign = 0;
            var threads = new List<Thread>
            {
                // Continuous pin/unpin of buffer 0, with a nested pin each time.
                new(() =>
                {
                    while (Volatile.Read(ref stop) == 0)
                    {
                        using MovablePin outer = buffers[0].Pin();
                        using MovablePin nested = buffers[0].Pin();
                        if (nested.Address != outer.Address || outer.Span[1] != (byte)(0 + 7))
                            Interlocked.Increment(ref foreign);
                    }
                }),
                // Crossed pins of buffers 1 and 2 by two threads.
                new(() => Cross(buffers[1], buffers[2], 1, 2, ref stop, ref foreign)),
                new(() => Cross(buffers[2], buffers[1], 2, 1, ref stop, ref foreign)),
                // Frees racing the migration.
                new(() =>
                {
                    for (int i = 3; i < 6; i++)
                    {
                        Thread.Yield();
                        buffers[i].Free();
                    }
                }),
            };
            foreach (Thread t in threads)
                t.Start();

            HotplugResult result = rig.Hotplug.Offline(HotplugTarget.ZoneOf(from, ZoneType.Movable), timeoutMs: 30_000);

            Volatile.Write(ref stop, 1);
            foreach (Thread t in threads)
                t.Join();
            Assert.That(result.Status, Is.EqualTo(HotplugStatus.Ok), result.Message);
            Assert.That(foreign, Is.Zero, "pinned contents and addresses stayed put");
            for (int i = 0; i < buffers.Length; i++)
            {
                if (i is >= 3 and < 6)
                {
                    Assert.That(buffers[i].IsFreed, Is.True);
                    continue;
                }
                Assert.That(rig.Movable.NodeOf(buffers[i].Handle), Is.EqualTo(1 - from));
                Assert.That(HotplugRig.Holds(buffers[i], i), Is.True, $"buffer {i}");
                buffers[i].Free();
            }
            Assert.That(rig.Hotplug.Online(HotplugTarget.ZoneOf(from, ZoneType.Movable)).IsOk, Is.True);
        }
        rig.AssertReconciled();
    }

    private static void Cross(MovableBuffer first, MovableBuffer second, int firstSeed, int secondSeed, ref int stop, ref long foreign)
    {
        while (Volatile.Read(ref stop) == 0)
        {
            using MovablePin a = first.Pin();
            using MovablePin b = second.Pin();
            if (a.Span[3] != (byte)(firstSeed + 21) || b.Span[3] != (byte)(secondSeed + 21))
                Interlocked.Increment(ref foreign);
        }
    }
}
