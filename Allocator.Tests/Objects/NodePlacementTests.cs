using Numalloc.Zonelists;
using static Numalloc.Tests.Objects.ObjectTestSupport;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests.Objects;

/// <summary>NodeOf answers the node the policy chose, for small, large and huge allocations, on a simulated 4-node heap.</summary>
[NonParallelizable]
public sealed unsafe class NodePlacementTests
{
    private const nuint Small = 200, Large = 100_000, Huge = 5 * 1024 * 1024;
    private static readonly nuint[] s_sizes = [Small, Large, Huge];

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

    // Runs on a thread of node cpuNode's first CPU under policy, and flushes the thread's caches after.
    private void Run(int cpuNode, MemoryPolicy policy, Action body) =>
        RunOnCpu(CpuOf(_allocator, cpuNode), () =>
        {
            PageAllocator.ThreadPolicy = policy;
            try
            {
                body();
            }
            finally
            {
                PageAllocator.ThreadPolicy = MemoryPolicy.Local;
                _allocator.FlushCurrentThread();
            }
        });

    private void AssertPlaced(nuint size, int expected, string what)
    {
        // Several, so a magazine refill, a per-CPU cache and a fresh slab all get their turn.
        var blocks = new List<nint>();
        for (int i = 0; i < (size == Small ? 300 : 3); i++)
        {
            void* p = _allocator.Allocate(size);
            blocks.Add((nint)p);
            Assert.That(_allocator.NodeOf(p), Is.EqualTo(expected), $"{what}: size {size}, allocation {i}");
        }
        foreach (nint p in blocks)
            _allocator.Free((void*)p);
    }

    [Test]
    public void Local_PlacesEveryKind_OnTheThreadsNode([Values(0, 1, 2, 3)] int node)
    {
        Run(node, MemoryPolicy.Local, () =>
        {
            foreach (nuint size in s_sizes)
                AssertPlaced(size, node, "local");
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Preferred_PlacesEveryKind_OnThePreferredNode([Values(0, 2, 3)] int preferred)
    {
        Run(1, MemoryPolicy.Preferred(preferred), () =>
        {
            foreach (nuint size in s_sizes)
                AssertPlaced(size, preferred, $"preferred({preferred}) from node 1");
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Bind_PlacesEveryKind_OnTheNearestNodeOfItsSet()
    {
        // From node 0 with equal remote distances, the nearest of {2, 3} is the lower id, as the kernel's zonelist order.
        Run(0, MemoryPolicy.Bind(2, 3), () =>
        {
            foreach (nuint size in s_sizes)
                AssertPlaced(size, 2, "bind(2,3) from node 0");
        });
        Run(3, MemoryPolicy.Bind(1, 3), () =>
        {
            foreach (nuint size in s_sizes)
                AssertPlaced(size, 3, "bind(1,3) from node 3: the local node is in the set");
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Interleave_RoundRobinsEveryKind_OverItsSet()
    {
        Run(0, MemoryPolicy.Interleave(1, 3), () =>
        {
            foreach (nuint size in s_sizes)
            {
                var nodes = new List<int>();
                var blocks = new List<nint>();
                for (int i = 0; i < 6; i++)
                {
                    void* p = _allocator.Allocate(size);
                    blocks.Add((nint)p);
                    nodes.Add(_allocator.NodeOf(p));
                }
                Assert.That(nodes.Distinct().Order(), Is.EqualTo(new[] { 1, 3 }), $"size {size}: only the set's nodes");
                for (int i = 1; i < nodes.Count; i++)
                    Assert.That(nodes[i], Is.Not.EqualTo(nodes[i - 1]), $"size {size}: consecutive allocations alternate ({string.Join(",", nodes)})");
                foreach (nint p in blocks)
                    _allocator.Free((void*)p);
            }
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void AllocateOnNode_PlacesEveryKind_OnThatNode_WhateverThePolicy()
    {
        Run(0, MemoryPolicy.Preferred(1), () =>
        {
            for (int node = 0; node < 4; node++)
            {
                foreach (nuint size in s_sizes)
                {
                    void* p = _allocator.AllocateOnNode(size, node);
                    Assert.That(_allocator.NodeOf(p), Is.EqualTo(node), $"size {size}");
                    Assert.That(_allocator.UsableSize(p), Is.GreaterThanOrEqualTo(size));
                    _allocator.Free(p);
                }
                Span<double> span = _allocator.AllocateSpanOnNode<double>(1000, node);
                Assert.That(_allocator.NodeOf(Unsafe.AsPointer(ref span[0])), Is.EqualTo(node));
                _allocator.Free(span);
            }
        });
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void AHeapFromTheConfigStringSim4_PlacesEveryKindOnTheThreadsNode()
    {
        using NumaAllocator fromConfig = NumaAllocator.Create(ConfigParser.Parse("topology=sim:4;normal=8M;movable=0;block=4M"));
        Assert.That(fromConfig.NodeCount, Is.EqualTo(4));
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(CpuOf(fromConfig, n), () =>
            {
                foreach (nuint size in s_sizes)
                {
                    void* p = fromConfig.Allocate(size);
                    Assert.That(fromConfig.NodeOf(p), Is.EqualTo(n), $"size {size}");
                    fromConfig.Free(p);
                }
                fromConfig.FlushCurrentThread();
            });
        }
    }

    [Test]
    public void AllocateOnNode_IsStrict_WhenTheNodeIsFull_ItFailsRatherThanFallBack()
    {
        using NumaAllocator small = Create(nodes: 2, normalMiB: 4, normalMaxMiB: 4);
        var held = new List<nint>();
        void* p;
        while ((p = small.TryAllocateOnNode(30_000, 1)) != null)
        {
            Assert.That(small.NodeOf(p), Is.EqualTo(1));
            held.Add((nint)p);
        }
        Assert.That(held, Is.Not.Empty);
        Assert.Throws<OutOfMemoryException>(() => small.AllocateOnNode(30_000, 1));
        // Without the node restriction, the same request falls back to node 0.
        RunOnCpu(CpuOf(small, 1), () =>
        {
            void* q = small.Allocate(30_000);
            Assert.That(small.NodeOf(q), Is.Zero, "local allocation falls back by distance");
            small.Free(q);
            small.FlushCurrentThread();
        });
        foreach (nint q in held)
            small.Free((void*)q);
    }
}
