using System.Globalization;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Zonelists;

namespace Numalloc.VmProbe;

internal sealed unsafe partial class Checks
{
    /// <summary>
    /// Each node's blocks carry the kernel policy the allocator set (get_mempolicy on the block):
    /// MPOL_PREFERRED by default, MPOL_BIND with bind=strict, both naming the node's physical node.
    /// </summary>
    private void BlocksCarryTheirNodePolicy()
    {
        foreach ((string config, BindMode mode) in new[] { ("bind=preferred", BindMode.Preferred), ("bind=strict", BindMode.Strict) })
        {
            using PageAllocator pages = NewPageAllocator(SmallHeap + ";" + config);
            var wrong = new List<string>();
            for (int node = 0; node < pages.Heap.Nodes.Length; node++)
            {
                int physical = pages.Heap.Topology.Nodes[node].PhysicalNode;
                byte* block = pages.Heap.Layout.AddressOfBlock(pages.Heap.Layout.FirstBlockOfNode(node));
                if (!_platform.TryQueryBinding(block, out BindMode actualMode, out int actualNode))
                    wrong.Add($"node {node}: block has the default policy");
                else if (actualMode != mode || actualNode != physical)
                    wrong.Add($"node {node}: block is {actualMode} on node {actualNode}, expected {mode} on node {physical}");
            }

            _tap.Report(wrong.Count == 0, $"{config}: every node's first block is {mode} to its physical node (get_mempolicy)", string.Join('\n', wrong));
        }
    }

    /// <summary>
    /// For every node: pages of order 0, 4 and the largest order, from its Normal and its Movable
    /// zone, live on that node once touched (move_pages). ThisNodeOnly keeps the allocator from
    /// falling back to another node, so any other answer is a binding fault.
    /// </summary>
    private void PagesOfEveryOrderLiveOnTheirNode()
    {
        using PageAllocator pages = NewPageAllocator(SmallHeap);
        int[] orders = [0, 4, PageHeap.MaxOrder];
        for (int node = 0; node < pages.Heap.Nodes.Length; node++)
        {
            var wrong = new List<string>();
            foreach (int order in orders)
            {
                foreach (PageAllocFlags zone in new[] { PageAllocFlags.None, PageAllocFlags.Movable })
                {
                    void* p = pages.AllocPages(order, zone | PageAllocFlags.ThisNodeOnly, node);
                    string what = $"order {order} ({(zone == PageAllocFlags.Movable ? "movable" : "normal")})";
                    if (p is null)
                    {
                        wrong.Add(what + ": refused");
                        continue;
                    }

                    int[] where = PageProbe.TouchAndLocate(_platform, p, BytesOf(order));
                    if (!PageProbe.AllOn(where, node))
                        wrong.Add($"{what}: {PageProbe.Describe(where)}");
                    pages.FreePages(p, order);
                }
            }

            _tap.Report(wrong.Count == 0,
                string.Create(CultureInfo.InvariantCulture, $"node {node}: pages of order {string.Join('/', orders)}, normal and movable, live on node {node}"),
                string.Join('\n', wrong));
        }
    }

    /// <summary>
    /// For every node: once its zone has grown past its first block (growth onlines and binds a new
    /// one), the pages of the grown block live on the node too. The heap starts each node with one
    /// 16 MiB block, so a few 4 MiB allocations force growth.
    /// </summary>
    private void GrownBlocksLiveOnTheirNode()
    {
        using PageAllocator pages = NewPageAllocator("normal=16M;movable=0;normal_max=64M;movable_max=0;decay_ms=-1");
        const int order = PageHeap.MaxOrder;
        for (int node = 0; node < pages.Heap.Nodes.Length; node++)
        {
            int firstBlock = pages.Heap.Layout.FirstBlockOfNode(node);
            var taken = new List<nint>();
            string result = "no allocation reached a second block";
            bool ok = false;
            for (int i = 0; i < 16; i++)
            {
                void* p = pages.AllocPages(order, PageAllocFlags.ThisNodeOnly, node);
                if (p is null)
                {
                    result = $"refused after {taken.Count} allocations of order {order}";
                    break;
                }

                taken.Add((nint)p);
                if (pages.Heap.TryLocate(p, out PageLocation location) && location.Block != firstBlock)
                {
                    int[] where = PageProbe.TouchAndLocate(_platform, p, BytesOf(order));
                    ok = PageProbe.AllOn(where, node);
                    result = $"block {location.Block - firstBlock} of the node (after {taken.Count} allocations): {PageProbe.Describe(where)}";
                    break;
                }
            }

            foreach (nint p in taken)
                pages.FreePages((void*)p, order);
            _tap.Report(ok, $"node {node}: pages of a block onlined by growth live on node {node}", ok ? null : result);
        }
    }
}
