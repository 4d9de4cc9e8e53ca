using System.Numerics;
using Numalloc.Caches;
using Numalloc.Pages;

namespace Numalloc.Objects;

/// <summary>
/// The slabs of one size class on every node (the kernel's <c>kmem_cache</c>), and the backend of
/// that class's per-CPU caches: a refill takes objects from the slabs of the refilling CPU's memory
/// node, a flush gives each object back to the slab it came from, whatever its node.
/// </summary>
/// <remarks>
/// <para>Objects move in batches under one hold of the (class, node) lock. A slab's free objects are
/// the set bits of its bitmap, so an object freed twice is caught here when it reaches its slab: its
/// bit is already set; the second free is counted and reported (<see cref="SlabHeap.NoteDoubleFree"/>)
/// and otherwise ignored, so the slab stays consistent.</para>
/// <para>Hysteresis: a slab whose last object comes back stays on the empty list while the node keeps
/// fewer than <see cref="SlabHeap.KeepEmptySlabs"/> empty slabs of the class; beyond that its pages go
/// back to the zone at once. Slabs of blocks that are not Online (isolated, going offline) are never
/// refilled from and go back to their zone as soon as they are empty.</para>
/// <para>Lock order: (class, node) lock → zone lock. Pages for new slabs are taken outside the lock.</para>
/// </remarks>
internal sealed unsafe class SlabCache : ICacheBackend
{
    private readonly SlabHeap _slabs;
    private readonly SlabCacheNode[] _nodes;
    private readonly int _class;
    private readonly int _size;
    private readonly uint _magic;
    private readonly int _capacity;
    private readonly int _order;

    /// <summary>Creates the (empty) slab lists of <paramref name="sizeClass"/> on every node of <paramref name="slabs"/>.</summary>
    public SlabCache(SlabHeap slabs, int sizeClass)
    {
        _slabs = slabs;
        _class = sizeClass;
        ObjectClassInfo info = ObjectClassTable.Info[sizeClass];
        _size = info.Size;
        _magic = info.Magic;
        _capacity = info.ObjectsPerSlab;
        _order = info.SlabOrder;
        _nodes = new SlabCacheNode[slabs.NodeCount];
        for (int node = 0; node < _nodes.Length; node++)
            _nodes[node] = new SlabCacheNode(node);
    }

    /// <summary>The size class.</summary>
    public int SizeClass => _class;

    /// <summary>The object size.</summary>
    public int ObjectSize => _size;

    /// <summary>Objects per slab.</summary>
    public int ObjectsPerSlab => _capacity;

    /// <summary>Buddy order of a slab.</summary>
    public int SlabOrder => _order;

    /// <summary>The lists of one node.</summary>
    public SlabCacheNode NodeAt(int node) => _nodes[node];

    /// <inheritdoc/>
    public int RefillBatch(int cpu, Span<nint> into) => TakeFromNode(_slabs.MemoryNodeOfCpu(cpu), into);

    /// <inheritdoc/>
    public void FlushBatch(ReadOnlySpan<nint> items)
    {
        int released = -1; // chain of slabs to give back, through SlabMeta.Next
        int i = 0;
        while (i < items.Length)
        {
            int node = _slabs.NodeOfAddress(items[i]);
            SlabCacheNode n = _nodes[node];
            lock (n.Lock)
            {
                do
                {
                    FreeLocked(n, items[i], ref released);
                    i++;
                }
                while (i < items.Length && _slabs.NodeOfAddress(items[i]) == node);
            }
        }
        ReleaseChain(released);
    }

    /// <inheritdoc/>
    public bool IsCacheable(nint item) => _slabs.IsOnline(item);

    /// <summary>
    /// Takes up to <paramref name="into"/>.Length free objects of this class from <paramref name="node"/>'s
    /// slabs: partial slabs first, then empty ones, then new slabs carved from the node's Normal zone
    /// (which may grow). Never another node's memory.
    /// </summary>
    /// <returns>How many were written to the start of <paramref name="into"/>; 0 when the node has no memory left for the class.</returns>
    public int TakeFromNode(int node, Span<nint> into)
    {
        SlabCacheNode n = _nodes[node];
        int taken;
        lock (n.Lock)
        {
            taken = TakeLocked(n, into);
        }
        while (taken < into.Length)
        {
            int head = _slabs.Carve(node, _class);
            if (head < 0)
                break;
            lock (n.Lock)
            {
                n.Slabs++;
                n.FreeObjects += _capacity;
                SlabMeta* meta = _slabs.MetaOf(head);
                taken += TakeFromSlabLocked(n, meta, head, into[taken..]);
                if (meta->FreeCount > 0)
                    Link(ref n.Partial, meta, head, SlabList.Partial);
            }
        }
        return taken;
    }

