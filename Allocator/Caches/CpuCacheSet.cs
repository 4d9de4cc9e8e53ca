using System.Numerics;

namespace Numalloc.Caches;

/// <summary>
/// One <see cref="CpuCache"/> per possible CPU for one kind of item (one zone's pages, or one size
/// class's objects), in one native, 64-byte-aligned block, plus the CPU tables that make "another
/// CPU's cache of the same node" a table walk.
/// </summary>
/// <remarks>
/// <para>Every operation takes the hinted CPU's word with one CAS; a failed take moves on to the next
/// CPU of the same node (a ring in <c>_nextSameNode</c>) and, when every one is held, to the backend.
/// Nothing here waits, except <see cref="Drain(int)"/>, which must empty the very cache it names.</para>
/// <para>CPU ids are hints (<see cref="Platform.PlatformCpu.Current"/>): any int is accepted and mapped
/// to a cache with a mask and a table, never with <c>%</c>.</para>
/// <para>The native block is owned by this object and freed by <see cref="Dispose"/>, which requires
/// that no other thread uses the set any more.</para>
/// </remarks>
internal sealed unsafe class CpuCacheSet : IDisposable
{
    private readonly ICacheBackend _backend;
    private readonly int _cpuCount;
    private readonly int _strideBytes;
    private readonly int _slotMask;
    private byte* _caches;
    // Native tables: cpu & _slotMask -> cache index; cache index -> next CPU of the same node (a ring).
    private int* _slotOfCpu;
    private int* _nextSameNode;
    private long _fallthroughs;
    private long _backendDirect;

    /// <summary>Creates one cache per possible CPU.</summary>
    /// <param name="backend">Where caches refill from and flush to.</param>
    /// <param name="cpuToNode">The node of each possible CPU (length = possible CPUs, from <c>cpu/possible</c>).</param>
    /// <param name="high">Items a cache holds before a push flushes a batch.</param>
    /// <param name="batch">Items per refill or flush; at most <paramref name="high"/>.</param>
    /// <exception cref="ArgumentException">Empty <paramref name="cpuToNode"/> or a negative node.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="high"/> or <paramref name="batch"/> out of range.</exception>
    public CpuCacheSet(ICacheBackend backend, ReadOnlySpan<int> cpuToNode, int high, int batch)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (cpuToNode.IsEmpty)
        {
            throw new ArgumentException("At least one possible CPU is needed.", nameof(cpuToNode));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(high);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(high, 1 << 20);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batch, high);

        _backend = backend;
        _cpuCount = cpuToNode.Length;
        int itemBytes = (high + 1) * sizeof(nint);
        _strideBytes = (CpuCache.HeaderBytes + itemBytes + 127) & ~127;
        int slots = (int)BitOperations.RoundUpToPowerOf2((uint)_cpuCount);
        _slotMask = slots - 1;

        _caches = (byte*)NativeMemory.AlignedAlloc((nuint)_strideBytes * (nuint)_cpuCount, 64);
        NativeMemory.Clear(_caches, (nuint)_strideBytes * (nuint)_cpuCount);
        _slotOfCpu = (int*)NativeMemory.Alloc((nuint)slots, sizeof(int));
        _nextSameNode = (int*)NativeMemory.Alloc((nuint)_cpuCount, sizeof(int));

        for (int slot = 0; slot < slots; slot++)
        {
            // Ids past the possible CPUs (a stale or virtual hint) fold onto real caches; built once here.
            _slotOfCpu[slot] = slot < _cpuCount ? slot : slot - _cpuCount * (slot / _cpuCount);
        }

