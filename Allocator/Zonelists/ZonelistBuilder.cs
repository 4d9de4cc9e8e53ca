using Numalloc.Pages;
using Numalloc.Sync;

namespace Numalloc.Zonelists;

/// <summary>
/// Every node's zonelists, in fixed arrays rewritten in place: per node a fallback list for
/// movable requests, one for unmovable requests, and the two this-node-only lists.
/// </summary>
/// <remarks>
/// <para>Order (the kernel's build_zonelists): nodes by the node's distance order
/// (<see cref="Topology.NumaTopology.NodesByDistance"/>), and within a node zones from high to low.
/// For a movable request that is node0 Movable, node0 Normal, node1 Movable, node1 Normal, ...
/// (GFP_MOVABLE's list: a near Normal zone before a far Movable one). Unmovable lists hold Normal
/// zones only.</para>
/// <para>A list names every zone that is online or can grow; a zone drops out only when none of its
/// blocks is online and it cannot grow (admin-down or at its limit). A list ends at its first null.</para>
/// <para>Race: <see cref="Rebuild"/> rewrites the arrays while allocating threads walk them. Rule:
/// the rewrite happens inside the <see cref="SeqCount"/> write section (writers serialized by its
/// lock); entries are written and read with Volatile so a reader sees whole zone references, possibly
/// a mix of old and new lists; zones are never freed and each re-checks eligibility under its lock, so
/// a torn walk can only fail, and a failed walk counts only if the seqcount says no write overlapped
/// it (<see cref="SeqCount.ReadRetry"/>).</para>
/// </remarks>
internal sealed class ZonelistBuilder
{
    private readonly PageHeap _heap;
    private readonly Zone?[][] _movable;
    private readonly Zone?[][] _unmovable;
    private readonly Zone?[][] _thisNodeMovable;
    private readonly Zone?[][] _thisNodeUnmovable;
    private long _readerRestarts;

    /// <summary>Creates and builds the lists for every node of <paramref name="heap"/>.</summary>
    public ZonelistBuilder(PageHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        _heap = heap;
        int nodes = heap.Nodes.Length;
        _movable = new Zone?[nodes][];
        _unmovable = new Zone?[nodes][];
        _thisNodeMovable = new Zone?[nodes][];
        _thisNodeUnmovable = new Zone?[nodes][];
        for (int n = 0; n < nodes; n++)
        {
            // One spare slot: a full list still ends with a null.
            _movable[n] = new Zone?[(2 * nodes) + 1];
            _unmovable[n] = new Zone?[nodes + 1];
            _thisNodeMovable[n] = new Zone?[3];
            _thisNodeUnmovable[n] = new Zone?[2];
        }
        Rebuild();
    }

    /// <summary>The seqcount guarding the lists.</summary>
    public SeqCount Sequence { get; } = new();

    /// <summary>Completed rewrites (the sequence / 2).</summary>
    public long Generation => Sequence.Sequence / 2;

    /// <summary>How many times readers restarted a walk because a rewrite overlapped it.</summary>
    public long ReaderRestarts =>
        // Atomic 64-bit read of a counter other threads increment.
        Interlocked.Read(ref _readerRestarts);

    /// <summary>
    /// Test hook: called inside the write section after each entry is written, with the running
    /// count of entries written in this rebuild (0 for the first). A test blocks in it to hold the
    /// writer mid-rewrite.
    /// </summary>
    internal Action<int>? TestHookAfterEntryWritten { get; set; }

    /// <summary>The list for requests aimed at <paramref name="node"/>: walk it up to the first null.</summary>
    public Zone?[] ListFor(int node, PageAllocFlags flags)
    {
        bool movable = (flags & PageAllocFlags.Movable) != 0;
        return (flags & PageAllocFlags.ThisNodeOnly) != 0
            ? (movable ? _thisNodeMovable[node] : _thisNodeUnmovable[node])
            : (movable ? _movable[node] : _unmovable[node]);
    }

