using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Objects;

/// <summary>
/// Every size class's slabs (<see cref="SlabCache"/>) over one page heap, and what they share: the
/// metadata table, carving slabs out of Normal-zone pages of a node and giving them back, and the
/// arithmetic from an object's address to its node, page and slab.
/// </summary>
/// <remarks>
/// Descriptors of a slab's pages: every page has <see cref="PageDescriptor.Flags"/> = class + 1 (1..
/// <see cref="SizeClasses.Count"/>) and <see cref="PageDescriptor.Owner"/> = the head page index; the
/// head also has <see cref="PageState.Slab"/> and the slab's order (set by the buddy allocator). They
/// are written by the carver before any object of the slab is handed out, and cleared by the releaser
/// after the last object came back and before the pages go back to the zone.
/// </remarks>
internal sealed unsafe class SlabHeap : IDisposable
{
    /// <summary>Empty slabs a (class, node) keeps for reuse before giving further empty ones back at once.</summary>
    public const int KeepEmptySlabs = 1;

    [ThreadStatic]
    private static long t_reportHeapId;

    [ThreadStatic]
    private static nint t_reportAddress;

    private static long s_lastId;

    private readonly PageAllocator _pages;
    private readonly PageHeap _heap;
    private readonly PageDescriptor* _descriptors;
    private readonly byte* _base;
    private readonly nuint _sizeBytes;
    private readonly int _nodeShift;
    private readonly int _pagesPerBlockShift;
    private readonly int[] _memoryNodeOfCpu;
    private readonly SlabSideTable _metas;
    private readonly SlabCache[] _classes;
    private readonly long _id;
    private long _carved;
    private long _released;
    private long _doubleFrees;
    private long _badItems;

    /// <summary>Creates empty slab lists for every class and node of <paramref name="pages"/>' heap.</summary>
    /// <param name="pages">The page allocator (its heap's Normal zones supply the slabs).</param>
    /// <param name="platform">Where the metadata table is reserved.</param>
    /// <param name="check">Also keep a bitmap of objects handed to users (<c>on_bad_free=check</c>).</param>
    /// <exception cref="PlatformException">A reservation failed.</exception>
    public SlabHeap(PageAllocator pages, IPlatform platform, bool check)
    {
        _pages = pages;
        _heap = pages.Heap;
        _descriptors = _heap.Descriptors;
        HeapLayout layout = _heap.Layout;
        _base = layout.Base;
        _sizeBytes = layout.SizeBytes;
        _nodeShift = layout.BlockShift + layout.BlocksPerNodeShift;
        _pagesPerBlockShift = layout.PagesPerBlockShift;
        NumaTopology topology = _heap.Topology;
        _memoryNodeOfCpu = new int[topology.PossibleCpuCount];
        for (int cpu = 0; cpu < _memoryNodeOfCpu.Length; cpu++)
            _memoryNodeOfCpu[cpu] = topology.MemoryNodeFor(topology.NodeOfCpu(cpu));
        _id = Interlocked.Increment(ref s_lastId); // Atomic only: unique ids, orders nothing.
        _metas = new SlabSideTable(platform, layout, SlabMeta.Bytes);
        try
        {
            if (check)
                LiveBits = new SlabSideTable(platform, layout, SlabMeta.BitmapWords * sizeof(ulong));
            _classes = new SlabCache[ObjectClassTable.Count];
            for (int c = 0; c < _classes.Length; c++)
                _classes[c] = new SlabCache(this, c);
        }
        catch
        {
            _metas.Dispose();
            throw;
        }
    }

    /// <summary>Nodes of the heap.</summary>
    public int NodeCount => _heap.Nodes.Length;

    /// <summary>
    /// Under <c>on_bad_free=check</c>: per slab, bit i set while object i is with a user (a table
    /// parallel to the metadata); null otherwise.
    /// </summary>
    public SlabSideTable? LiveBits { get; }

    /// <summary>The slabs of <paramref name="sizeClass"/>.</summary>
    public SlabCache Class(int sizeClass) => _classes[sizeClass];

    /// <summary>Bytes committed for the slab metadata tables (and the check bitmaps under <c>on_bad_free=check</c>).</summary>
    public long MetadataBytes => _metas.CommittedBytes + (LiveBits?.CommittedBytes ?? 0);

    /// <summary>Slabs carved so far.</summary>
    public long SlabsCarved => Interlocked.Read(ref _carved);

    /// <summary>Slabs given back so far.</summary>
    public long SlabsReleased => Interlocked.Read(ref _released);

    /// <summary>Double frees caught when an object reached its slab.</summary>
    public long DoubleFrees => Interlocked.Read(ref _doubleFrees);

    /// <summary>The memory node a cache of <paramref name="cpu"/> (a possible CPU) holds objects of.</summary>
    public int MemoryNodeOfCpu(int cpu) => _memoryNodeOfCpu[cpu];

    /// <summary>The node of a heap address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int NodeOfAddress(nint address) => (int)((nuint)((byte*)address - _base) >> _nodeShift);

    /// <summary>The memory block of a page.</summary>
    public int BlockOfPage(int page) => page >> _pagesPerBlockShift;

    /// <summary>The address of a page.</summary>
    public nint AddressOfPage(int page) => (nint)(_base + ((nuint)(uint)page << HeapLayout.PageShift));

    /// <summary>The metadata of the slab headed by <paramref name="head"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SlabMeta* MetaOf(int head) => (SlabMeta*)_metas.EntryOf(head);