        for (int cpu = 0; cpu < _cpuCount; cpu++)
        {
            if (cpuToNode[cpu] < 0)
            {
                throw new ArgumentException("Node ids are non-negative.", nameof(cpuToNode));
            }

            int next = cpu;
            for (int step = 1; step <= _cpuCount; step++)
            {
                int candidate = cpu + step < _cpuCount ? cpu + step : cpu + step - _cpuCount;
                if (cpuToNode[candidate] == cpuToNode[cpu])
                {
                    next = candidate;
                    break;
                }
            }

            _nextSameNode[cpu] = next;
            CpuCache* cache = At(cpu);
            cache->High = high;
            cache->Batch = batch;
            cache->Capacity = high + 1;
        }
    }

    /// <summary>The store behind these caches.</summary>
    public ICacheBackend Backend => _backend;

    /// <summary>Possible CPUs, hence caches.</summary>
    public int CpuCount => _cpuCount;

    /// <summary>Takes that failed because the word was held (each one moved on to another cache or the backend).</summary>
    public long Fallthroughs => Volatile.Read(ref _fallthroughs);

    /// <summary>Operations that found every cache of the node held and went to the backend.</summary>
    public long BackendDirect => Volatile.Read(ref _backendDirect);

    /// <summary>The cache of <paramref name="cpu"/> (any int: it is folded onto a possible CPU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CpuCache* At(int cpu) => (CpuCache*)(_caches + (nint)_slotOfCpu[cpu & _slotMask] * _strideBytes);

    /// <summary>The next CPU of the same node after <paramref name="cpuIndex"/>, a possible CPU's index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int NextSameNode(int cpuIndex) => _nextSameNode[cpuIndex];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int IndexOf(int cpu) => _slotOfCpu[cpu & _slotMask];

    /// <summary>
    /// Pops one item from the cache of <paramref name="cpu"/>, else another held-free cache of its
    /// node, else straight from the backend. A popped item may belong to a block isolated after it was
    /// cached (allowed until the drain, as with the kernel's pcp lists).
    /// </summary>
    /// <returns>False only when the backend has nothing either.</returns>
    public bool TryPop(int cpu, out nint item)
    {
        int first = IndexOf(cpu);
        int index = first;
        do
        {
            CpuCache* cache = (CpuCache*)(_caches + (nint)index * _strideBytes);
            if (CpuCache.TryTake(cache, out long taken))
            {
                bool popped = CpuCache.PopHeld(cache, _backend, cpu, out item);
                CpuCache.Release(cache, taken);
                return popped;
            }

            Interlocked.Increment(ref _fallthroughs); // Atomic only: a statistic, orders nothing.
            index = NextSameNode(index);
        }
        while (index != first);

        return PopFromBackend(cpu, out item);
    }

    /// <summary><see cref="TryPop"/> with its common case inlined: <paramref name="cpu"/>'s own cache is free and holds an item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryPopFast(int cpu, out nint item) =>
        CpuCache.TryPopUncontended(At(cpu), out item) || TryPop(cpu, out item);

    /// <summary><see cref="Push{TCheck}"/> with its common case inlined: <paramref name="cpu"/>'s own cache is free, below its high mark, and the item cacheable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void PushFast<TCheck>(int cpu, nint item, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        if (!CpuCache.TryPushUncontended(At(cpu), item, check))
            Push(cpu, item, check);
    }

    /// <summary>
    /// Pushes one freed item into the cache of <paramref name="cpu"/> (or another of its node, or the
    /// backend when all are held). An item of an isolated block goes straight to the backend.
    /// </summary>
    // Race: a block is isolated and its caches drained while this push is under way. Rule: the
    // block state is read while the cache word is held, and a drain takes the same word, so a push
    // that saw the block online completes before the drain empties the cache; one that runs after
    // the isolation sees it and routes the item to the backend (the zone's isolated lists).
    public void Push(int cpu, nint item) => Push(cpu, item, new BackendCacheableCheck(_backend));

    /// <summary>
    /// <see cref="Push(int, nint)"/> with the cacheable check given as a struct, so a caller that knows
    /// the item's kind (the page caches: a block-table byte) skips the backend's interface call. The
    /// check runs while the cache word is held, as in <see cref="Push(int, nint)"/>.
    /// </summary>
    internal void Push<TCheck>(int cpu, nint item, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        int first = IndexOf(cpu);
        int index = first;
        do
        {
            CpuCache* cache = (CpuCache*)(_caches + (nint)index * _strideBytes);
            if (CpuCache.TryTake(cache, out long taken))
            {
                bool cacheable = check.IsCacheable(item);
                if (cacheable)
                {
                    CpuCache.PushHeld(cache, _backend, item);
                }

                CpuCache.Release(cache, taken);
                if (!cacheable)
                {
                    _backend.FlushBatch(new ReadOnlySpan<nint>(in item));
                }

                return;
            }

            Interlocked.Increment(ref _fallthroughs); // Atomic only: a statistic, orders nothing.
            index = NextSameNode(index);
        }
        while (index != first);

        Interlocked.Increment(ref _backendDirect); // Atomic only: a statistic, orders nothing.
        _backend.FlushBatch(new ReadOnlySpan<nint>(in item));
    }

    /// <summary>
    /// Moves up to <paramref name="into"/>.Length items out of one cache of the node (refilling it
    /// from the backend once if it is empty) for a magazine refill. Items of isolated blocks never
    /// leave a cache for another cache: they go to the backend instead.
    /// </summary>
    /// <returns>How many items were written to the start of <paramref name="into"/>.</returns>
    public int PopBatch(int cpu, Span<nint> into) => PopBatch(cpu, into, new BackendCacheableCheck(_backend));

    /// <summary>
    /// <see cref="PopBatch(int, Span{nint})"/> with the cacheable check given as a struct: the object
    /// heap's magazine refill checks up to two batches per call, and the check inlined (the block
    /// table's address and shift in registers) costs a load per item instead of an interface call
    /// and a chain of field loads.
    /// </summary>
    internal int PopBatch<TCheck>(int cpu, Span<nint> into, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        int first = IndexOf(cpu);
        int index = first;
        do
        {
            CpuCache* cache = (CpuCache*)(_caches + (nint)index * _strideBytes);
            if (CpuCache.TryTake(cache, out long taken))
            {
                // Items a refill brings were checked by it, in this hold: checking them again finds
                // the same answer a drain would have to wait for (it takes this word), so only items
                // that were cached before the take are checked on the way out.
                bool refilled = cache->Count == 0;
                if (refilled)
                {
                    CpuCache.RefillHeld(cache, _backend, cpu, check);
                }

                int moved = Math.Min(cache->Count, into.Length);
                int left = cache->Count - moved;
                new ReadOnlySpan<nint>(CpuCache.Items(cache) + left, moved).CopyTo(into);
                cache->Count = left;
                CpuCache.Release(cache, taken);
                if (refilled)
                {
                    return moved;
                }

                fixed (nint* items = into)
                {
                    return CpuCache.KeepCacheable(items, moved, _backend, check);
                }
            }

            Interlocked.Increment(ref _fallthroughs); // Atomic only: a statistic, orders nothing.
            index = NextSameNode(index);
        }
        while (index != first);

        Interlocked.Increment(ref _backendDirect); // Atomic only: a statistic, orders nothing.
        int produced = _backend.RefillBatch(cpu, into);
        fixed (nint* items = into)
        {
            return CpuCache.KeepCacheable(items, produced, _backend, check);
        }
    }

    /// <summary>
    /// Moves a magazine's flush into one cache of the node (flushing batches to the backend over
    /// <c>high</c>); items of isolated blocks, and everything when all caches are held, go to the backend.
    /// </summary>
    public void PushBatch(int cpu, ReadOnlySpan<nint> items) => PushBatch(cpu, items, new BackendCacheableCheck(_backend));

    /// <summary>
    /// <see cref="PushBatch(int, ReadOnlySpan{nint})"/> with the cacheable check given as a struct (see
    /// <see cref="PopBatch{TCheck}"/>); the check runs while the cache word is held, as there.
    /// </summary>
    internal void PushBatch<TCheck>(int cpu, ReadOnlySpan<nint> items, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        int first = IndexOf(cpu);
        int index = first;
        do
        {
            CpuCache* cache = (CpuCache*)(_caches + (nint)index * _strideBytes);
            if (CpuCache.TryTake(cache, out long taken))
            {
                foreach (nint item in items)
                {
                    if (check.IsCacheable(item))
                    {
                        CpuCache.PushHeld(cache, _backend, item);
                    }
                    else
                    {
                        _backend.FlushBatch(new ReadOnlySpan<nint>(in item));
                    }
                }

                CpuCache.Release(cache, taken);
                return;
            }

            Interlocked.Increment(ref _fallthroughs); // Atomic only: a statistic, orders nothing.
            index = NextSameNode(index);
        }
        while (index != first);

        Interlocked.Increment(ref _backendDirect); // Atomic only: a statistic, orders nothing.
        _backend.FlushBatch(items);
    }

    /// <summary>
    /// Remote drain of one CPU's cache: takes its word like any user (waiting only for the holder's
    /// bounded batch) and returns every item to the backend.
    /// </summary>
    /// <returns>Items returned.</returns>
    public int Drain(int cpu)
    {
        CpuCache* cache = At(cpu);
        long taken = CpuCache.Take(cache);
        int drained = CpuCache.DrainHeld(cache, _backend);
        CpuCache.Release(cache, taken);
        return drained;
    }

    /// <summary>Drains every CPU's cache (see <see cref="Drain(int)"/>); returns the items returned.</summary>
    public int DrainAll()
    {
        int drained = 0;
        for (int cpu = 0; cpu < _cpuCount; cpu++)
        {
            drained += Drain(cpu);
        }

        return drained;
    }

    /// <summary>Items in the cache of <paramref name="cpu"/>: a racy snapshot unless the caller quiesced the set.</summary>
    public int CountAt(int cpu) => Volatile.Read(ref At(cpu)->Count);

    /// <summary>Bytes of native memory the caches of this set take (their slots, not the items they hold).</summary>
    public long MetadataBytes => ((long)_strideBytes * _cpuCount) + ((long)(_slotMask + 1) * sizeof(int)) + ((long)_cpuCount * sizeof(int));

    /// <summary>Items in every cache: a racy snapshot unless the caller quiesced the set.</summary>
    public long TotalCount
    {
        get
        {
            long total = 0;
            for (int cpu = 0; cpu < _cpuCount; cpu++)
            {
                total += CountAt(cpu);
            }

            return total;
        }
    }

    /// <summary>Sums the per-cache counters (taking each word, so the numbers are consistent per cache).</summary>
    public CpuCacheStats GetStats()
    {
        long refills = 0, flushes = 0, itemsRefilled = 0, itemsFlushed = 0, count = 0;
        for (int cpu = 0; cpu < _cpuCount; cpu++)
        {
            CpuCache* cache = At(cpu);
            long taken = CpuCache.Take(cache);
            refills += cache->Refills;
            flushes += cache->Flushes;
            itemsRefilled += cache->ItemsRefilled;
            itemsFlushed += cache->ItemsFlushed;
            count += cache->Count;
            CpuCache.Release(cache, taken);
        }

        return new CpuCacheStats(count, refills, flushes, itemsRefilled, itemsFlushed, Fallthroughs, BackendDirect);
    }

    /// <summary>Frees the native caches. No other thread may use the set any more; items still cached are not returned.</summary>
    public void Dispose()
    {
        NativeMemory.AlignedFree(_caches);
        NativeMemory.Free(_slotOfCpu);
        NativeMemory.Free(_nextSameNode);
        _caches = null;
        _slotOfCpu = null;
        _nextSameNode = null;
    }

    private bool PopFromBackend(int cpu, out nint item)
    {
        Interlocked.Increment(ref _backendDirect); // Atomic only: a statistic, orders nothing.
        nint one = 0;
        int produced = _backend.RefillBatch(cpu, new Span<nint>(ref one));
        item = one;
        return produced != 0;
    }
}

