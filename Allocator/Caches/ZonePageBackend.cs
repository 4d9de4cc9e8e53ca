using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Caches;

/// <summary>
/// One zone as the backend of the order-0 page caches: refills take a batch of pages from the zone
/// under one hold of its lock (marked <see cref="PageState.Cached"/>), flushes give them back (pages
/// of isolated blocks land on the zone's isolated lists), and the cacheable check is the one-byte
/// block-state load.
/// </summary>
internal sealed unsafe class ZonePageBackend : ICacheBackend
{
    private readonly PageAllocator _pages;
    private readonly Zone _zone;
    private readonly PageAllocFlags _flags;

    public ZonePageBackend(PageAllocator pages, Zone zone)
    {
        _pages = pages;
        _zone = zone;
        _flags = zone.Type == ZoneType.Movable ? PageAllocFlags.Movable : PageAllocFlags.None;
    }

    /// <inheritdoc/>
    public int RefillBatch(int cpu, Span<nint> into)
    {
        Span<int> pages = stackalloc int[Math.Min(into.Length, 512)];
        int taken = _zone.AllocateBatch(0, _flags, pages, PageState.Cached);
        PageHeap heap = _pages.Heap;
        for (int i = 0; i < taken; i++)
            into[i] = (nint)heap.AddressOfPage(pages[i]);
        if (taken > 0)
        {
            // numastat at batch granularity: the pages were meant for this zone's node (the caches are
            // per zone) and are counted when they leave the zone, not again on every cache hit.
            int cpuNode = heap.Topology.NodeOfCpu(cpu);
            _pages.CountNumaStat(_zone.Node, _zone.Node, cpuNode, interleave: false, taken);
        }
        return taken;
    }

    /// <inheritdoc/>
    public void FlushBatch(ReadOnlySpan<nint> items)
    {
        PageHeap heap = _pages.Heap;
        Span<int> pages = stackalloc int[Math.Min(items.Length, 512)];
        while (!items.IsEmpty)
        {
            int n = Math.Min(items.Length, pages.Length);
            for (int i = 0; i < n; i++)
                pages[i] = heap.Layout.PageOf((void*)items[i]);
            _zone.FreeBatch(pages[..n], 0);
            items = items[n..];
        }
    }

    /// <inheritdoc/>
    public bool IsCacheable(nint item) => _pages.Heap.IsCacheable((void*)item);
}
