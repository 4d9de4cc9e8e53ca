using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Zonelists;
using static Numalloc.Tests.Zonelists.ZonelistTestSupport;

namespace Numalloc.Tests.Zonelists;

/// <summary>
/// Local, preferred, bind and interleave on a simulated 4-node machine with unequal distances; the
/// numastat counters move exactly as the kernel's zone_statistics would move them.
/// </summary>
public sealed unsafe class MemoryPolicyTests
{
    private PageAllocator _allocator = null!;
    private readonly List<nint> _pages = new();

    [SetUp]
    public void SetUp() =>
        // One Normal block per node, no growth: "full" means drained to min.
        _allocator = Allocator(4, TestHeaps.Options(4, 4), FourNodeDistances);

    [TearDown]
    public void TearDown()
    {
        VirtualCpu.Clear();
        PageAllocator.ThreadPolicy = MemoryPolicy.Local;
        _allocator.Dispose();
    }

    private void RunOn(int node) => VirtualCpu.Set(CpuOf(_allocator.Heap.Topology, node));

    private int NodeOf(void* p)
    {
        Assert.That(p != null, "allocation succeeded");
        _pages.Add((nint)p);
        return Locate(_allocator, p).Node;
    }

    private void Fill(int node) => TestHeaps.Drain(_allocator.Heap.ZoneOf(node, ZoneType.Normal), 0);

    private static NumaStat[] Expect(params (int Node, NumaStat Delta)[] changes)
    {
        var all = Enumerable.Repeat(Zero, 4).ToArray();
        foreach (var (node, delta) in changes)
            all[node] = delta;
        return all;
    }

    [Test]
    public void LocalPolicy_AllocatesOnTheCpusNode_CountingHitAndLocal()
    {
        RunOn(1);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(1));
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect((1, Zero with { NumaHit = 1, LocalNode = 1 }))));
    }

    [Test]
    public void LocalPolicy_OnAFullNode_FallsBackToItsNearestNode_CountingMissForeignAndOther()
    {
        RunOn(1);
        Fill(1);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(3), "node 1's nearest is 3 (distance 15)");
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect(
            (3, Zero with { NumaMiss = 1, OtherNode = 1 }),
            (1, Zero with { NumaForeign = 1 }))));
    }

    [Test]
    public void PreferredPolicy_AllocatesOnThePreferredNode_CountingHitAndOther()
    {
        RunOn(0);
        PageAllocator.ThreadPolicy = MemoryPolicy.Preferred(3);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(3));
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect((3, Zero with { NumaHit = 1, OtherNode = 1 }))));
    }

    [Test]
    public void PreferredPolicy_OnAFullNode_AllocatesOnItsNearestNode_CountingMissOtherAndForeign()
    {
        RunOn(2);
        Fill(2);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0, PageAllocFlags.None, MemoryPolicy.Preferred(2))), Is.EqualTo(1), "node 2's nearest is 1 (distance 25)");
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect(
            (1, Zero with { NumaMiss = 1, OtherNode = 1 }),
            (2, Zero with { NumaForeign = 1 }))));
    }

    [Test]
    public void BindPolicy_UsesOnlyItsNodes_NearestFirst_CountingHit()
    {
        RunOn(1);
        PageAllocator.ThreadPolicy = MemoryPolicy.Bind(0, 2);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(0), "from node 1, 0 (20) is nearer than 2 (25)");
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect((0, Zero with { NumaHit = 1, OtherNode = 1 }))));
        Fill(0);
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(2), "falls back only inside the set");
    }

    [Test]
    public void BindPolicy_ToAnExhaustedNode_FailsInsteadOfFallingBack()
    {
        RunOn(0);
        Fill(2);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(_allocator.AllocPages(0, PageAllocFlags.None, MemoryPolicy.Bind(2)) == null, "null, not another node");
        Assert.That(_allocator.AllocPages(0, PageAllocFlags.ThisNodeOnly, 2) == null, "this-node-only to the same node fails too");
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect()), "a failure counts nothing");
        Assert.That(NodeOf(_allocator.AllocPages(0, PageAllocFlags.None, MemoryPolicy.Preferred(2))), Is.EqualTo(1), "preferred does fall back");
    }

    [Test]
    public void InterleavePolicy_RoundRobinsOverItsNodesPerThread_CountingInterleaveHits()
    {
        RunOn(0);
        PageAllocator.ThreadPolicy = MemoryPolicy.Interleave(0, 2, 3);
        NumaStat[] before = NumaStats(_allocator);
        int[] nodes = Enumerable.Range(0, 6).Select(_ => NodeOf(_allocator.AllocPages(0))).ToArray();
        Assert.That(nodes, Is.EqualTo(new[] { 0, 2, 3, 0, 2, 3 }));
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect(
            (0, Zero with { NumaHit = 2, InterleaveHit = 2, LocalNode = 2 }),
            (2, Zero with { NumaHit = 2, InterleaveHit = 2, OtherNode = 2 }),
            (3, Zero with { NumaHit = 2, InterleaveHit = 2, OtherNode = 2 }))));
    }

    [Test]
    public void InterleaveOntoAFullNode_FallsBack_WithoutAnInterleaveHit()
    {
        RunOn(0);
        Fill(3);
        NumaStat[] before = NumaStats(_allocator);
        Assert.That(NodeOf(_allocator.AllocPages(0, PageAllocFlags.None, MemoryPolicy.Interleave(3))), Is.EqualTo(1), "node 3's nearest is 1 (15)");
        Assert.That(Delta(before, NumaStats(_allocator)), Is.EqualTo(Expect(
            (1, Zero with { NumaMiss = 1, OtherNode = 1 }),
            (3, Zero with { NumaForeign = 1 }))));
    }

    [Test]
    public void AnExplicitNodeArgument_OverridesTheThreadPolicy()
    {
        RunOn(0);
        PageAllocator.ThreadPolicy = MemoryPolicy.Bind(1);
        Assert.That(NodeOf(_allocator.AllocPages(0, PageAllocFlags.None, node: 2)), Is.EqualTo(2));
        Assert.That(NodeOf(_allocator.AllocPages(0)), Is.EqualTo(1));
    }

    [Test]
    public void APolicyNamingAMissingNode_IsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _allocator.AllocPages(0, PageAllocFlags.None, MemoryPolicy.Bind(5)));
        Assert.Throws<ArgumentOutOfRangeException>(() => _allocator.AllocPages(0, PageAllocFlags.None, node: 4));
    }
}
