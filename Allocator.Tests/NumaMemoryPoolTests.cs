using System.Buffers;
using System.Collections.Concurrent;
using Numalloc.Platform;
using static Numalloc.Tests.Objects.ObjectTestSupport;
using static Numalloc.Tests.Platform.VirtualCpuThreads;

namespace Numalloc.Tests;

/// <summary>The MemoryPool adapter: node-local buffers, freed exactly once, from any thread.</summary>
[NonParallelizable]
public sealed unsafe class NumaMemoryPoolTests
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

    private static void* AddressOf(IMemoryOwner<byte> owner) => Unsafe.AsPointer(ref owner.Memory.Span[0]);

    [Test]
    public void Rent_GivesAtLeastTheSize_AsWritableMemory()
    {
        using var pool = new NumaMemoryPool(_allocator);
        foreach (int size in new[] { -1, 0, 1, 100, 4096, 50_000, 5 << 20 })
        {
            using IMemoryOwner<byte> owner = pool.Rent(size);
            Assert.That(owner.Memory.Length, Is.GreaterThanOrEqualTo(size == -1 ? NumaMemoryPool.DefaultBufferSize : size));
            owner.Memory.Span.Fill(0xAB);
            using MemoryHandle handle = owner.Memory.Pin();
            Assert.That(handle.Pointer == AddressOf(owner), Is.True, "native memory: the pin is the buffer itself");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(-2));
        Assert.That(pool.MaxBufferSize, Is.EqualTo(int.MaxValue));
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void DisposingAnOwnerTwice_FreesItOnce_AndTheBufferIsGoneAfterwards()
    {
        using var pool = new NumaMemoryPool(_allocator);
        IMemoryOwner<byte> owner = pool.Rent(64);
        Memory<byte> memory = owner.Memory;
        owner.Dispose();
        owner.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = memory.Span);
        Assert.That(_allocator.Heap.BadFrees, Is.Zero, "the second dispose did not free again");
        // Racing disposals from many threads: exactly one frees.
        for (int round = 0; round < 200; round++)
        {
            IMemoryOwner<byte> shared = pool.Rent(100);
            Parallel.For(0, 4, _ => shared.Dispose());
        }
        Assert.That(_allocator.Heap.BadFrees + _allocator.Heap.Slabs.DoubleFrees, Is.Zero);
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void Buffers_AreOnTheRentingThreadsNode_OrThePoolsNode()
    {
        using var local = new NumaMemoryPool(_allocator);
        for (int node = 0; node < 4; node++)
        {
            int n = node;
            RunOnCpu(CpuOf(_allocator, n), () =>
            {
                foreach (int size in new[] { 32, 3000, 100_000 })
                {
                    using IMemoryOwner<byte> owner = local.Rent(size);
                    Assert.That(_allocator.NodeOf(AddressOf(owner)), Is.EqualTo(n), $"size {size} on node {n}");
                }
                _allocator.FlushCurrentThread();
            });
        }
        using var onTwo = new NumaMemoryPool(_allocator, node: 2);
        Assert.That(onTwo.Node, Is.EqualTo(2));
        using (IMemoryOwner<byte> owner = onTwo.Rent(500))
            Assert.That(_allocator.NodeOf(AddressOf(owner)), Is.EqualTo(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new NumaMemoryPool(_allocator, node: 4));
        AssertReconciled(_allocator, _initialFree);
    }

    [Test]
    public void ADisposedPool_RefusesRents_ButItsBuffersStayValidUntilReturned()
    {
        var pool = new NumaMemoryPool(_allocator);
        IMemoryOwner<byte> owner = pool.Rent(256);
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.Rent(10));
        owner.Memory.Span.Fill(1);
        owner.Dispose();
        AssertReconciled(_allocator, _initialFree);
    }

    [Test, Category("Stress"), CancelAfter(120_000)]
    public void ManyThreads_RentAndReturnAcrossThreads_AndEverythingReconciles(CancellationToken token)
    {
        // Room for the whole hand-off queue without growth, so the free pages must come back exactly.
        _allocator.Dispose();
        _allocator = Create(nodes: 4, normalMiB: 48, normalMaxMiB: 48);
        _initialFree = FreePages(_allocator);
        using var pool = new NumaMemoryPool(_allocator);
        var handoff = new BlockingCollection<(IMemoryOwner<byte> Owner, byte Tag)>(1024);
        int threads = Math.Max(4, Environment.ProcessorCount);
        var renters = Enumerable.Range(0, threads).Select(id => new Thread(() =>
        {
            VirtualCpu.Set(CpuOf(_allocator, id % 4));
            var random = new Random(id);
            for (int i = 0; i < 20_000 && !token.IsCancellationRequested; i++)
            {
                IMemoryOwner<byte> owner = pool.Rent(random.Next(1, 20_000));
                byte tag = (byte)(id + i);
                owner.Memory.Span.Fill(tag);
                if (i % 2 == 0)
                {
                    handoff.Add((owner, tag), token);
                }
                else
                {
                    Assert.That(owner.Memory.Span.IndexOfAnyExcept(tag), Is.EqualTo(-1));
                    owner.Dispose();
                }
            }
            VirtualCpu.Clear();
        })).ToArray();
        var returners = Enumerable.Range(0, threads).Select(id => new Thread(() =>
        {
            VirtualCpu.Set(CpuOf(_allocator, (id + 2) % 4));
            foreach ((IMemoryOwner<byte> owner, byte tag) in handoff.GetConsumingEnumerable(token))
            {
                Assert.That(owner.Memory.Span.IndexOfAnyExcept(tag), Is.EqualTo(-1), "the buffer kept its contents");
                owner.Dispose();
                owner.Dispose();
            }
            VirtualCpu.Clear();
        })).ToArray();
        foreach (Thread t in renters.Concat(returners))
            t.Start();
        foreach (Thread t in renters)
            t.Join();
        handoff.CompleteAdding();
        foreach (Thread t in returners)
            t.Join();
        Assert.That(_allocator.Heap.BadFrees + _allocator.Heap.Slabs.DoubleFrees, Is.Zero);
        AssertReconciled(_allocator, _initialFree);
    }
}