/// <summary>A snapshot of a <see cref="CpuCacheSet"/>'s counters.</summary>
/// <param name="Count">Items cached.</param>
/// <param name="Refills">Batch refills from the backend.</param>
/// <param name="Flushes">Batch flushes to the backend, drains included.</param>
/// <param name="ItemsRefilled">Items received from the backend by refills.</param>
/// <param name="ItemsFlushed">Items returned to the backend by flushes and drains.</param>
/// <param name="Fallthroughs">Failed takes that moved on.</param>
/// <param name="BackendDirect">Operations that went straight to the backend because every cache of the node was held.</param>
internal readonly record struct CpuCacheStats(
    long Count, long Refills, long Flushes, long ItemsRefilled, long ItemsFlushed, long Fallthroughs, long BackendDirect)
{
    /// <summary>The counters of two sets together.</summary>
    public static CpuCacheStats operator +(CpuCacheStats a, CpuCacheStats b) =>
        new(a.Count + b.Count, a.Refills + b.Refills, a.Flushes + b.Flushes, a.ItemsRefilled + b.ItemsRefilled,
            a.ItemsFlushed + b.ItemsFlushed, a.Fallthroughs + b.Fallthroughs, a.BackendDirect + b.BackendDirect);
}

/// <summary>The cacheable check of <see cref="CpuCacheSet.Push{TCheck}"/>, as a struct so it inlines.</summary>
internal interface ICacheableCheck
{
    /// <summary>See <see cref="ICacheBackend.IsCacheable"/>.</summary>
    bool IsCacheable(nint item);
}

/// <summary>The backend's own check (an interface call).</summary>
internal readonly struct BackendCacheableCheck(ICacheBackend backend) : ICacheableCheck
{
    /// <inheritdoc/>
    public bool IsCacheable(nint item) => backend.IsCacheable(item);
}
