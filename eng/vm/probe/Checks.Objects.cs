using System.Globalization;
using Numalloc.Objects;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.VmProbe;

internal sealed unsafe partial class Checks
{
    // One of each path of the object layer: slab objects (many, so whole slab pages are written),
    // a page run of the buddy allocator, and a huge allocation with a mapping of its own.
    private const nuint SmallObjectBytes = 64;
    private const int SmallObjectCount = 1024;
    private const nuint LargeObjectBytes = 256 << 10;
    private const nuint HugeObjectBytes = 8 << 20;

    // When the small objects of a thread moved to another node's CPU must follow it, at the latest: the
    // magazines check their home every HomeCheckInterval operations, against a CPU hint that is re-read
    // from the OS only every HintUses uses (the design: a hint, cheap and possibly stale). Seen in the
    // guest: about 1,100 allocations, i.e. the hint's remaining uses, not one interval.
    private const int MoveNoticedWithin = ObjectHeap.HomeCheckInterval * (PlatformCpu.HintUses + 1);

    // Small objects allocated after the move: past the bound, so objects after it are checked too.
    private const int ObjectsAfterMove = MoveNoticedWithin + 256;

    /// <summary>
    /// For every node: small (64 B, 1024 of them), large (256 KiB) and huge (8 MiB) allocations from
    /// <see cref="NumaAllocator.AllocateOnNode"/> live on that node once written (move_pages), and
    /// <see cref="NumaAllocator.NodeOf"/> names that node.
    /// </summary>
    private void ObjectsOfEverySizeLiveOnTheirNode()
    {
        using NumaAllocator allocator = NewAllocator(SmallHeap);
        for (int node = 0; node < allocator.NodeCount; node++)
        {
            var wrong = new List<string>();
            var objects = new List<nint>();
            for (int i = 0; i < SmallObjectCount; i++)
                objects.Add((nint)allocator.AllocateOnNode(SmallObjectBytes, node));
            CheckObjects(allocator, objects, SmallObjectBytes, node, "small", wrong);

            void* large = allocator.AllocateOnNode(LargeObjectBytes, node);
            CheckRange(allocator, large, LargeObjectBytes, node, "large", wrong);
            void* huge = allocator.AllocateOnNode(HugeObjectBytes, node);
            CheckRange(allocator, huge, HugeObjectBytes, node, "huge", wrong);

            foreach (nint o in objects)
                allocator.Free((void*)o);
            allocator.Free(large);
            allocator.Free(huge);
            _tap.Report(wrong.Count == 0,
                string.Create(CultureInfo.InvariantCulture,
                    $"node {node}: objects from AllocateOnNode live on node {node}: small ({SmallObjectCount} x {SmallObjectBytes} B), large ({LargeObjectBytes >> 10} KiB), huge ({HugeObjectBytes >> 20} MiB); NodeOf agrees"),
                string.Join('\n', wrong));
        }
    }

    /// <summary>
    /// For every node k: a thread pinned (sched_setaffinity) to k's CPU gets node-k memory from
    /// <see cref="NumaAllocator.Allocate"/>, small and large, under the default local policy; moved to
    /// the next node's CPU it gets that node's memory. Small objects follow once the thread's magazines
    /// notice the move (a home check every <see cref="ObjectHeap.HomeCheckInterval"/> operations, on a
    /// CPU hint re-read every <see cref="PlatformCpu.HintUses"/> uses): the objects before that point may
    /// still be node k's, every object from that point on must be the new node's, and the point must
    /// come within <see cref="MoveNoticedWithin"/> allocations.
    /// </summary>
    private void LocalPolicyFollowsTheCpuForObjects()
    {
        using NumaAllocator allocator = NewAllocator(SmallHeap);
        NumaTopology topology = allocator.Admin.Topology;
        int[] withCpus = [.. Enumerable.Range(0, topology.NodeCount).Where(n => topology.Nodes[n].HasCpus)];
        if (withCpus.Length < 2)
        {
            _tap.Comment("fewer than two nodes with CPUs: the object-level local policy check does not run");
            return;
        }

        for (int i = 0; i < withCpus.Length; i++)
        {
            int from = withCpus[i];
            int to = withCpus[(i + 1) % withCpus.Length];
            var wrong = new List<string>();
            var notes = new List<string>();
            var thread = new Thread(() => AllocateObjectsLocally(allocator, topology, from, to, wrong, notes)) { IsBackground = true, Name = "local-objects-" + from };
            thread.Start();
            thread.Join();
            _tap.Report(wrong.Count == 0,
                $"node {from} then node {to}: a thread pinned to each node's cpu in turn gets that node's small and large objects from Allocate (local policy)",
                string.Join('\n', notes.Concat(wrong)));
        }
    }

