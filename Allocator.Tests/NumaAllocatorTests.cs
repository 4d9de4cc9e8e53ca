using Numalloc.Tests.Objects;
using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests;

/// <summary>The public facade: instances, conventions, zero sizes, typed helpers, disposal.</summary>
[NonParallelizable]
public sealed unsafe class NumaAllocatorTests
{
    [Test]
    public void Shared_IsOneInstance_ThatAllocatesAndFrees_AndIgnoresDispose()
    {
        NumaAllocator shared = NumaAllocator.Shared;
        Assert.That(NumaAllocator.Shared, Is.SameAs(shared));
        Assert.That(shared.Options, Is.EqualTo(AllocatorOptions.FromEnvironment()));
        void* p = shared.Allocate(100);
        Assert.That(shared.NodeOf(p), Is.InRange(0, shared.NodeCount - 1));
        shared.Dispose();
        shared.Free(p);
        void* q = shared.Allocate(100);
        shared.Free(q);
        shared.FlushCurrentThread();
    }

    [Test]
    public void Shared_IsConfiguredFromNumallocConfig_AndABadValueFailsEveryAccess()
    {
        (int exitCode, string output) = Caches.ChildProbe.Run("shared-config", new Dictionary<string, string>
        {
            [AllocatorOptions.EnvironmentVariable] = "topology=sim:4;normal=8M;movable=0;block=4M",
        });
        Assert.That(exitCode, Is.Zero, output);
        Assert.That(output, Does.Contain("nodes=4"));
        Assert.That(output, Does.Contain("placed=0,1,2,3"));

        (exitCode, output) = Caches.ChildProbe.Run("shared-config", new Dictionary<string, string>
        {
            [AllocatorOptions.EnvironmentVariable] = "topology=sim:4;block=3M",
        });
        Assert.That(exitCode, Is.Zero, output);
        Assert.That(output, Does.Contain("ConfigException twice"));
        Assert.That(output, Does.Contain("block"));
    }

    /// <summary>The child side of <see cref="Shared_IsConfiguredFromNumallocConfig_AndABadValueFailsEveryAccess"/>.</summary>
    internal static int RunSharedFromEnvironment()
    {
        int failures = 0;
        for (int i = 0; i < 2; i++)
        {
            try
            {
                NumaAllocator shared = NumaAllocator.Shared;
                Console.WriteLine($"nodes={shared.NodeCount}");
                var placed = new List<int>();
                for (int node = 0; node < shared.NodeCount; node++)
                {
                    void* p = shared.AllocateOnNode(100, node);
                    placed.Add(shared.NodeOf(p));
                    shared.Free(p);
                }
                Console.WriteLine($"placed={string.Join(",", placed)}");
                return 0;
            }
            catch (ConfigException e)
            {
                Console.WriteLine(e.Message);
                failures++;
            }
        }
        Console.WriteLine(failures == 2 ? "ConfigException twice" : $"ConfigException {failures}");
        return 0;
    }

    [Test]
    public void TwoInstancesUsedInTurns_OnOneThread_EachGetsItsOwnPointersBack()
    {
        using NumaAllocator a = Create(nodes: 2);
        using NumaAllocator b = Create(nodes: 2);
        long[] freeA = FreePages(a), freeB = FreePages(b);
        var fromA = new List<nint>();
        var fromB = new List<nint>();
        for (int i = 0; i < 2000; i++)
        {
            fromA.Add((nint)a.Allocate((nuint)(i % 300)));
            fromB.Add((nint)b.Allocate((nuint)(i % 300)));
            fromA.Add((nint)NumaAllocator.Shared.Allocate(24)); // a third, in between
        }
        Assert.That(fromA.Intersect(fromB), Is.Empty);
        Assert.Throws<InvalidOperationException>(() => b.Free((void*)fromA[0]), "a pointer of another instance is not ours");
        for (int i = 0; i < fromB.Count; i++)
        {
            b.Free((void*)fromB[i]);
            a.Free((void*)fromA[2 * i]);
            NumaAllocator.Shared.Free((void*)fromA[(2 * i) + 1]);
        }
        NumaAllocator.Shared.FlushCurrentThread();
        AssertReconciled(a, freeA);
        AssertReconciled(b, freeB);
    }

