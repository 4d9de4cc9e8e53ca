using Numalloc.Bench.Benchmarks;

namespace Numalloc.Tests.Bench;

public sealed class AllocatorCountersTests
{
    [Test]
    public void PerOperation_DividesEachDifferenceByTheOperations()
    {
        var before = new AllocatorCounters(CacheRefills: 10, CacheFlushes: 20, BackendDirect: 0, ZoneAllocations: 5, ZonelistRestarts: 7);
        var after = new AllocatorCounters(CacheRefills: 35, CacheFlushes: 70, BackendDirect: 1, ZoneAllocations: 6, ZonelistRestarts: 7);

        CountersPerOperation perOp = AllocatorCounters.PerOperation(before, after, operations: 100);

        Assert.That(perOp, Is.EqualTo(new CountersPerOperation(0.25, 0.5, 0.01, 0.01, 0)));

        var withObjects = AllocatorCounters.PerOperation(before with { MagazineMisses = 4, CrossNodeFrees = 1 }, after with { MagazineMisses = 6, CrossNodeFrees = 51 }, 100);
        Assert.That((withObjects.MagazineMisses, withObjects.CrossNodeFrees), Is.EqualTo((0.02, 0.5)));
    }

    [Test]
    public void PerOperation_WithNoOperations_Throws()
    {
        Assert.That(() => AllocatorCounters.PerOperation(default, default, 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Measure_ReadsBeforeAndAfterTheRun()
    {
        long refills = 3;
        AllocatorCounters Read() => new(refills, 0, 0, 0, 0);

        CountersPerOperation perOp = AllocatorCounters.Measure(Read, () => refills += 8, operations: 4);

        Assert.That(perOp.CacheRefills, Is.EqualTo(2.0));
    }

    [Test]
    public unsafe void Read_AfterTheFirstAllocationOfAFreshAllocator_SeesARefillAndAZoneAllocation()
    {
        using NumaAllocator allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 16L << 20, MovableBytes = 0 });
        AllocatorCounters before = AllocatorCounters.Read(allocator);

        void* p = allocator.Allocate(64);
        AllocatorCounters after = AllocatorCounters.Read(allocator);
        allocator.Free(p);

        Assert.Multiple(() =>
        {
            Assert.That(after.CacheRefills, Is.GreaterThan(before.CacheRefills), "the empty caches were refilled from a slab");
            Assert.That(after.ZoneAllocations, Is.GreaterThan(before.ZoneAllocations), "the slab's pages came from a zone");
            Assert.That(after.ZonelistRestarts, Is.EqualTo(before.ZonelistRestarts), "nothing rewrote the zonelists");
        });
    }

    [Test]
    public unsafe void Read_CountsAMagazineMiss_AndAFreeOnAnotherNodesCpu_AsRemote()
    {
        using NumaAllocator allocator = NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(2, 2), NormalBytes = 16L << 20, MovableBytes = 0 });
        long misses = -1, remoteFrees = -1;
        Exception? failure = null;
        // A thread of its own: the virtual CPU and the magazines are per thread.
        var thread = new Thread(() =>
        {
            try
            {
                Numalloc.Platform.VirtualCpu.Set(0); // a CPU of node 0
                AllocatorCounters before = AllocatorCounters.Read(allocator);
                void* local = allocator.Allocate(64);
                void* remote = allocator.AllocateOnNode(64, 1);
                AllocatorCounters allocated = AllocatorCounters.Read(allocator);
                allocator.Free(local);
                allocator.Free(remote);
                AllocatorCounters freed = AllocatorCounters.Read(allocator);
                allocator.FlushCurrentThread();
                misses = allocated.MagazineMisses - before.MagazineMisses;
                remoteFrees = freed.CrossNodeFrees - allocated.CrossNodeFrees;
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                Numalloc.Platform.VirtualCpu.Clear();
            }
        });
        thread.Start();
        thread.Join();
        Assert.That(failure, Is.Null);
        Assert.Multiple(() =>
        {
            Assert.That(misses, Is.EqualTo(1), "the first allocation found the magazine empty; the one bound to node 1 does not use it");
            Assert.That(remoteFrees, Is.EqualTo(1), "node 1's object freed on node 0's CPU");
        });
    }
}
