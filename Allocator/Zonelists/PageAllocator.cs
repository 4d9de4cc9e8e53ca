using System.Numerics;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;

namespace Numalloc.Zonelists;

/// <summary>
/// The page API: <c>alloc_pages</c> / <c>free_pages</c> over the page heap, choosing nodes by memory
/// policy and walking zonelists. Owns its <see cref="PageHeap"/>; dispose to give memory back. Thread-safe.
/// </summary>
internal sealed unsafe class PageAllocator : IDisposable
{
    // The calling thread's policy (set_mempolicy) and its interleave cursor (the last node interleaving
    // chose, plus one; 0 = none yet), as the kernel's task->mempolicy and task->il_prev.
    [ThreadStatic]
    private static MemoryPolicy? t_policy;

    [ThreadStatic]
    private static int t_interleaveLastPlusOne;

    private const int RestartsBeforeYield = 3;

    /// <summary>Creates the heap and its zonelists.</summary>
    /// <exception cref="ConfigException">The options are invalid.</exception>
    /// <exception cref="PlatformException">The reservation or an initial online failed.</exception>
    public PageAllocator(AllocatorOptions options, NumaTopology topology, IPlatform platform)
    {
        Heap = new PageHeap(options, topology, platform);
        Zonelists = new ZonelistBuilder(Heap);
    }

    /// <summary>The page heap (zones, nodes, blocks).</summary>
    public PageHeap Heap { get; }

    /// <summary>The zonelists and their seqcount.</summary>
    public ZonelistBuilder Zonelists { get; }