    [Test]
    public void ZeroSize_GivesAUniqueFreeablePointer_EveryTime()
    {
        using NumaAllocator allocator = Create();
        long[] initial = FreePages(allocator);
        var seen = new HashSet<nint>();
        for (int i = 0; i < 1000; i++)
        {
            void* p = allocator.Allocate(0);
            Assert.That(p != null, Is.True);
            Assert.That(seen.Add((nint)p), Is.True, "unique");
            Assert.That(allocator.UsableSize(p), Is.GreaterThanOrEqualTo((nuint)0));
        }
        void* aligned = allocator.Allocate(0, 4096);
        Assert.That((long)((nuint)aligned % 4096), Is.Zero);
        Span<long> empty = allocator.AllocateSpan<long>(0);
        Assert.That(empty.IsEmpty, Is.True);
        allocator.Free(empty);
        allocator.Free(aligned);
        foreach (nint p in seen)
            allocator.Free((void*)p);
        allocator.Free(null);
        Assert.That(allocator.UsableSize(null), Is.EqualTo((nuint)0));
        Assert.That(allocator.NodeOf(null), Is.EqualTo(-1));
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void TryAllocate_ReturnsNull_WhereAllocateThrowsOutOfMemory()
    {
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 4, normalMaxMiB: 4);
        long[] initial = FreePages(allocator);
        var held = new List<nint>();
        void* p;
        while ((p = allocator.TryAllocate(1000)) != null)
            held.Add((nint)p);
        Assert.That(held.Count, Is.GreaterThan(1000), "the node filled up first");
        Assert.Throws<OutOfMemoryException>(() => allocator.Allocate(1000));
        Assert.That(allocator.TryAllocate(200_000) == null, Is.True, "page runs too");
        Assert.That(allocator.TryAllocateSpan(100, out Span<int> none), Is.False);
        Assert.That(none.IsEmpty, Is.True);
        Assert.That(allocator.TryAllocateOnNode(64, 0) == null, Is.True);
        foreach (nint q in held)
            allocator.Free((void*)q);
        // Once freed, everything is available again.
        Assert.That(allocator.TryAllocateSpan(100, out Span<int> some), Is.True);
        allocator.Free(some);
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void TypedSpans_AreAlignedForTheirType_AndFreedByTheSpan()
    {
        using NumaAllocator allocator = Create(nodes: 2);
        long[] initial = FreePages(allocator);
        Span<Guid> guids = allocator.AllocateSpan<Guid>(33);
        Assert.That(guids.Length, Is.EqualTo(33));
        Assert.That((long)((nuint)Unsafe.AsPointer(ref guids[0]) % 16), Is.Zero, "16-byte elements are 16-byte aligned");
        guids.Fill(Guid.NewGuid());
        Span<System.Numerics.Vector4> vectors = allocator.AllocateSpanOnNode<System.Numerics.Vector4>(100_000, 1);
        Assert.That(allocator.NodeOf(Unsafe.AsPointer(ref vectors[0])), Is.EqualTo(1));
        vectors[^1] = System.Numerics.Vector4.One;
        Span<byte> bytes = allocator.AllocateSpan<byte>(5 << 20);
        bytes[^1] = 7;
        Assert.That(allocator.UsableSize(Unsafe.AsPointer(ref bytes[0])), Is.GreaterThanOrEqualTo((nuint)bytes.Length));
        allocator.Free(guids);
        allocator.Free(vectors);
        allocator.Free(bytes);
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void ADisposedAllocator_RefusesEveryCall_WithObjectDisposedException()
    {
        NumaAllocator allocator = Create();
        void* p = allocator.Allocate(64);
        allocator.Dispose();
        allocator.Dispose(); // twice is harmless
        Assert.Throws<ObjectDisposedException>(() => allocator.Allocate(64));
        Assert.Throws<ObjectDisposedException>(() => allocator.TryAllocate(100_000));
        Assert.Throws<ObjectDisposedException>(() => allocator.Free(p));
        Assert.Throws<ObjectDisposedException>(() => allocator.UsableSize(p));
        Assert.Throws<ObjectDisposedException>(() => allocator.Trim());
        Assert.Throws<ObjectDisposedException>(() => allocator.FlushCurrentThread());
        allocator.Free(null);
    }

    [Test]
    public void Create_RejectsBadOptions_WithConfigException()
    {
        Assert.Throws<ArgumentNullException>(() => NumaAllocator.Create(null!));
        Assert.Throws<ConfigException>(() => NumaAllocator.Create(new AllocatorOptions { BlockBytes = 3 << 20 }));
    }

    [Test]
    public void ThreadsThatExitWithoutFlushing_AreReaped_AsNewThreadsArrive()
    {
        using NumaAllocator allocator = Create(nodes: 1);
        long[] initial = FreePages(allocator);
        for (int i = 0; i < 300; i++)
        {
            var thread = new Thread(() => allocator.Free(allocator.Allocate(64))); // leaves its object in its magazine
            thread.Start();
            thread.Join();
        }
        Assert.That(allocator.Heap.Registry.SetCount, Is.LessThanOrEqualTo(Numalloc.Caches.MagazineRegistry.ReapEverySets),
            "exited threads' magazines do not pile up");
        Assert.That(allocator.Heap.Registry.Counters.SetsReaped, Is.GreaterThanOrEqualTo(300 - Numalloc.Caches.MagazineRegistry.ReapEverySets));
        AssertReconciled(allocator, initial);
    }

    [Test]
    public void Trim_GivesEveryCachedPageBack_WithoutTouchingLiveObjects()
    {
        using NumaAllocator allocator = Create(nodes: 1);
        long[] initial = FreePages(allocator);
        var live = new List<nint>();
        for (int i = 0; i < 5000; i++)
        {
            void* p = allocator.Allocate((nuint)(1 + (i % 2000)));
            ObjectTestSupport.Fill(p, (nuint)(1 + (i % 2000)), (ulong)i);
            if (i % 3 == 0)
                live.Add((nint)p);
            else
                allocator.Free(p);
        }
        allocator.Trim();
        Assert.That(allocator.Heap.Snapshot().Classes.Sum(c => c.ObjectsCached), Is.Zero);
        for (int i = 0; i < live.Count; i++)
        {
            int n = i * 3;
            Assert.That(ObjectTestSupport.Holds((void*)live[i], (nuint)(1 + (n % 2000)), (ulong)n), Is.True);
            allocator.Free((void*)live[i]);
        }
        AssertReconciled(allocator, initial);
    }
}
