using Numalloc.Caches;
using Numalloc.Objects;
using Numalloc.Platform;
using static Numalloc.Tests.Objects.ObjectTestSupport;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Objects;

/// <summary>A thread set to a CPU of node k gets node-k memory from the fast path, also after it is moved.</summary>
[NonParallelizable]
public sealed unsafe class VirtualCpuLocalityTests
{
    private NumaAllocator _allocator = null!;
    private long[] _initialFree = null!;

    [SetUp]
    public void SetUp()
    {
        _allocator = Create(nodes: 4, normalMiB: 8, normalMaxMiB: 32);
        _initialFree = FreePages(_allocator);
    }

    [TearDown]
    public void TearDown() => _allocator.Dispose();

    [Test]
    public void AThreadOnACpuOfNodeK_GetsNodeKObjects_FromTheFastPath([Values(0, 1, 2, 3)] int node)
    {
        RunOnCpu(CpuOf(_allocator, node), () =>
        {
            // Warm: the magazine fills from node k's per-CPU cache; then the pairs run on the fast path.
            for (int round = 0; round < 3; round++)
            {
                var held = new List<nint>();
                for (int i = 0; i < 500; i++)
                {
                    void* p = _allocator.Allocate((nuint)(16 + (i % 7) * 48));
                    Assert.That(_allocator.NodeOf(p), Is.EqualTo(node), $"round {round}, object {i}");
                    held.Add((nint)p);
                }
                foreach (nint p in held)
                    _allocator.Free((void*)p);
            }
            void* fast = _allocator.Heap.TryAllocateSmallFast(MagazineRegistry.ThreadSet, 64);
            Assert.That(fast != null, Is.True, "the fast path serves it");
            Assert.That(_allocator.NodeOf(fast), Is.EqualTo(node));
            _allocator.Free(fast);
            _allocator.FlushCurrentThread();
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void TheFastPath_ServesTheAllocationThatRunsItsHomeCheck_AndRestartsTheCountdown()
    {
        RunOnCpu(CpuOf(_allocator, 2), () =>
        {
            // Through the slow path once: the thread's set, its home, objects in the 64 B magazine.
            var held = new List<nint>();
            for (int i = 0; i < 40; i++)
                held.Add((nint)_allocator.Allocate(64));
            foreach (nint p in held)
                _allocator.Free((void*)p);

            MagazineSet* set = MagazineRegistry.ThreadSet;
            for (int i = 0; i < 3 * ObjectHeap.HomeCheckInterval; i++)
            {
                int before = set->OpsUntilHomeCheck;
                void* p = _allocator.Heap.TryAllocateSmallFast(set, 64);
                Assert.That(p != null, Is.True, $"allocation {i} (countdown {before}) from the fast path");
                // At 0 the check runs (the thread did not move), restarts the countdown and pops.
                Assert.That(set->OpsUntilHomeCheck, Is.EqualTo(before > 0 ? before - 1 : ObjectHeap.HomeCheckInterval), $"allocation {i}");
                Assert.That(_allocator.NodeOf(p), Is.EqualTo(2));
                _allocator.Free(p);
            }
            _allocator.FlushCurrentThread();
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void AThreadMovedToAnotherNodesCpu_GetsTheNewNodesObjects_AfterAtMostOneHomeCheck()
    {
        RunOnCpu(CpuOf(_allocator, 1), () =>
        {
            var fromNode1 = new List<nint>();
            for (int i = 0; i < 200; i++)
                fromNode1.Add((nint)_allocator.Allocate(64));
            Assert.That(fromNode1.Select(p => _allocator.NodeOf((void*)p)), Has.All.EqualTo(1));
            // Park some node-1 objects in the magazine: they must not be handed out once the thread moved.
            foreach (nint p in fromNode1.Take(50))
                _allocator.Free((void*)p);

            VirtualCpu.Set(CpuOf(_allocator, 3));
            // The magazine re-checks its node at the latest after HomeCheckInterval operations (or at a refill).
            int stale = 0;
            var fromNode3 = new List<nint>();
            for (int i = 0; i < 400; i++)
            {
                void* p = _allocator.Allocate(64);
                if (_allocator.NodeOf(p) != 3)
                {
                    Assert.That(i, Is.LessThan(ObjectHeap.HomeCheckInterval), "only before the first home check");
                    stale++;
                }
                fromNode3.Add((nint)p);
            }
            TestContext.Out.WriteLine($"{stale} allocations before the magazine noticed the move");
            Assert.That(fromNode3.Skip(ObjectHeap.HomeCheckInterval).Select(p => _allocator.NodeOf((void*)p)), Has.All.EqualTo(3));

            // Node-1 objects freed on node 3 go back to node 1, not into this thread's (node-3) magazine.
            foreach (nint p in fromNode1.Skip(50))
                _allocator.Free((void*)p);
            for (int i = 0; i < 300; i++)
            {
                void* p = _allocator.Allocate(64);
                Assert.That(_allocator.NodeOf(p), Is.EqualTo(3), "node-1 objects never come back out on node 3");
                fromNode3.Add((nint)p);
            }
            foreach (nint p in fromNode3)
                _allocator.Free((void*)p);
            _allocator.FlushCurrentThread();
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void PerCpuCaches_HoldOnlyTheirNodesObjects_AfterCrossNodeFrees()
    {
        // Producers on every node, consumers freeing on other nodes: then look inside every per-CPU cache.
        var handoff = new List<nint>[4];
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(CpuOf(_allocator, n), () =>
            {
                handoff[n] = [];
                for (int i = 0; i < 2000; i++)
                    handoff[n].Add((nint)_allocator.Allocate((nuint)(8 + (i % 20) * 8)));
                _allocator.FlushCurrentThread();
            });
        }
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(CpuOf(_allocator, (n + 1) % 4), () =>
            {
                foreach (nint p in handoff[n])
                    _allocator.Free((void*)p);
                _allocator.FlushCurrentThread();
            });
        }

        ObjectHeap heap = _allocator.Heap;
        int checkedItems = 0;
        for (int sizeClass = 0; sizeClass < ObjectClassTable.Count; sizeClass++)
        {
            CpuCacheSet caches = heap.CpuCaches(sizeClass);
            for (int cpu = 0; cpu < caches.CpuCount; cpu++)
            {
                CpuCache* cache = caches.At(cpu);
                int expected = heap.Topology.NodeOfCpu(cpu);
                for (int i = 0; i < cache->Count; i++)
                {
                    Assert.That(_allocator.NodeOf((void*)CpuCache.Items(cache)[i]), Is.EqualTo(expected), $"class {sizeClass}, cpu {cpu}");
                    checkedItems++;
                }
            }
        }
        Assert.That(checkedItems, Is.GreaterThan(0), "the frees reached per-CPU caches");
        AssertReconciled(_allocator, _initialFree);
    }
}
