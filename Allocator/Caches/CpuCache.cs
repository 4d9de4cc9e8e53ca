using System.Diagnostics;

namespace Numalloc.Caches;

/// <summary>
/// One CPU's cache of one kind (a zone's pages, a size class's objects): a bounded stack of items in
/// native memory, guarded by one 64-bit state word. The header fills one 64-byte line; the items
/// follow it; <see cref="CpuCacheSet"/> pads each cache to whole 128-byte pairs of lines so that no
/// two caches share a line (nor an adjacent-line prefetch pair).
/// </summary>
/// <remarks>
/// <para>The race and the rule. Any thread may use any CPU's cache: its own CPU is only a hint
/// (threads migrate), and a remote drain uses other CPUs' caches on purpose. The rule is that
/// <see cref="Count"/>, the items and the counters are touched only by the thread that took
/// <see cref="State"/> with one CAS from "free" to "taken" (bit 0), and released by storing the next
/// generation (bits 1..63) with bit 0 clear. A failed take never waits: callers fall through to
/// another CPU's cache of the same node, or the backend. Only a drain, which must empty this very
/// cache, retries until it takes the word; holders keep it for a bounded batch of work.</para>
/// <para>The generation makes every release visible as a new value (debugging, and an ABA-free
/// word should an owner id ever be packed in).</para>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = HeaderBytes)]
internal unsafe struct CpuCache
{
    /// <summary>Size of the header; the items start at this offset.</summary>
    internal const int HeaderBytes = 64;

    /// <summary>Bit 0 of <see cref="State"/>: the cache is taken.</summary>
    internal const long TakenBit = 1;

    /// <summary>The state word: bit 0 taken, bits 1..63 a generation advanced by each release.</summary>
    [FieldOffset(0)] internal long State;

    /// <summary>Items held. Only under the taken word.</summary>
    [FieldOffset(8)] internal int Count;

    /// <summary>Above this many items a push flushes <see cref="Batch"/> of them to the backend.</summary>
    [FieldOffset(12)] internal int High;

    /// <summary>Items moved per refill or flush.</summary>
    [FieldOffset(16)] internal int Batch;

    /// <summary>Room for items: <see cref="High"/> + 1.</summary>
    [FieldOffset(20)] internal int Capacity;

    /// <summary>Refills from the backend (under the word).</summary>
    [FieldOffset(24)] internal long Refills;

    /// <summary>Flushes to the backend, drains included (under the word).</summary>
    [FieldOffset(32)] internal long Flushes;

    /// <summary>Items received from the backend (under the word).</summary>
    [FieldOffset(40)] internal long ItemsRefilled;

    /// <summary>Items returned to the backend, drains included (under the word).</summary>
    [FieldOffset(48)] internal long ItemsFlushed;

    /// <summary>The item stack; index 0 is the coldest item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static nint* Items(CpuCache* cache) => (nint*)((byte*)cache + HeaderBytes);

    /// <summary>Takes the state word with one CAS. Never waits.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="taken">The word as taken; pass it to <see cref="Release"/>.</param>
    /// <returns>False when someone else holds it (or took it between our read and our CAS).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryTake(CpuCache* cache, out long taken)
    {
        // Acquire: a cheap pre-check, so a held word costs a load, not a failed CAS on a contended line.
        long observed = Volatile.Read(ref cache->State);
        taken = observed;
        // Full fence (CAS): our reads of Count and the items cannot move above the take, and the
        // previous holder's writes (published by its release store) are visible to us.
        return (observed & TakenBit) == 0
            && Interlocked.CompareExchange(ref cache->State, observed | TakenBit, observed) == observed;
    }

    /// <summary>Takes the state word, spinning while a holder finishes its bounded batch. Drains only.</summary>
    internal static long Take(CpuCache* cache)
    {
        var spinner = new SpinWait();
        long taken;
        while (!TryTake(cache, out taken))
        {
            spinner.SpinOnce();
        }

        return taken;
    }

    /// <summary>Releases a word taken by <see cref="TryTake"/> or <see cref="Take"/>, advancing the generation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Release(CpuCache* cache, long taken)
    {
        Debug.Assert((taken & TakenBit) == 0, "taken holds the pre-take value");
        // Release: our writes to Count and the items are visible before the word reads free.
        Volatile.Write(ref cache->State, taken + 2);
    }

