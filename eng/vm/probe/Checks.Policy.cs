using Numalloc.Pages;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.VmProbe;

internal sealed unsafe partial class Checks
{
    /// <summary>
    /// Interleave over every node hands out consecutive pages round-robin (the allocator's choice,
    /// read back by address) and each page really lands on the node it was handed out for.
    /// </summary>
    private void InterleaveSpreadsPagesRoundRobin()
    {
        using PageAllocator pages = NewPageAllocator(SmallHeap);
        int n = pages.Heap.Nodes.Length;
        int[] all = [.. Enumerable.Range(0, n)];
        MemoryPolicy policy = MemoryPolicy.Interleave(all);
        int count = 4 * n;
        var logical = new int[count];
        var physical = new int[count];
        var taken = new nint[count];
        for (int i = 0; i < count; i++)
        {
            void* p = pages.AllocPages(0, PageAllocFlags.None, policy);
            if (p is null)
            {
                _tap.Report(false, "interleave over all nodes spreads pages round-robin", $"allocation {i} refused");
                return;
            }

            taken[i] = (nint)p;
            logical[i] = pages.Heap.TryLocate(p, out PageLocation location) ? location.Node : -1;
            physical[i] = PageProbe.TouchAndLocate(_platform, p, PageProbe.PageBytes)[0];
        }

        var wrong = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int expected = (logical[0] + i) % n;
            if (logical[i] != expected)
                wrong.Add($"page {i}: handed out for node {logical[i]}, round-robin says {expected}");
            if (logical[i] >= 0 && physical[i] != pages.Heap.Topology.Nodes[logical[i]].PhysicalNode)
                wrong.Add($"page {i}: for node {logical[i]} but lives on {PageProbe.NodeName(physical[i])}");
        }

        foreach (nint p in taken)
            pages.FreePages((void*)p, 0);
        _tap.Report(wrong.Count == 0,
            $"interleave over all nodes: {count} pages go round-robin and each lives on its node",
            wrong.Count == 0 ? null : $"pages by node: {PageProbe.Describe(physical)}\n{string.Join('\n', wrong)}");
    }

    /// <summary>
    /// For every node: a thread pinned (sched_setaffinity) to that node's CPU, under the default
    /// local policy, gets pages of that node. A fresh thread per node, so no cached CPU hint from
    /// before the pinning can answer.
    /// </summary>
    private void LocalPolicyFollowsTheCpu()
    {
        using PageAllocator pages = NewPageAllocator(SmallHeap);
        NumaTopology topology = pages.Heap.Topology;
        for (int node = 0; node < topology.NodeCount; node++)
        {
            if (!topology.Nodes[node].HasCpus)
                continue;
            int cpu = topology.Nodes[node].Cpus[0];
            var wrong = new List<string>();
            int target = node;
            var thread = new Thread(() => AllocateLocally(pages, cpu, target, wrong)) { IsBackground = true, Name = "local-" + node };
            thread.Start();
            thread.Join();
            _tap.Report(wrong.Count == 0, $"node {node}: a thread pinned to cpu {cpu} allocates on node {node} under the local policy", string.Join('\n', wrong));
        }
    }

    private void AllocateLocally(PageAllocator pages, int cpu, int node, List<string> wrong)
    {
        try
        {
            Native.PinCurrentThread(cpu);
            int actualCpu = _platform.QueryCurrentCpu(out int actualNode);
            if (actualCpu != cpu || actualNode != node)
                wrong.Add($"getcpu after pinning: cpu {actualCpu} node {actualNode}");
            if (PageAllocator.ThreadPolicy.Mode != MemoryPolicyMode.Local)
                wrong.Add($"thread policy is {PageAllocator.ThreadPolicy}, not local");
            foreach (int order in new[] { 0, PageHeap.MaxOrder })
            {
                void* p = pages.AllocPages(order);
                if (p is null)
                {
                    wrong.Add($"order {order}: refused");
                    continue;
                }

                int logical = pages.Heap.TryLocate(p, out PageLocation location) ? location.Node : -1;
                int[] where = PageProbe.TouchAndLocate(_platform, p, BytesOf(order));
                if (logical != node || !PageProbe.AllOn(where, node))
                    wrong.Add($"order {order}: handed out for node {logical}, lives on {PageProbe.Describe(where)}");
                pages.FreePages(p, order);
            }
        }
#pragma warning disable CA1031 // Reported as this node's failure by the caller.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            wrong.Add(ex.ToString());
        }
    }
}