    /// <summary>Counts a reader restart.</summary>
    internal void CountRestart() =>
        // Atomic add only; nothing is ordered against it (statistics, slow path).
        Interlocked.Increment(ref _readerRestarts);

    /// <summary>
    /// Rewrites every list in place from the zones' current state (online blocks, can grow), in
    /// one write section. Call after anything that changes whether a zone is listed.
    /// </summary>
    public void Rebuild()
    {
        using SeqCount.WriteScope scope = Sequence.BeginWrite();
        RebuildLocked();
    }

    /*
     * An operator's online, published like the kernel's online_pages: the block is claimed, committed
     * and bound outside any section (system calls); then, inside one write section, its pages join
     * the zone and the lists are rewritten. Race: a reader that fails between "pages added" and
     * "zone listed" would be a spurious failure (an eligible zone had free pages). Rule: both happen
     * in the same section, so such a reader's cookie is odd or changed and it restarts.
     */
    /// <summary>Onlines an Absent/Offline block into <paramref name="zone"/> of its node and republishes the lists.</summary>
    /// <returns>False when the block was not available or the platform failed.</returns>
    public bool OnlineBlock(int block, ZoneType zone)
    {
        if (!_heap.TryPrepareOnline(block, zone))
            return false;
        using SeqCount.WriteScope scope = Sequence.BeginWrite();
        _heap.FinishOnline(block);
        RebuildLocked();
        return true;
    }

    /// <summary>
    /// Publishes an operator's online of blocks already claimed and committed with
    /// <see cref="PageHeap.TryPrepareOnline"/>: inside one write section, the zones come back up
    /// (admin-down cleared), the blocks' pages join their zones and the lists are rewritten.
    /// </summary>
    public void PublishOnline(ReadOnlySpan<int> preparedBlocks, ReadOnlySpan<Zone> zonesUp)
    {
        using SeqCount.WriteScope scope = Sequence.BeginWrite();
        foreach (Zone zone in zonesUp)
            zone.AdminDown = false;
        foreach (int block in preparedBlocks)
            _heap.FinishOnline(block);
        RebuildLocked();
    }

    private void RebuildLocked()
    {
        int written = 0;
        int nodes = _heap.Nodes.Length;
        for (int n = 0; n < nodes; n++)
        {
            var order = _heap.Topology.NodesByDistance(n);
            int i = 0;
            foreach (int m in order)
                Put(_unmovable[n], ref i, _heap.ZoneOf(m, ZoneType.Normal), ref written);
            Terminate(_unmovable[n], i);

            i = 0;
            foreach (int m in order)
            {
                // Zones high to low within a node, as the kernel: Movable, then Normal.
                Put(_movable[n], ref i, _heap.ZoneOf(m, ZoneType.Movable), ref written);
                Put(_movable[n], ref i, _heap.ZoneOf(m, ZoneType.Normal), ref written);
            }
            Terminate(_movable[n], i);

            i = 0;
            Put(_thisNodeUnmovable[n], ref i, _heap.ZoneOf(n, ZoneType.Normal), ref written);
            Terminate(_thisNodeUnmovable[n], i);

            i = 0;
            Put(_thisNodeMovable[n], ref i, _heap.ZoneOf(n, ZoneType.Movable), ref written);
            Put(_thisNodeMovable[n], ref i, _heap.ZoneOf(n, ZoneType.Normal), ref written);
            Terminate(_thisNodeMovable[n], i);
        }
    }

    private void Put(Zone?[] list, ref int index, Zone zone, ref int written)
    {
        if (!zone.IsListed)
            return;
        // Release: a reader that loads this reference sees a fully constructed zone (zones are
        // built before the first rebuild and never freed).
        Volatile.Write(ref list[index++], zone);
        TestHookAfterEntryWritten?.Invoke(written++);
    }

    private static void Terminate(Zone?[] list, int from)
    {
        for (int i = from; i < list.Length; i++)
            // Release: ordered after the entries above; a reader that still sees a stale entry or an
            // early terminator here is inside the write section and its failure is retried.
            Volatile.Write(ref list[i], null);
    }
}