    private void AllocateObjectsLocally(NumaAllocator allocator, NumaTopology topology, int from, int to, List<string> wrong, List<string> notes)
    {
        var held = new List<nint>();
        try
        {
            // On node `from`'s CPU: a fresh thread, so its first CPU hint is read after the pinning.
            Native.PinCurrentThread(topology.Nodes[from].Cpus[0]);
            var before = new List<nint>();
            for (int i = 0; i < 256; i++)
                before.Add((nint)allocator.Allocate(SmallObjectBytes));
            held.AddRange(before);
            CheckObjects(allocator, before, SmallObjectBytes, from, "small on node " + from, wrong);
            void* large = allocator.Allocate(LargeObjectBytes);
            held.Add((nint)large);
            CheckRange(allocator, large, LargeObjectBytes, from, "large on node " + from, wrong);

            // Moved to node `to`'s CPU: find where the small objects start coming from `to`.
            Native.PinCurrentThread(topology.Nodes[to].Cpus[0]);
            var after = new List<nint>(ObjectsAfterMove);
            for (int i = 0; i < ObjectsAfterMove; i++)
                after.Add((nint)allocator.Allocate(SmallObjectBytes));
            held.AddRange(after);
            int switchAt = after.FindIndex(o => allocator.NodeOf((void*)o) == to);
            if (switchAt < 0 || switchAt > MoveNoticedWithin)
            {
                wrong.Add($"after the move to node {to}: the first of {ObjectsAfterMove} small objects on node {to} is allocation {switchAt}, later than {MoveNoticedWithin} (NodeOf: {Describe(allocator, after)})");
                return;
            }

            notes.Add($"after the move: small objects are node {to}'s from allocation {switchAt} on (bound {MoveNoticedWithin}: home check every {ObjectHeap.HomeCheckInterval}, CPU hint re-read every {PlatformCpu.HintUses} uses)");
            List<nint> later = after[switchAt..];
            CheckObjects(allocator, later, SmallObjectBytes, to, $"small on node {to} (allocations {switchAt}..{ObjectsAfterMove - 1} after the move)", wrong);
            void* moved = allocator.Allocate(LargeObjectBytes);
            held.Add((nint)moved);
            CheckRange(allocator, moved, LargeObjectBytes, to, "large on node " + to, wrong);
        }
#pragma warning disable CA1031 // Reported as this pair's failure by the caller.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            wrong.Add(ex.ToString());
        }
        finally
        {
            foreach (nint p in held)
                allocator.Free((void*)p);
            allocator.FlushCurrentThread();
        }
    }

    /// <summary>
    /// Interleave at object level: under the thread policy <c>Interleave(all nodes)</c>
    /// (<see cref="PageAllocator.ThreadPolicy"/>, which <see cref="NumaAllocator.Allocate"/> honours for
    /// every size), consecutive large, small and huge allocations go round-robin over the nodes, and
    /// each lives on the node NodeOf names.
    /// </summary>
    private void InterleaveSpreadsObjectsRoundRobin()
    {
        using NumaAllocator allocator = NewAllocator(SmallHeap);
        int n = allocator.NodeCount;
        var results = new List<(string What, List<string> Wrong)>();
        var thread = new Thread(() =>
        {
            PageAllocator.ThreadPolicy = MemoryPolicy.Interleave([.. Enumerable.Range(0, n)]);
            try
            {
                results.Add(("large", InterleaveRun(allocator, LargeObjectBytes, 2 * n)));
                results.Add(("small", InterleaveRun(allocator, SmallObjectBytes, 4 * n)));
                results.Add(("huge", InterleaveRun(allocator, HugeObjectBytes, n)));
            }
#pragma warning disable CA1031 // Reported as a failed result below.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                results.Add(("interleave thread", [ex.ToString()]));
            }
            finally
            {
                PageAllocator.ThreadPolicy = MemoryPolicy.Local;
                allocator.FlushCurrentThread();
            }
        }) { IsBackground = true, Name = "interleave-objects" };
        thread.Start();
        thread.Join();
        foreach ((string what, List<string> wrong) in results)
        {
            _tap.Report(wrong.Count == 0,
                $"interleave over all nodes at object level: consecutive {what} allocations from Allocate go round-robin and each lives on its node",
                string.Join('\n', wrong));
        }
    }

    // count allocations of objectBytes under the calling thread's interleave policy: each must be the
    // node after the previous one's, and live there.
    private List<string> InterleaveRun(NumaAllocator allocator, nuint objectBytes, int count)
    {
        var wrong = new List<string>();
        var taken = new List<nint>();
        int n = allocator.NodeCount;
        for (int i = 0; i < count; i++)
            taken.Add((nint)allocator.Allocate(objectBytes));
        var logical = taken.Select(p => allocator.NodeOf((void*)p)).ToArray();
        for (int i = 0; i < count; i++)
        {
            int expected = (logical[0] + i) % n;
            if (logical[i] != expected)
                wrong.Add($"allocation {i}: NodeOf says {logical[i]}, round-robin says {expected}");
        }

        for (int i = 0; i < count; i++)
        {
            int[] where = objectBytes <= SmallObjectBytes
                ? PageProbe.TouchAndLocateObjects(_platform, [taken[i]], objectBytes)
                : PageProbe.TouchAndLocate(_platform, (void*)taken[i], objectBytes);
            if (logical[i] >= 0 && !PageProbe.AllOn(where, allocator.Admin.Topology.Nodes[logical[i]].PhysicalNode))
                wrong.Add($"allocation {i}: for node {logical[i]} but lives on {PageProbe.Describe(where)}");
        }

        foreach (nint p in taken)
            allocator.Free((void*)p);
        if (wrong.Count > 0)
            wrong.Insert(0, "NodeOf in order: " + string.Join(' ', logical));
        return wrong;
    }

    // Small objects: NodeOf names node for each, and every page under them lives on its physical node.
    private void CheckObjects(NumaAllocator allocator, List<nint> objects, nuint objectBytes, int node, string what, List<string> wrong)
    {
        int misnamed = objects.Count(o => allocator.NodeOf((void*)o) != node);
        if (misnamed > 0)
            wrong.Add($"{what}: NodeOf names another node for {misnamed} of {objects.Count} objects ({Describe(allocator, objects)})");
        int[] where = PageProbe.TouchAndLocateObjects(_platform, objects, objectBytes);
        if (!PageProbe.AllOn(where, allocator.Admin.Topology.Nodes[node].PhysicalNode))
            wrong.Add($"{what}: {objects.Count} objects on {where.Length} pages: {PageProbe.Describe(where)}");
    }

    // One page run or mapping: NodeOf names node, and every page of it lives on its physical node.
    private void CheckRange(NumaAllocator allocator, void* p, nuint bytes, int node, string what, List<string> wrong)
    {
        int named = allocator.NodeOf(p);
        if (named != node)
            wrong.Add($"{what}: NodeOf says {named}");
        int[] where = PageProbe.TouchAndLocate(_platform, p, bytes);
        if (!PageProbe.AllOn(where, allocator.Admin.Topology.Nodes[node].PhysicalNode))
            wrong.Add($"{what}: {PageProbe.Describe(where)}");
    }

    // NodeOf over a list, as counts per node.
    private static string Describe(NumaAllocator allocator, IEnumerable<nint> objects) =>
        PageProbe.Describe(objects.Select(o => allocator.NodeOf((void*)o)).ToArray());
}