    /// <summary>Whether the block holding <paramref name="page"/> is Online (not isolated, not going away).</summary>
    public bool IsOnlinePage(int page) => _heap.Blocks.State(page >> _pagesPerBlockShift) == BlockState.Online;

    /// <summary>Whether the block holding the heap address <paramref name="item"/> is Online.</summary>
    public bool IsOnline(nint item) => _heap.IsCacheable((void*)item);

    /// <summary>
    /// The head page of the live slab of <paramref name="sizeClass"/> holding <paramref name="item"/> at an
    /// object boundary, or -1 when the descriptors say otherwise.
    /// </summary>
    public int HeadOfObject(nint item, int sizeClass)
    {
        nuint offset = (nuint)((byte*)item - _base);
        if (offset >= _sizeBytes)
            return -1;
        PageDescriptor* d = _descriptors + (offset >> HeapLayout.PageShift);
        if (d->Flags != sizeClass + 1)
            return -1;
        int head = (int)d->Owner;
        PageDescriptor* h = _descriptors + head;
        if (h->State != PageState.Slab || h->Flags != d->Flags)
            return -1;
        nuint relative = offset - ((nuint)(uint)head << HeapLayout.PageShift);
        ObjectClassInfo* info = ObjectClassTable.Info + sizeClass;
        return (nuint)(uint)((relative * info->Magic) >> 32) * (nuint)info->Size == relative ? head : -1;
    }

    /// <summary>
    /// Carves a new slab of <paramref name="sizeClass"/> from <paramref name="node"/>'s Normal zone (which
    /// may grow), writes its descriptors and metadata (every object free) and returns its head page.
    /// Takes the zone lock; call it holding no slab lock.
    /// </summary>
    /// <returns>The head page, or -1 when the zone cannot serve.</returns>
    public int Carve(int node, int sizeClass)
    {
        ObjectClassInfo info = ObjectClassTable.Info[sizeClass];
        Zone zone = _heap.ZoneOf(node, ZoneType.Normal);
        int head = zone.TryAllocate(info.SlabOrder, PageAllocFlags.None, PageState.Slab);
        if (head == PageDescriptor.NoPage)
            return -1;
        try
        {
            _metas.EnsureCommitted(head);
            LiveBits?.EnsureCommitted(head);
        }
        catch (PlatformException)
        {
            _heap.FreePages(_heap.AddressOfPage(head), info.SlabOrder);
            return -1;
        }

        byte flags = (byte)(sizeClass + 1);
        int pages = 1 << info.SlabOrder;
        for (int page = head; page < head + pages; page++)
        {
            _descriptors[page].Flags = flags;
            _descriptors[page].Owner = (uint)head;
        }

        SlabMeta* meta = MetaOf(head);
        meta->Next = meta->Prev = -1;
        meta->FreeCount = info.ObjectsPerSlab;
        meta->Capacity = info.ObjectsPerSlab;
        meta->Class = (byte)sizeClass;
        meta->List = SlabList.Full;
        meta->FirstFreeWord = 0;
        for (int word = 0; word < SlabMeta.BitmapWords; word++)
        {
            int first = word * 64;
            int bits = Math.Clamp(info.ObjectsPerSlab - first, 0, 64);
            meta->Free[word] = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        }

        int cpuNode = _heap.Topology.NodeOfCpu(PlatformCpu.Current());
        _pages.CountNumaStat(node, node, cpuNode, interleave: false, pages);
        Interlocked.Increment(ref _carved); // Atomic only: a statistic.
        return head;
    }

    /// <summary>
    /// Gives an empty slab (taken off every list) back to its zone: clears its pages' descriptors, then
    /// frees the block. Call it holding no slab lock.
    /// </summary>
    public void Release(int head, int order)
    {
        for (int page = head; page < head + (1 << order); page++)
        {
            _descriptors[page].Flags = 0;
            _descriptors[page].Owner = 0;
        }
        _heap.FreePages(_heap.AddressOfPage(head), order);
        Interlocked.Increment(ref _released); // Atomic only: a statistic.
    }

    /// <summary>Gives back every empty slab in blocks passing <paramref name="blockFilter"/> (all when null); returns the pages.</summary>
    public long ReleaseEmpty(Func<int, bool>? blockFilter)
    {
        long pages = 0;
        foreach (SlabCache cache in _classes)
            pages += cache.ReleaseEmpty(blockFilter);
        return pages;
    }

    /// <summary>
    /// Counts a double free caught at a slab and, if the calling thread has none pending yet, records it
    /// for the next public call on this thread to report (<see cref="TakeReport"/>).
    /// </summary>
    public void NoteDoubleFree(nint item)
    {
        Interlocked.Increment(ref _doubleFrees); // Atomic only: a statistic.
        if (t_reportHeapId == 0)
        {
            t_reportHeapId = _id;
            t_reportAddress = item;
        }
    }

    /// <summary>Counts an item a cache handed back that is not an object of this class (a bug, or memory corrupted by a user).</summary>
    public void NoteBadItem(nint item)
    {
        Interlocked.Increment(ref _badItems); // Atomic only: a statistic.
        NoteDoubleFree(item);
    }

    /// <summary>The double free this heap recorded on the calling thread, if any (then forgotten).</summary>
    public bool TakeReport(out nint address)
    {
        if (t_reportHeapId != _id)
        {
            address = 0;
            return false;
        }
        address = t_reportAddress;
        t_reportHeapId = 0;
        t_reportAddress = 0;
        return true;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _metas.Dispose();
        LiveBits?.Dispose();
    }
}