    /// <summary>The calling thread's memory policy (default <see cref="MemoryPolicy.Local"/>), like set_mempolicy.</summary>
    public static MemoryPolicy ThreadPolicy
    {
        get => t_policy ?? MemoryPolicy.Local;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            bool had = t_policy is { Mode: not MemoryPolicyMode.Local };
            bool has = value.Mode != MemoryPolicyMode.Local;
            if (had != has)
            {
                // Atomic only: a thread's own change is visible to itself in program order, which is
                // all MayHaveThreadPolicy needs; other threads' counts only cost them a slower check.
                Interlocked.Add(ref s_threadsWithPolicy, has ? 1 : -1);
            }
            t_policy = value;
        }
    }

    // Threads whose policy is not Local: while none has one, the cached fast path skips the
    // thread-static read (a static key, as the kernel's static_branch for rarely set features).
    private static int s_threadsWithPolicy;

    /// <summary>False only when the calling thread's policy is certainly <see cref="MemoryPolicy.Local"/> (one static load).</summary>
    internal static bool MayHaveThreadPolicy
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => s_threadsWithPolicy != 0 && t_policy is { Mode: not MemoryPolicyMode.Local };
    }

    /// <summary>
    /// The cache layer's hook: called once on the slow path before an allocation fails for good;
    /// it drains per-CPU caches and per-thread magazines back to the zones and returns whether it
    /// freed anything (then the walk is retried once). Null: nothing to drain.
    /// </summary>
    internal Func<bool>? DrainCachesBeforeFailing { get; set; }

    /// <summary>
    /// Allocates 2^<paramref name="order"/> contiguous pages. With <paramref name="node"/> &gt;= 0, that
    /// node first (like alloc_pages_node); else by the calling thread's policy.
    /// </summary>
    /// <returns>The first page, or null when no eligible zone could serve.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Order not 0..10, or node not a node id.</exception>
    public void* AllocPages(int order, PageAllocFlags flags = PageAllocFlags.None, int node = -1)
    {
        if (node >= 0)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, Heap.Nodes.Length);
            return AllocCore(order, flags, MemoryPolicyMode.Preferred, 1UL << node, node);
        }
        return AllocPages(order, flags, ThreadPolicy);
    }

    /// <summary>Allocates 2^<paramref name="order"/> contiguous pages under <paramref name="policy"/> for this call only.</summary>
    /// <returns>The first page, or null when no zone the policy allows could serve.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Order not 0..10, or the policy names a node that does not exist.</exception>
    public void* AllocPages(int order, PageAllocFlags flags, MemoryPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        int nodeCount = Heap.Nodes.Length;
        if (nodeCount < 64 && (policy.NodeMask >> nodeCount) != 0)
            throw new ArgumentOutOfRangeException(nameof(policy), policy.ToString(), $"Node ids are 0..{nodeCount - 1}.");
        return AllocCore(order, flags, policy.Mode, policy.NodeMask, -1);
    }

    /// <summary>
    /// The node <paramref name="policy"/> sends the calling thread's next allocation to, for layers that
    /// place memory themselves (the object heap's slabs, huge mappings): Local gives the CPU's memory
    /// node, Preferred its node, Bind the nearest node of its set, Interleave the next node of its set
    /// (advancing the thread's cursor, shared with page allocations).
    /// </summary>
    /// <param name="policy">The policy.</param>
    /// <param name="allowed">The nodes an allocation may fall back to: only Bind restricts them.</param>
    /// <returns>A node id.</returns>
    internal int PolicyNode(MemoryPolicy policy, out ulong allowed)
    {
        NumaTopology topology = Heap.Topology;
        int local = topology.MemoryNodeFor(topology.NodeOfCpu(PlatformCpu.Current()));
        allowed = ~0UL;
        int node = policy.Mode switch
        {
            MemoryPolicyMode.Preferred => BitOperations.TrailingZeroCount(policy.NodeMask),
            MemoryPolicyMode.Bind => FirstInMask(topology, local, allowed = policy.NodeMask),
            MemoryPolicyMode.Interleave => NextInterleaveNode(policy.NodeMask, Heap.Nodes.Length),
            _ => local,
        };
        // A thread policy naming only nodes this heap lacks (policies are not tied to a heap) means local.
        return node < Heap.Nodes.Length ? node : local;
    }

    /// <summary>Frees pages from <see cref="AllocPages(int, PageAllocFlags, int)"/> with the same order.</summary>
    /// <exception cref="InvalidOperationException">Not ours, not page-aligned, interior, already free or wrong order; the heap is unchanged.</exception>
    public void FreePages(void* p, int order) => Heap.FreePages(p, order);

    /// <summary>
    /// Returns every free page of the zones to the OS now (see <see cref="PageHeap.Trim"/>); pages in
    /// caches in front of this allocator are not included.
    /// </summary>
    /// <returns>Bytes purged by this call.</returns>
    public long Trim() => Heap.Trim();

    /// <summary>A snapshot of the heap, the numastat counters and the zonelist state.</summary>
    public PageAllocatorStats Snapshot() =>
        new(Heap.Snapshot(), Zonelists.Generation, Zonelists.ReaderRestarts);

    /// <inheritdoc/>
    public void Dispose() => Heap.Dispose();

    private void* AllocCore(int order, PageAllocFlags flags, MemoryPolicyMode mode, ulong policyNodes, int explicitNode)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, PageHeap.MaxOrder);
        NumaTopology topology = Heap.Topology;
        int cpuNode = topology.NodeOfCpu(PlatformCpu.Current());
        int local = topology.MemoryNodeFor(cpuNode);

        // target: whose zonelist is walked; intended: the node numastat calls "preferred"; mask: the
        // nodes the walk may use (only Bind restricts it: Preferred and Interleave fall back anywhere).
        int target;
        int intended;
        ulong mask = ~0UL;
        switch (mode)
        {
            case MemoryPolicyMode.Preferred:
                target = intended = explicitNode >= 0 ? explicitNode : BitOperations.TrailingZeroCount(policyNodes);
                break;
            case MemoryPolicyMode.Bind:
                // As the kernel: the local node's zonelist filtered by the set; the intended node is
                // the first node of that filtered list.
                mask = policyNodes;
                target = local;
                intended = FirstInMask(topology, local, mask);
                break;
            case MemoryPolicyMode.Interleave:
                target = intended = NextInterleaveNode(policyNodes, Heap.Nodes.Length);
                break;
            default:
                target = intended = local;
                break;
        }

        int page = Walk(order, flags, target, mask, out Zone? zone);
        if (zone is null)
            return null;
        CountNumaStat(zone.Node, intended, cpuNode, mode == MemoryPolicyMode.Interleave);
        return Heap.AddressOfPage(page);
    }

    /*
     * The zonelist walk (get_page_from_freelist plus check_retry_zonelist). Race: Rebuild rewrites
     * the list in place while we walk it. Rule: we never wait for the writer; each zone re-checks its
     * own eligibility under its lock, so whatever we read can only make us fail, never serve wrongly;
     * a failed walk is authoritative only when ReadRetry says the cookie was even and unchanged;
     * otherwise we restart, yielding after a few restarts so a preempted writer can finish.
     */
    private int Walk(int order, PageAllocFlags flags, int target, ulong mask, out Zone? zone)
    {
        int restarts = 0;
        bool drained = false;
        while (true)
        {
            int cookie = Zonelists.Sequence.ReadBegin();
            Zone?[] list = Zonelists.ListFor(target, flags);
            for (int i = 0; i < list.Length; i++)
            {
                // Acquire: pairs with the writer's Volatile.Write of the entry (a whole, constructed zone).
                Zone? candidate = Volatile.Read(ref list[i]);
                if (candidate is null)
                    break;
                if ((mask & (1UL << candidate.Node)) == 0)
                    continue;
                int page = candidate.TryAllocate(order, flags);
                if (page != PageDescriptor.NoPage)
                {
                    zone = candidate;
                    return page;
                }
            }
            if (Zonelists.Sequence.ReadRetry(cookie))
            {
                Zonelists.CountRestart();
                if (++restarts >= RestartsBeforeYield)
                    Thread.Yield();
                continue;
            }
            if (!drained && DrainCachesBeforeFailing is { } drain)
            {
                drained = true;
                if (drain())
                    continue;
            }
            zone = null;
            return PageDescriptor.NoPage;
        }
    }

    /// <summary>
    /// Counts <paramref name="pages"/> allocations served by <paramref name="servedNode"/> with the
    /// kernel's <c>zone_statistics</c> meanings; the cache layer calls it for the pages it takes
    /// from a zone in one batch.
    /// </summary>
    internal void CountNumaStat(int servedNode, int intendedNode, int cpuNode, bool interleave, long pages = 1)
    {
        // zone_statistics: hit/miss on the serving node, foreign on the intended one; local/other by
        // the CPU's node (numa_node_id, not numa_mem_id); interleave_hit when interleaving got its node.
        NumaNodeState served = Heap.Nodes[servedNode];
        if (servedNode == intendedNode)
        {
            served.Count(NumaStatItem.NumaHit, pages);
            if (interleave)
                served.Count(NumaStatItem.InterleaveHit, pages);
        }
        else
        {
            served.Count(NumaStatItem.NumaMiss, pages);
            Heap.Nodes[intendedNode].Count(NumaStatItem.NumaForeign, pages);
        }
        served.Count(servedNode == cpuNode ? NumaStatItem.LocalNode : NumaStatItem.OtherNode, pages);
    }

    private static int FirstInMask(NumaTopology topology, int from, ulong mask)
    {
        foreach (int node in topology.NodesByDistance(from))
        {
            if ((mask & (1UL << node)) != 0)
                return node;
        }
        return from;
    }

    private static int NextInterleaveNode(ulong mask, int nodeCount)
    {
        int last = t_interleaveLastPlusOne - 1;
        for (int step = 1; step <= nodeCount; step++)
        {
            int candidate = (last + step + nodeCount) % nodeCount;
            if ((mask & (1UL << candidate)) != 0)
            {
                t_interleaveLastPlusOne = candidate + 1;
                return candidate;
            }
        }
        return BitOperations.TrailingZeroCount(mask);
    }
}

/// <summary>The page allocator at the moment of a snapshot.</summary>
/// <param name="Heap">Every node (numastat), zone and block.</param>
/// <param name="ZonelistGeneration">Completed zonelist rewrites (the seqcount / 2).</param>
/// <param name="ZonelistReaderRestarts">Walks restarted because a rewrite overlapped them.</param>
internal sealed record PageAllocatorStats(HeapStats Heap, long ZonelistGeneration, long ZonelistReaderRestarts);