    /// <summary>
    /// Gives back every empty slab of this class whose memory block passes <paramref name="blockFilter"/>
    /// (every empty slab when null), on every node.
    /// </summary>
    /// <returns>Pages given back to the zones.</returns>
    public long ReleaseEmpty(Func<int, bool>? blockFilter)
    {
        long pages = 0;
        foreach (SlabCacheNode n in _nodes)
        {
            int released = -1;
            int count = 0;
            lock (n.Lock)
            {
                int head = n.Empty;
                while (head != -1)
                {
                    SlabMeta* meta = _slabs.MetaOf(head);
                    int next = meta->Next;
                    if (blockFilter is null || blockFilter(_slabs.BlockOfPage(head)))
                    {
                        Unlink(ref n.Empty, meta, head);
                        n.EmptyCount--;
                        n.Slabs--;
                        n.FreeObjects -= _capacity;
                        meta->List = SlabList.Releasing;
                        meta->Next = released;
                        released = head;
                        count++;
                    }
                    head = next;
                }
            }
            ReleaseChain(released);
            pages += (long)count << _order;
        }
        return pages;
    }

    private int TakeLocked(SlabCacheNode n, Span<nint> into)
    {
        int taken = 0;
        int head = n.Partial;
        while (taken < into.Length && head != -1)
        {
            SlabMeta* meta = _slabs.MetaOf(head);
            int next = meta->Next;
            // Refills check the block state: objects of an isolated block never enter a cache again.
            if (_slabs.IsOnlinePage(head))
            {
                taken += TakeFromSlabLocked(n, meta, head, into[taken..]);
                if (meta->FreeCount == 0)
                {
                    Unlink(ref n.Partial, meta, head);
                    meta->List = SlabList.Full;
                }
            }
            head = next;
        }
        head = n.Empty;
        while (taken < into.Length && head != -1)
        {
            SlabMeta* meta = _slabs.MetaOf(head);
            int next = meta->Next;
            if (_slabs.IsOnlinePage(head))
            {
                Unlink(ref n.Empty, meta, head);
                n.EmptyCount--;
                taken += TakeFromSlabLocked(n, meta, head, into[taken..]);
                if (meta->FreeCount > 0)
                    Link(ref n.Partial, meta, head, SlabList.Partial);
                else
                    meta->List = SlabList.Full;
            }
            head = next;
        }
        return taken;
    }

    private int TakeFromSlabLocked(SlabCacheNode n, SlabMeta* meta, int head, Span<nint> into)
    {
        nint slabBase = _slabs.AddressOfPage(head);
        int taken = 0;
        int word = meta->FirstFreeWord;
        while (taken < into.Length && word < SlabMeta.BitmapWords)
        {
            ulong bits = meta->Free[word];
            while (bits != 0 && taken < into.Length)
            {
                int bit = BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                into[taken++] = slabBase + (nint)(((word << 6) + bit) * _size);
            }
            meta->Free[word] = bits;
            if (bits == 0)
                word++;
        }
        meta->FirstFreeWord = word;
        meta->FreeCount -= taken;
        n.FreeObjects -= taken;
        return taken;
    }

    private void FreeLocked(SlabCacheNode n, nint item, ref int released)
    {
        int head = _slabs.HeadOfObject(item, _class);
        if (head < 0)
        {
            _slabs.NoteBadItem(item);
            return;
        }
        SlabMeta* meta = _slabs.MetaOf(head);
        nuint offset = (nuint)(item - _slabs.AddressOfPage(head));
        int index = (int)((offset * _magic) >> 32);
        int word = index >> 6;
        ulong bit = 1UL << (index & 63);
        if ((meta->Free[word] & bit) != 0)
        {
            // Already free in its slab: a double free that went through two caches. Ignore it.
            _slabs.NoteDoubleFree(item);
            return;
        }
        meta->Free[word] |= bit;
        if (word < meta->FirstFreeWord)
            meta->FirstFreeWord = word;
        int free = ++meta->FreeCount;
        n.FreeObjects++;
        if (free == _capacity)
        {
            if (meta->List == SlabList.Partial)
                Unlink(ref n.Partial, meta, head);
            if (n.EmptyCount < SlabHeap.KeepEmptySlabs && _slabs.IsOnlinePage(head))
            {
                Link(ref n.Empty, meta, head, SlabList.Empty);
                n.EmptyCount++;
            }
            else
            {
                n.Slabs--;
                n.FreeObjects -= _capacity;
                meta->List = SlabList.Releasing;
                meta->Next = released;
                released = head;
            }
        }
        else if (free == 1)
        {
            Link(ref n.Partial, meta, head, SlabList.Partial);
        }
    }

    private void ReleaseChain(int head)
    {
        while (head != -1)
        {
            int next = _slabs.MetaOf(head)->Next;
            _slabs.Release(head, _order);
            head = next;
        }
    }

    private void Link(ref int list, SlabMeta* meta, int head, SlabList which)
    {
        meta->List = which;
        meta->Prev = -1;
        meta->Next = list;
        if (list != -1)
            _slabs.MetaOf(list)->Prev = head;
        list = head;
    }

    private void Unlink(ref int list, SlabMeta* meta, int head)
    {
        if (meta->Prev != -1)
            _slabs.MetaOf(meta->Prev)->Next = meta->Next;
        else
            list = meta->Next;
        if (meta->Next != -1)
            _slabs.MetaOf(meta->Next)->Prev = meta->Prev;
        meta->Next = meta->Prev = -1;
    }
}
