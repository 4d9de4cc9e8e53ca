using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Objects;

internal sealed unsafe partial class ObjectHeap
{
    /*
     * The fast paths. Owner-only state, reached through one thread-static load: the magazine set (its
     * registry id says it is this heap's), its protocol words, home node and countdown, and the class's
     * magazine at a constant offset. No atomics, no locks, no interface or virtual calls, no CPU lookup.
     *
     * Race: a drain (hot-remove, or another thread's failing allocation) may claim this set. Rule (the
     * magazine protocol, MagazineSet.EnterUnnested / ExitUnnested and DeferredWork): store
     * InAllocator = 1, then load Pending once;
     * non-zero means someone works on the magazines or asked to, and the call leaves them alone (here:
     * it gives up and the slow path bypasses them). The block-state load of a free comes after the
     * store, so a free racing an isolation either sees the block isolated or is waited for by the drain.
     * A test disassembles all four methods to check the store precedes the load (the JIT may not reorder a
     * volatile store with a later volatile load, but nothing in the C# says so on its own).
     */

    /// <summary>
    /// The allocation fast path: a small object from the calling thread's magazine, or null when the
    /// slow path must run (no set yet or another heap's, a thread policy, check mode, work pending,
    /// the thread moved to another node, an empty magazine).
    /// </summary>
    /// <param name="set">The calling thread's <see cref="MagazineRegistry.ThreadSet"/>, read by the caller before anything else,
    /// or a stale copy of it (the C library's thread slot): null or another registry's set only fails the
    /// registry check; it must never be a set that was freed.</param>
    /// <param name="size">0..<see cref="SizeClasses.MaxSmallSize"/> bytes (the caller checks).</param>
    /// <remarks>
    /// No value lives across a call here: a value kept over a call takes a callee-saved register, which
    /// the export around this (<c>na_malloc</c>) would push and pop on every call. So the caller reads
    /// the thread-static first (its first use on a thread is a call), and the rare turns (the home
    /// check, pending work) are calls that end the path and return its result.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void* TryAllocateSmallFast(MagazineSet* set, nuint size)
    {
        Debug.Assert(size <= SizeClasses.MaxSmallSize);
        if (set == null || set->RegistryId != _fastPathRegistryId || PageAllocator.MayHaveThreadPolicy)
            return null;
        int magazineOffset = _magazineOffsetOfSize8[(int)(size + 7) >> 3];
        return magazineOffset < ObjectClassTable.FirstKeyColoredMagazineOffset
            ? TryPop<FirstWordKey>(set, magazineOffset)
            : TryPop<PageColoredKey>(set, magazineOffset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void* TryPop<TKey>(MagazineSet* set, int magazineOffset)
        where TKey : struct, IFreeKeyPlace
    {
        var magazine = (Magazine*)((byte*)set + magazineOffset);
        nint p = 0;
        if (MagazineSet.EnterUnnested(set))
        {
            int ops = set->OpsUntilHomeCheck - 1;
            if (ops < 0)
                return PopAfterHomeCheck<TKey>(set, magazineOffset);
            set->OpsUntilHomeCheck = ops;
            p = PopLive<TKey>(magazine);
        }
        return (void*)MagazineSet.ExitUnnested(set, p);
    }

    // The allocations' home check, every HomeCheckInterval of them (inside the protocol), then the pop
    // and the exit: TryAllocateSmallFast's rare turn, out of line.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* PopAfterHomeCheck<TKey>(MagazineSet* set, int magazineOffset)
        where TKey : struct, IFreeKeyPlace
    {
        set->OpsUntilHomeCheck = -1; // stays due when the thread moved: the slow path re-derives home
        nint p = IsHomeCurrent(set) ? PopLive<TKey>((Magazine*)((byte*)set + magazineOffset)) : 0;
        return (void*)MagazineSet.ExitUnnested(set, p);
    }

    // The magazine's hottest object, live again (its free key cleared), or 0 when the magazine is empty.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint PopLive<TKey>(Magazine* magazine)
        where TKey : struct, IFreeKeyPlace
    {
        int count = magazine->Count - 1;
        if (count < 0)
            return 0;
        nint p = Magazine.Items(magazine)[count];
        magazine->Count = count;
        *TKey.Of(p) = 0; // forget the free key: the object is live again
        return p;
    }

    /// <summary>
    /// The free fast path: a small object of this heap, of the thread's home node, in an Online block,
    /// into the calling thread's magazine. False when the slow path must run (anything else, including
    /// every bad pointer: the slow path classifies and reports it).
    /// </summary>
    /// <param name="set">As for <see cref="TryAllocateSmallFast"/>: the calling thread's set, or a stale copy that was never freed.</param>
    /// <param name="p">The pointer to free.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFreeFast(MagazineSet* set, void* p)
    {
        if (set == null || set->RegistryId != _fastPathRegistryId)
            return false;
        nuint offset = (nuint)((byte*)p - _base);
        if (!TryClassOfObjectStart(offset, _sizeBytes, _descriptors, _classInfo, out uint sizeClass))
            return false;
        // Both pushes inline: the second copy costs na_free two more pushed registers (+0.3 ns per
        // small pair statically), a call to an out-of-line one cost the 4 KiB pair 0.4 ns more.
        return sizeClass < ObjectClassTable.FirstKeyColoredClass
            ? TryPush<FirstWordKey>(set, p, offset, sizeClass)
            : TryPush<PageColoredKey>(set, p, offset, sizeClass);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryPush<TKey>(MagazineSet* set, void* p, nuint offset, uint sizeClass)
        where TKey : struct, IFreeKeyPlace
    {
        // From the class by arithmetic, not from the record: one load fewer on the chain from p to the push.
        var magazine = (Magazine*)((byte*)set + MagazineSet.HeaderBytes + ((nint)sizeClass * ObjectClassTable.MagazineStrideBytes));

        bool pushed = false;
        // The block's state is read inside the protocol (an isolated block's objects never enter a
        // cache, see above); its load is an acquire, as MemoryBlockTable.Read. No home-check countdown
        // here: the object must be of the magazines' node, so a free never puts a foreign object in
        // them, and the allocations' countdown is what notices that the thread moved (the magazines
        // then flush); a thread that only frees overflows into the slow path, which re-derives home.
        if (MagazineSet.EnterUnnested(set))
        {
            int count = magazine->Count;
            nuint* key = TKey.Of((nint)p);
            if (IsHomeOnlineNormalBlock(offset, set->HomeKindPlusOne)
                && count != magazine->Capacity && *key != _freeKey)
            {
                *key = _freeKey;
                Magazine.Items(magazine)[count] = (nint)p;
                magazine->Count = count + 1;
                pushed = true;
            }
        }
        return MagazineSet.ExitUnnested(set, pushed);
    }

    /// <summary>
    /// <see cref="TryAllocateSmallFast"/> for many objects of one size in one protocol entry
    /// (<c>na_malloc_bulk</c>): pops up to <paramref name="n"/> objects of the class from the calling
    /// thread's magazine into <paramref name="result"/>. Fewer (0 included) when the magazine runs out
    /// or the slow path must run for the reasons <see cref="TryAllocateSmallFast"/> gives; the caller
    /// takes one object through the slow path, which refills the magazine, and calls again.
    /// </summary>
    /// <param name="size">0..<see cref="SizeClasses.MaxSmallSize"/> bytes (the caller checks).</param>
    /// <param name="result">Where the objects go.</param>
    /// <param name="n">Objects wanted.</param>
    /// <returns>Objects written to <paramref name="result"/>[0..].</returns>
    public nuint TryAllocateSmallBulkFast(nuint size, void** result, nuint n)
    {
        Debug.Assert(size <= SizeClasses.MaxSmallSize);
        MagazineSet* set = MagazineRegistry.ThreadSet;
        if (set == null || set->RegistryId != _fastPathRegistryId || PageAllocator.MayHaveThreadPolicy)
            return 0;
        int magazineOffset = _magazineOffsetOfSize8[(int)(size + 7) >> 3];
        var magazine = (Magazine*)((byte*)set + magazineOffset);
        nuint taken = 0;
        if (MagazineSet.EnterUnnested(set)) // once for the whole batch
        {
            int ops = set->OpsUntilHomeCheck - 1;
            set->OpsUntilHomeCheck = ops;
            int count = magazine->Count;
            if (count != 0 && (ops >= 0 || IsHomeCurrent(set)))
            {
                taken = Math.Min(n, (nuint)count);
                // Cursors, hottest item first: no index for the compilers to keep in memory.
                nint* from = Magazine.Items(magazine) + count;
                void** to = result, end = result + taken;
                // Forget the free keys: the objects are live again.
                if (magazineOffset < ObjectClassTable.FirstKeyColoredMagazineOffset)
                    MoveLive<FirstWordKey>(from, to, end);
                else
                    MoveLive<PageColoredKey>(from, to, end);
                magazine->Count = count - (int)taken;
            }
        }
        return MagazineSet.ExitUnnested(set, taken);
    }

    // Copies the magazine's items below from, hottest first, into to..end, clearing each one's free key.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MoveLive<TKey>(nint* from, void** to, void** end)
        where TKey : struct, IFreeKeyPlace
    {
        while (to < end)
        {
            nint item = *--from;
            *TKey.Of(item) = 0;
            *to++ = (void*)item;
        }
    }

    /// <summary>
    /// <paramref name="n"/> small objects of <paramref name="size"/> bytes into <paramref name="result"/>:
    /// magazine pops in one protocol entry (<see cref="TryAllocateSmallBulkFast"/>), and on a miss one
    /// slow-path allocation, which refills the magazine, before the next pops.
    /// </summary>
    /// <param name="size">0..<see cref="SizeClasses.MaxSmallSize"/> bytes (the caller checks).</param>
    /// <param name="result">Where the objects go.</param>
    /// <param name="n">Objects wanted.</param>
    /// <returns>Objects written: <paramref name="n"/>, fewer only when no memory is left for the rest.</returns>
    public nuint AllocateSmallBulk(nuint size, void** result, nuint n)
    {
        nuint filled = 0;
        while (true)
        {
            filled += TryAllocateSmallBulkFast(size, result + filled, n - filled);
            if (filled == n)
                return n;
            void* p = AllocateSlow(size, 0, -1);
            if (p == null)
                return filled;
            result[filled++] = p;
        }
    }

    /// <summary>
    /// <see cref="TryFreeFast"/> for many pointers in one protocol entry (<c>na_free_bulk</c>): frees
    /// <paramref name="ptrs"/>[0..] in order into the calling thread's magazines, skipping NULLs, and
    /// stops at the first pointer the slow path must take (any other heap's, node's or state's object,
    /// a full magazine, and every bad pointer, which the slow path classifies and reports).
    /// </summary>
    /// <returns>Pointers consumed: <paramref name="n"/>, or the index of the one the caller must free through the slow path.</returns>
    public nuint TryFreeBulkFast(void** ptrs, nuint n)
    {
        MagazineSet* set = MagazineRegistry.ThreadSet;
        if (set == null || set->RegistryId != _fastPathRegistryId)
            return 0;
        nuint done = 0;
        if (MagazineSet.EnterUnnested(set)) // once for the whole batch; block states are read inside, as in TryFreeFast
        {
            int homePlusOne = set->HomeKindPlusOne;
            // Locals for the two values every object needs first; the descriptor and class tables and
            // the free key are read off this object where they are used (a load each, which the
            // compilers would otherwise make from a stack slot: the loop has more values than
            // registers). A cursor instead of an index: one register fewer.
            byte* heapBase = _base;
            nuint sizeBytes = _sizeBytes;
            // The home-node and block-state checks run once per run of pointers into one block: a
            // batch's objects mostly share their slab's block, and the shifts by a variable count the
            // checks need take a register the loop is short of. One read per block for the whole
            // batch is as good as one per object: the batch is one protocol entry, so a block
            // isolated after the read is drained after this call exits (see TryFreeFast).
            nuint blockBytes = (nuint)1 << _blockShift;
            nuint checkedBlockStart = sizeBytes; // no block yet: every offset in the heap is below it
            void** cursor = ptrs, end = ptrs + n;
            // The magazine in use and its count stay in registers while the class repeats.
            Magazine* magazine = null;
            int count = 0;
            for (; cursor < end; cursor++)
            {
                void* p = *cursor;
                if (p == null)
                    continue;
                nuint offset = (nuint)((byte*)p - heapBase);
                if (!TryClassOfObjectStart(offset, sizeBytes, _descriptors, _classInfo, out uint sizeClass))
                    break;
                if (offset - checkedBlockStart >= blockBytes)
                {
                    if (!IsHomeOnlineNormalBlock(offset, homePlusOne))
                        break;
                    checkedBlockStart = offset & ~(blockBytes - 1);
                }
                nuint* key = FreeKeyOf((nint)p, sizeClass); // a batch may mix classes: the place by class, per object
                if (*key == _freeKey)
                    break;
                var classMagazine = (Magazine*)((byte*)set + MagazineSet.HeaderBytes + ((nint)sizeClass * ObjectClassTable.MagazineStrideBytes));
                if (classMagazine != magazine)
                {
                    if (magazine != null)
                        magazine->Count = count;
                    magazine = classMagazine;
                    count = magazine->Count;
                }
                if (count == magazine->Capacity)
                    break;
                *key = _freeKey;
                Magazine.Items(magazine)[count++] = (nint)p;
            }
            if (magazine != null)
                magazine->Count = count;
            done = (nuint)(cursor - ptrs);
        }
        return MagazineSet.ExitUnnested(set, done);
    }

    /*
     * Where a cached object keeps the free key. Below 2 KiB its first word. From 2 KiB up, one or two
     * objects a page start at the same page offsets, so their first words all fall in one L1 set: a
     * batch of 32 frees (a key load and store each) and allocations (a store each) of 4 KiB objects
     * missed L1 at every access (na_malloc_bulk + na_free_bulk, 15 ns per object against 3.2 ns at
     * 64 B, and twice that on two threads). There the key sits in one of the first 2 KiB's 32 lines,
     * chosen by the page number, as jemalloc spreads its large allocations over a page's lines
     * (opt.cache_oblivious). A type parameter picks the place, so each path is compiled for one.
     */
    private interface IFreeKeyPlace
    {
        static abstract nuint* Of(nint p);
    }

    private struct FirstWordKey : IFreeKeyPlace
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint* Of(nint p) => (nuint*)p;
    }

    private struct PageColoredKey : IFreeKeyPlace
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint* Of(nint p) => (nuint*)(p + (nint)(((nuint)p >> 6) & ObjectClassTable.KeyColorMask));
    }

    // The key's place by class, for the paths that are not compiled for one (slow paths, bulk free).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint* FreeKeyOf(nint p, uint sizeClass) =>
        sizeClass < ObjectClassTable.FirstKeyColoredClass ? FirstWordKey.Of(p) : PageColoredKey.Of(p);

    // The free fast paths' check of a block (inside the protocol): of the magazines' node, Online,
    // Normal. The state's load is an acquire, as MemoryBlockTable.Read.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsHomeOnlineNormalBlock(nuint offset, int homePlusOne) =>
        (int)(offset >> _nodeShift) + 1 == homePlusOne && Volatile.Read(ref _blockStates[offset >> _blockShift]) == OnlineNormalBlock;

    /// <summary>
    /// The free fast paths' check of a pointer, by its offset in the heap: true, with its size class,
    /// when it is the start of an object slot in a live slab of this heap; false for anything else
    /// (outside the heap, not a slab, an interior pointer), which the slow path classifies. Whether the
    /// slot is live is the caller's question (the free key).
    /// </summary>
    /// <remarks>The heap's fields and the class table come as arguments, so a loop can pass locals.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryClassOfObjectStart(nuint offset, nuint sizeBytes, PageDescriptor* descriptors, ObjectClassInfo* classes, out uint sizeClass)
    {
        sizeClass = 0;
        if (offset >= sizeBytes)
            return false;
        PageDescriptor* d = descriptors + (offset >> HeapLayout.PageShift);
        uint flags = d->Flags;
        uint candidate = flags - 1;
        if (candidate >= ObjectClassTable.Count)
            return false;
        // No look at the head page: a page's Flags hold a class only while its slab lives (SlabHeap.Carve
        // writes every page's, SlabHeap.Release clears them before the pages go back; the buddy allocator
        // writes 0 or FreeDirty, the large runs LargeRunFlag, both outside the class range), so Owner is
        // this slab's head.
        uint head = d->Owner;
        ObjectClassInfo* info = classes + candidate;
        nuint relative = offset - ((nuint)head << HeapLayout.PageShift);
        if ((nuint)(uint)((relative * info->Magic) >> 32) * (nuint)(uint)info->Size != relative)
            return false; // interior pointer
        sizeClass = candidate;
        return true;
    }

    /// <summary>
    /// The allocation fast paths' periodic home check (every <see cref="HomeCheckInterval"/> allocations, inside the
    /// protocol): true, and the countdown restarted, when the thread's CPU still maps to the magazines'
    /// node; false when it moved (or no home is known yet), and the slow path then flushes the magazines
    /// and adopts the new node.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool IsHomeCurrent(MagazineSet* set)
    {
        if (_memoryNodeOfCpu[CurrentCpu()] + 1 != set->HomeKindPlusOne)
            return false;
        set->OpsUntilHomeCheck = HomeCheckInterval;
        return true;
    }

    /// <summary>
    /// A small object of at least <paramref name="size"/> bytes (already rounded up to its alignment) on
    /// <paramref name="node"/> (strictly) or, with -1, where the thread's policy says (the home node by
    /// default), falling back by distance within the policy's nodes.
    /// </summary>
    /// <returns>The object, or null when no allowed node can serve even after draining every cache.</returns>
    private void* AllocateSmall(nuint size, int node)
    {
        int sizeClass = SizeClasses.ClassOf(size);
        int target = node;
        ulong allowed = node >= 0 ? 1UL << node : ~0UL;
        if (node < 0 && PageAllocator.MayHaveThreadPolicy)
            target = _pages.PolicyNode(PageAllocator.ThreadPolicy, out allowed);

        nint item = 0;
        MagazineSet* set = _registry.Current;
        using (MagazineScope scope = MagazineSet.EnterScope(set))
        {
            for (int attempt = 0; attempt < 2 && item == 0; attempt++)
            {
                int cpu = CurrentCpu();
                int home;
                if (!scope.Bypass)
                {
                    home = RefreshHome(set, cpu);
                    if (target < 0 || target == home)
                        item = PopOrRefill(set, sizeClass, home, cpu);
                }
                else
                {
                    home = _memoryNodeOfCpu[cpu];
                }

                int first = target >= 0 ? target : home;
                if (item == 0)
                    item = TakeOne(sizeClass, first, cpu);
                if (item == 0 && node < 0)
                {
                    foreach (int fallback in _topology.NodesByDistance(first))
                    {
                        if (fallback != first && (allowed & (1UL << fallback)) != 0 && (item = TakeOne(sizeClass, fallback, cpu)) != 0)
                            break;
                    }
                }
                if (item == 0 && attempt == 0 && !DrainForMemory())
                    break;
            }
        }
        if (item == 0)
            return null;
        *FreeKeyOf(item, (uint)sizeClass) = 0; // forget the free key: the object is live again
        if (_check)
            MarkLive(item, sizeClass);
        return (void*)item;
    }

    // The owner's magazine of the class (refilled from a per-CPU cache of its home node when empty).
    private nint PopOrRefill(MagazineSet* set, int sizeClass, int home, int cpu)
    {
        if (MagazineSet.TryPop(set, sizeClass, out nint item))
            return item;
        CountEvent(cpu, MagazineMissEvent);
        Magazine* magazine = MagazineSet.MagazineAt(set, sizeClass);
        var into = new Span<nint>(Magazine.Items(magazine), magazine->Capacity / 2);
        int cacheCpu = CacheCpuFor(home, cpu);
        magazine->Count = cacheCpu >= 0
            ? _caches[sizeClass].PopBatch(cacheCpu, into, new OnlineBlockCheck(_blockStates, _blockShift, _base))
            : _slabs.Class(sizeClass).TakeFromNode(home, into);
        return MagazineSet.TryPop(set, sizeClass, out item) ? item : 0;
    }

    // One object of node's memory: through a per-CPU cache of that node (one CAS, refilled from its
    // slabs), or the slabs when no CPU serves the node. 0 when the node has no memory left for it.
    private nint TakeOne(int sizeClass, int node, int cpu)
    {
        int cacheCpu = CacheCpuFor(node, cpu);
        if (cacheCpu >= 0)
            return _caches[sizeClass].TryPop(cacheCpu, out nint item) ? item : 0;
        nint one = 0;
        return _slabs.Class(sizeClass).TakeFromNode(node, new Span<nint>(ref one)) == 1 ? one : 0;
    }

    /// <summary>
    /// The small-object free slow path, for an object already checked to be a live-looking object of
    /// <paramref name="sizeClass"/> (descriptors, boundary): check mode, the free key, the magazine or a
    /// per-CPU cache of the object's node, or its slab when its block is not Online.
    /// </summary>
    private void FreeSmall(void* p, int sizeClass)
    {
        if (_check)
            ClearLive((nint)p, sizeClass);
        int node = (int)((nuint)((byte*)p - _base) >> _nodeShift);
        bool doubleFree = false;
        MagazineSet* set = _registry.Current;
        using (MagazineScope scope = MagazineSet.EnterScope(set))
        {
            int cpu = CurrentCpu();
            // Inside the protocol: the block state (see the fast paths), then the magazine.
            if (!_slabs.IsOnline((nint)p))
            {
                nint item = (nint)p;
                _slabs.Class(sizeClass).FlushBatch(new ReadOnlySpan<nint>(in item));
            }
            else if (!scope.Bypass && *FreeKeyOf((nint)p, (uint)sizeClass) == _freeKey && MagazineContains(set, sizeClass, (nint)p))
            {
                doubleFree = true;
            }
            else
            {
                *FreeKeyOf((nint)p, (uint)sizeClass) = _freeKey;
                int home = scope.Bypass ? _memoryNodeOfCpu[cpu] : RefreshHome(set, cpu);
                if (home != node)
                    CountEvent(cpu, CrossNodeFreeEvent);
                if (scope.Bypass || home != node)
                    PushToNode(sizeClass, (nint)p, node, cpu);
                else if (!MagazineSet.TryPush(set, sizeClass, (nint)p))
                {
                    FlushColdHalf(set, sizeClass, node, cpu);
                    MagazineSet.TryPush(set, sizeClass, (nint)p);
                }
            }
        }
        if (doubleFree)
            ReportBadFree(p, "double free: the object is already in this thread's cache");
    }

    // A freed object to a per-CPU cache of its node (one CAS, no lock), or its slab when no CPU serves the node.
    private void PushToNode(int sizeClass, nint item, int node, int cpu)
    {
        int cacheCpu = CacheCpuFor(node, cpu);
        if (cacheCpu >= 0)
            _caches[sizeClass].Push(cacheCpu, item, new OnlineBlockCheck(_blockStates, _blockShift, _base));
        else
            _slabs.Class(sizeClass).FlushBatch(new ReadOnlySpan<nint>(in item));
    }

    // A full magazine: its coldest half to a per-CPU cache of the home node.
    private void FlushColdHalf(MagazineSet* set, int sizeClass, int home, int cpu)
    {
        Magazine* magazine = MagazineSet.MagazineAt(set, sizeClass);
        nint* items = Magazine.Items(magazine);
        int count = magazine->Count;
        int moved = Math.Min(magazine->Capacity / 2, count);
        var cold = new ReadOnlySpan<nint>(items, moved);
        int cacheCpu = CacheCpuFor(home, cpu);
        if (cacheCpu >= 0)
            _caches[sizeClass].PushBatch(cacheCpu, cold, new OnlineBlockCheck(_blockStates, _blockShift, _base));
        else
            _slabs.Class(sizeClass).FlushBatch(cold);
        int left = count - moved;
        Buffer.MemoryCopy(items + moved, items, (long)left * sizeof(nint), (long)left * sizeof(nint));
        magazine->Count = left;
    }

    private static bool MagazineContains(MagazineSet* set, int sizeClass, nint item)
    {
        Magazine* magazine = MagazineSet.MagazineAt(set, sizeClass);
        return new ReadOnlySpan<nint>(Magazine.Items(magazine), magazine->Count).Contains(item);
    }

    // on_bad_free=check: the object goes to a user. Its bit must have been clear.
    private void MarkLive(nint item, int sizeClass)
    {
        ulong* word = LiveWord(item, sizeClass, out ulong bit);
        // Full fence (atomic OR): a racing free of the same object (a bug) sees one order or the other.
        ulong old = Interlocked.Or(ref *word, bit);
        if ((old & bit) != 0)
            ReportBadFree((void*)item, "the object was handed out while live: an earlier double free went unnoticed");
    }

    // on_bad_free=check: the user frees the object. Its bit must have been set; two racing frees of it
    // are ordered by the atomic AND, so exactly one passes.
    private void ClearLive(nint item, int sizeClass)
    {
        ulong* word = LiveWord(item, sizeClass, out ulong bit);
        ulong old = Interlocked.And(ref *word, ~bit); // Full fence (atomic AND): see above.
        if ((old & bit) == 0)
            ReportBadFree((void*)item, "double free (on_bad_free=check: the object is not live)");
    }

    private ulong* LiveWord(nint item, int sizeClass, out ulong bit)
    {
        int head = _slabs.HeadOfObject(item, sizeClass);
        Debug.Assert(head >= 0, "checked by the caller");
        nuint relative = (nuint)(item - _slabs.AddressOfPage(head));
        int index = (int)((relative * ObjectClassTable.Info[sizeClass].Magic) >> 32);
        bit = 1UL << (index & 63);
        return (ulong*)_slabs.LiveBits!.EntryOf(head) + (index >> 6);
    }

    // The object caches' cacheable check (pushes, magazine refills and flushes): the block byte, read under
    // the cache word or inside the magazine protocol; the same answer as SlabCache.IsCacheable for heap objects.
    private readonly struct OnlineBlockCheck(byte* blockStates, int blockShift, byte* heapBase) : ICacheableCheck
    {
        public bool IsCacheable(nint item) =>
            Volatile.Read(ref blockStates[(nuint)((byte*)item - heapBase) >> blockShift]) == OnlineNormalBlock; // Acquire: as MemoryBlockTable.Read.
    }
}
