using System.Numerics;
using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Objects;

internal sealed unsafe partial class ObjectHeap
{
    /// <summary>
    /// Allocates <paramref name="size"/> bytes aligned to <paramref name="alignment"/> (0 or a power of
    /// two): a small object, a page run or a huge mapping. With <paramref name="node"/> &gt;= 0 only that
    /// node's memory; else where the calling thread's policy says.
    /// </summary>
    /// <returns>The memory, or null when it could not be served (after draining every cache).</returns>
    /// <exception cref="ArgumentException">The alignment is not a power of two, or the size overflows.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="node"/> is not a node of the heap.</exception>
    public void* AllocateSlow(nuint size, nuint alignment, int node)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if ((alignment & (alignment - 1)) != 0)
            ObjectThrowHelper.ThrowBadAlignment(alignment);
        if (size > (nuint)nint.MaxValue)
            ObjectThrowHelper.ThrowSizeOverflow(nameof(size));
        if (alignment > (nuint)nint.MaxValue / 2)
            ObjectThrowHelper.ThrowSizeOverflow(nameof(alignment));
        if (node >= _topology.NodeCount)
            throw new ArgumentOutOfRangeException(nameof(node), node, $"Node ids are 0..{_topology.NodeCount - 1}.");
        if (size == 0)
            size = 1; // a unique, freeable pointer
        if (alignment <= HeapLayout.PageSize)
        {
            nuint rounded = alignment > 8 ? (size + alignment - 1) & ~(alignment - 1) : size;
            if (rounded <= SizeClasses.MaxSmallSize)
            {
                // Every class at or above a multiple of a power of two up to 4 KiB is a multiple of it,
                // and slabs start on a page: the object comes out aligned.
                Debug.Assert(alignment <= 8 || SizeClasses.SizeOf(SizeClasses.ClassOf(rounded)) % (int)alignment == 0);
                return AllocateSmall(rounded, node);
            }
        }
        if (size <= MaxLargeBytes && alignment <= MaxLargeBytes)
            return AllocateLarge(size, alignment, node);
        return AllocateHuge(size, alignment, node);
    }

    /// <summary>
    /// The free slow path: every pointer the fast path declined. Null does nothing; anything that is not
    /// a live allocation of this heap is reported (see <see cref="BadFreeAction"/>) and changes nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">A bad free (report and check modes), or one found earlier at a slab.</exception>
    public void FreeSlow(void* p)
    {
        if (p == null)
            return;
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        nuint offset = (nuint)((byte*)p - _base);
        if (offset >= _sizeBytes)
        {
            if (!_huge.TryUnmap(p))
                ReportBadFree(p, "not a pointer this allocator handed out (outside its heap, and no live mapping starts there)");
            return;
        }
        PageDescriptor* d = _descriptors + (offset >> HeapLayout.PageShift);
        int sizeClass = d->Flags - 1;
        if ((uint)sizeClass < (uint)ObjectClassTable.Count)
        {
            if (_slabs.HeadOfObject((nint)p, sizeClass) < 0)
                ReportBadFree(p, "an interior pointer (not the start of an object)");
            FreeSmall(p, sizeClass);
            ReportDeferred();
            return;
        }
        FreeLarge(p, d);
    }

    /// <summary>The bytes usable at <paramref name="p"/> (at least what was asked for); 0 for null.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="p"/> is not the start of a live allocation of this heap.</exception>
    public nuint UsableSize(void* p)
    {
        if (p == null)
            return 0;
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        nuint offset = (nuint)((byte*)p - _base);
        if (offset >= _sizeBytes)
        {
            if (!_huge.TryFind(p, out nuint bytes, out _))
                ObjectThrowHelper.ThrowNotAnAllocation(p, "outside the heap, and no live mapping starts there");
            return bytes;
        }
        PageDescriptor* d = _descriptors + (offset >> HeapLayout.PageShift);
        int sizeClass = d->Flags - 1;
        if ((uint)sizeClass < (uint)ObjectClassTable.Count)
        {
            if (_slabs.HeadOfObject((nint)p, sizeClass) < 0)
                ObjectThrowHelper.ThrowNotAnAllocation(p, "an interior pointer");
            return (nuint)ObjectClassTable.Info[sizeClass].Size;
        }
        if (!IsLargeRunHead(p, d))
            ObjectThrowHelper.ThrowNotAnAllocation(p, "not the start of a live allocation");
        return (nuint)d->Owner << HeapLayout.PageShift;
    }

    /// <summary>The node of the memory at <paramref name="p"/>, or -1 when it is not this heap's.</summary>
    public int NodeOf(void* p)
    {
        nuint offset = (nuint)((byte*)p - _base);
        if (offset < _sizeBytes)
            return (int)(offset >> _nodeShift);
        return p != null && _huge.TryFind(p, out _, out int node) ? node : -1;
    }

    /// <summary>
    /// Resizes the allocation at <paramref name="p"/> to <paramref name="size"/> bytes, in place when the
    /// new size keeps its size class (or, for page runs and mappings, fits and uses more than half),
    /// else by allocating, copying and freeing. Null allocates.
    /// </summary>
    /// <returns>The memory, or null when a move was needed and could not be served (<paramref name="p"/> is then untouched).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="p"/> is not a live allocation (reported as a bad free).</exception>
    /// <exception cref="ArgumentException">The size overflows.</exception>
    public void* Reallocate(void* p, nuint size)
    {
        if (p == null)
            return AllocateSlow(size, 0, -1);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (size > (nuint)nint.MaxValue)
            ObjectThrowHelper.ThrowSizeOverflow(nameof(size));
        nuint old = UsableSizeForReallocate(p);
        nuint wanted = size == 0 ? 1 : size;
        if (old <= SizeClasses.MaxSmallSize)
        {
            if (wanted <= SizeClasses.MaxSmallSize && (nuint)SizeClasses.SizeOf(SizeClasses.ClassOf(wanted)) == old)
                return p;
        }
        else if (wanted <= old && wanted > old / 2 && wanted > SizeClasses.MaxSmallSize)
        {
            return p;
        }
        void* moved = AllocateSlow(size, 0, -1);
        if (moved == null)
            return null;
        Buffer.MemoryCopy(p, moved, (long)wanted, (long)Math.Min(old, wanted));
        FreeSlow(p);
        return moved;
    }

    private nuint UsableSizeForReallocate(void* p)
    {
        try
        {
            return UsableSize(p);
        }
        catch (InvalidOperationException e)
        {
            ReportBadFree(p, "Reallocate of " + e.Message);
            throw;
        }
    }

    /*
     * Large allocations: a buddy block of the smallest order that holds the size (and its alignment:
     * buddy blocks are naturally aligned), whose unneeded tail goes straight back to the zone (the
     * kernel's alloc_pages_exact). The run's head page says Allocated, flags LargeRunFlag and, in Owner,
     * its page count; a free re-checks all three under the zone lock, so a page-level double free or an
     * interior pointer is caught at once and two racing frees cannot both pass.
     */
    private void* AllocateLarge(nuint size, nuint alignment, int node)
    {
        int pages = (int)((size + HeapLayout.PageSize - 1) >> HeapLayout.PageShift);
        int span = Math.Max(pages, (int)(alignment >> HeapLayout.PageShift));
        int order = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)span));
        void* p = node >= 0
            ? _pages.AllocPages(order, PageAllocFlags.ThisNodeOnly, node)
            : _pages.AllocPages(order);
        if (p == null)
            return null;
        int page = _heap.Layout.PageOf(p);
        PageDescriptor* head = _descriptors + page;
        head->Flags = LargeRunFlag;
        head->Owner = (uint)pages;
        if (pages < 1 << order)
        {
            bool trimmed = _heap.TryFreeRun((byte*)p + ((nuint)(uint)pages << HeapLayout.PageShift), (1 << order) - pages, 0);
            Debug.Assert(trimmed, "the tail of a block just allocated is ours");
        }
        Interlocked.Increment(ref _largeAllocations); // Atomic only: a statistic.
        Interlocked.Add(ref _largePages, pages); // Atomic only: a statistic.
        return p;
    }

    private void FreeLarge(void* p, PageDescriptor* d)
    {
        if (!IsLargeRunHead(p, d))
        {
            ReportBadFree(p, ((nuint)p & (HeapLayout.PageSize - 1)) != 0 || IsInsideLiveRun(p)
                ? "an interior pointer (not the start of an allocation)"
                : "not a live allocation: already freed (a double free), or never handed out");
        }
        int pages = (int)d->Owner;
        if (!_heap.TryFreeRun(p, pages, LargeRunFlag))
            ReportBadFree(p, "not a live allocation (freed concurrently by another thread: a double free)");
        Interlocked.Decrement(ref _largeAllocations); // Atomic only: a statistic.
        Interlocked.Add(ref _largePages, -pages); // Atomic only: a statistic.
    }

    // For the message of a bad free only: whether a live large run starts at most a largest buddy
    // block before p (inside p's memory block) and reaches over it. Racy, like every diagnosis.
    private bool IsInsideLiveRun(void* p)
    {
        int page = _heap.Layout.PageOf(p);
        int blockStart = _heap.Layout.FirstPageOfBlock(_heap.Layout.BlockOfPage(page));
        for (int head = page; head >= Math.Max(blockStart, page - (1 << PageHeap.MaxOrder)); head--)
        {
            PageDescriptor* d = _descriptors + head;
            if (d->State == PageState.Allocated && d->Flags == LargeRunFlag)
                return head + (int)d->Owner > page;
            if (d->State is PageState.Free or PageState.Isolated or PageState.Slab)
                return false;
        }
        return false;
    }

    // A racy pre-check (the zone re-checks under its lock before freeing).
    private static bool IsLargeRunHead(void* p, PageDescriptor* d) =>
        ((nuint)p & (HeapLayout.PageSize - 1)) == 0 && d->State == PageState.Allocated && d->Flags == LargeRunFlag && d->Owner != 0;

    /*
     * Huge allocations: their own mapping, reserved with the alignment, committed and bound to the
     * physical node behind the chosen logical node (with the heap's bind mode), and recorded in the side
     * table that answers Free, UsableSize and NodeOf.
     */
    private void* AllocateHuge(nuint size, nuint alignment, int node)
    {
        nuint bytes = (size + HeapLayout.PageSize - 1) & ~(nuint)(HeapLayout.PageSize - 1);
        int target = node;
        if (target < 0)
        {
            target = PageAllocator.MayHaveThreadPolicy
                ? _pages.PolicyNode(PageAllocator.ThreadPolicy, out _)
                : _memoryNodeOfCpu[CurrentCpu()];
        }
        void* p = _huge.TryMap(bytes, Math.Max(alignment, HeapLayout.PageSize), target, _topology.Nodes[target].PhysicalNode, _bindMode);
        if (p == null && DrainForMemory())
            p = _huge.TryMap(bytes, Math.Max(alignment, HeapLayout.PageSize), target, _topology.Nodes[target].PhysicalNode, _bindMode);
        return p;
    }
}