    /// <summary>
    /// The owner's common case of a pop, inlined: the word is free and the cache holds an item. One
    /// CAS; nothing else is tried (the caller falls back to <see cref="CpuCacheSet.TryPop"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryPopUncontended(CpuCache* cache, out nint item)
    {
        if (TryTake(cache, out long taken))
        {
            int count = cache->Count;
            if (count != 0)
            {
                count--;
                item = Items(cache)[count];
                cache->Count = count;
                Release(cache, taken);
                return true;
            }

            Release(cache, taken); // Empty: the caller's fallback refills, taking the word again.
        }

        item = 0;
        return false;
    }

    /// <summary>
    /// The owner's common case of a push, inlined: the word is free, the cache below its high mark and
    /// the item cacheable (checked while the word is held, as the drain requires). One CAS; nothing else
    /// is tried (the caller falls back to <see cref="CpuCacheSet.Push{TCheck}"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryPushUncontended<TCheck>(CpuCache* cache, nint item, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        if (TryTake(cache, out long taken))
        {
            int count = cache->Count;
            bool pushed = count < cache->High && check.IsCacheable(item);
            if (pushed)
            {
                Items(cache)[count] = item;
                cache->Count = count + 1;
            }

            Release(cache, taken);
            return pushed;
        }

        return false;
    }

    /// <summary>Pops the hottest item, refilling a batch from <paramref name="backend"/> when empty. Under the word.</summary>
    internal static bool PopHeld(CpuCache* cache, ICacheBackend backend, int cpu, out nint item)
    {
        if (cache->Count == 0)
        {
            RefillHeld(cache, backend, cpu, new BackendCacheableCheck(backend));
        }

        int count = cache->Count;
        if (count == 0)
        {
            item = 0;
            return false;
        }

        count--;
        item = Items(cache)[count];
        cache->Count = count;
        return true;
    }

    /// <summary>Pushes an item that passed <see cref="ICacheBackend.IsCacheable"/>; over <see cref="High"/>, flushes a batch. Under the word.</summary>
    internal static void PushHeld(CpuCache* cache, ICacheBackend backend, nint item)
    {
        int count = cache->Count;
        Debug.Assert(count < cache->Capacity, "a push never finds the cache over High");
        Items(cache)[count] = item;
        cache->Count = ++count;
        if (count > cache->High)
        {
            FlushColdHeld(cache, backend, Math.Min(cache->Batch, count));
        }
    }

    /// <summary>Fills an empty cache with up to one batch from the backend, returning non-cacheable items to it. Under the word.</summary>
    internal static void RefillHeld<TCheck>(CpuCache* cache, ICacheBackend backend, int cpu, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        Debug.Assert(cache->Count == 0, "refill only when empty");
        nint* items = Items(cache);
        int produced = backend.RefillBatch(cpu, new Span<nint>(items, Math.Min(cache->Batch, cache->Capacity)));
        cache->Refills++;
        cache->ItemsRefilled += produced;
        cache->Count = KeepCacheable(items, produced, backend, check);
    }

    /// <summary>Flushes the <paramref name="itemCount"/> coldest items to the backend. Under the word.</summary>
    internal static void FlushColdHeld(CpuCache* cache, ICacheBackend backend, int itemCount)
    {
        nint* items = Items(cache);
        int count = cache->Count;
        backend.FlushBatch(new ReadOnlySpan<nint>(items, itemCount));
        int left = count - itemCount;
        Buffer.MemoryCopy(items + itemCount, items, (long)left * sizeof(nint), (long)left * sizeof(nint));
        cache->Count = left;
        cache->Flushes++;
        cache->ItemsFlushed += itemCount;
    }

    /// <summary>Flushes every item to the backend; returns how many. Under the word.</summary>
    internal static int DrainHeld(CpuCache* cache, ICacheBackend backend)
    {
        int count = cache->Count;
        if (count != 0)
        {
            FlushColdHeld(cache, backend, count);
        }

        return count;
    }

    /// <summary>
    /// Compacts the non-cacheable items out of <paramref name="items"/>[0..count), handing each to the
    /// backend one by one (rare: only while a block is isolated), and returns how many remain.
    /// </summary>
    internal static int KeepCacheable<TCheck>(nint* items, int count, ICacheBackend backend, TCheck check)
        where TCheck : struct, ICacheableCheck
    {
        int kept = 0;
        for (int i = 0; i < count; i++)
        {
            nint item = items[i];
            if (check.IsCacheable(item))
            {
                items[kept++] = item;
            }
            else
            {
                backend.FlushBatch(new ReadOnlySpan<nint>(in item));
            }
        }

        return kept;
    }
}
