using System.Numerics;
using System.Globalization;
using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Movable;

/// <summary>
/// Movable buffers over the page allocator: allocation (Movable zones first, Normal as fallback, as
/// the kernel's GFP_MOVABLE), pins, frees and migration, all through one state word per handle.
/// Thread-safe. Owns its handle table; the page allocator stays the caller's.
/// </summary>
/// <remarks>
/// <para><b>The race.</b> A migrator moves a buffer while users pin, unpin and free it: a pinned
/// pointer must never move, a free racing a migration must never free the slot's next buffer, and
/// nested or crossed pins must never deadlock a migration.</para>
/// <para><b>The rule</b> (checked in <c>eng/models/handle.pml</c>). Every change is one CAS of the whole
/// word (generation, pins, state, FreeRequested). Pin waits while the state is MigratePending or
/// Migrating and refuses a stale generation, Freed or FreeRequested. The migrator sets MigratePending
/// (new pins wait, existing pins drain) for at most one window (about a millisecond); pins still held
/// then → CAS back to Normal and the caller retries that buffer only after its word changed or another
/// window passed (never back to back: that livelocks the pin holders). With no pins → Migrating; the
/// pointer is written while Migrating (nobody reads it then) and published by the CAS back to Normal;
/// if that CAS fails, the only cause is FreeRequested and the migrator completes the free. Free refuses
/// a pinned buffer (an error, no state change); during MigratePending/Migrating it only sets
/// FreeRequested. A freed slot is reused at generation + 1.</para>
/// <para>Each buffer's head page descriptor says <see cref="PageState.Movable"/> with the slot in
/// <see cref="PageDescriptor.Owner"/>, so an offline finds the buffers of a block by scanning it.</para>
/// </remarks>
internal sealed unsafe class MovableHeap : IDisposable
{
    /// <summary>The largest buffer: one largest buddy block (4 MiB).</summary>
    public const int MaxSizeBytes = HeapLayout.PageSize << PageHeap.MaxOrder;

    /// <summary>Default handle-table size.</summary>
    public const int DefaultHandleCapacity = 1 << 16;

    private readonly PageAllocator _pages;
    private readonly PageHeap _heap;
    private readonly HandleTable _table;
    private long _migrated;
    private long _pagesMigrated;
    private long _pinnedRollbacks;
    private long _noRoomRollbacks;
    private long _freesCompletedByMigrator;

    /// <summary>Creates the heap over <paramref name="pages"/> with <paramref name="handleCapacity"/> handle slots.</summary>
    public MovableHeap(PageAllocator pages, int handleCapacity = DefaultHandleCapacity)
    {
        ArgumentNullException.ThrowIfNull(pages);
        _pages = pages;
        _heap = pages.Heap;
        _table = new HandleTable(handleCapacity);
        MigratePendingWindowTicks = Stopwatch.Frequency / 1000;
    }

    /// <summary>How long a migration waits in MigratePending for pins to drain (default 1 ms), in Stopwatch ticks.</summary>
    public long MigratePendingWindowTicks { get; set; }

    /// <summary>
    /// Test hook: called by <see cref="MigrateOne"/> with the slot once the word says Migrating, before
    /// the copy (never while MigratePending). A test frees or pins the buffer in it.
    /// </summary>
    internal Action<int>? TestHookWhileMigrating { get; set; }

    /// <summary>The page allocator behind the buffers.</summary>
    public PageAllocator Pages => _pages;

    /// <summary>Live buffers (racy).</summary>
    public int LiveCount => _table.LiveCount;

    /// <summary>The migration counters.</summary>
    public MovableStats Stats => new(
        _table.LiveCount,
        Interlocked.Read(ref _migrated),
        Interlocked.Read(ref _pagesMigrated),
        Interlocked.Read(ref _pinnedRollbacks),
        Interlocked.Read(ref _noRoomRollbacks),
        Interlocked.Read(ref _freesCompletedByMigrator));

    /// <summary>
    /// Allocates a buffer of <paramref name="sizeBytes"/> (rounded up to a power-of-two number of
    /// pages), on <paramref name="node"/> first when it is &gt;= 0, else by the thread's policy.
    /// </summary>
    /// <returns>The buffer, or null when no zone (Movable or Normal) could serve or every handle is in use.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Size not 1..4 MiB, or node not a node id.</exception>
    public MovableBuffer? Allocate(int sizeBytes, int node = -1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sizeBytes, MaxSizeBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(node, -1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, _heap.Nodes.Length);
        int order = OrderFor(sizeBytes);
        int slot = _table.Rent();
        if (slot < 0)
            return null;
        void* p = _pages.AllocPages(order, PageAllocFlags.Movable, node);
        if (p == null)
        {
            _table.Return(slot);
            return null;
        }
        HandleEntry* e = _table.At(slot);
        uint generation = HandleWord.Generation(Volatile.Read(ref e->Word)) + 1; // Acquire: the slot's last word.
        e->Address = (nint)p;
        e->Order = order;
        e->SizeBytes = sizeBytes;
        // Release: address, order and size are visible before a word that says Normal (a pinner's CAS reads it).
        Volatile.Write(ref e->Word, HandleWord.Make(generation, HandleState.Normal, 0, false));
        MarkHead(p, slot);
        return new MovableBuffer(this, HandleTable.MakeHandle(slot, generation), sizeBytes);
    }

    /// <summary>Pins a buffer and returns its address (see <see cref="MovableBuffer.Pin"/>).</summary>
    public byte* Pin(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out uint generation);
        var spinner = default(SpinWait);
        while (true)
        {
            long w = Volatile.Read(ref e->Word); // Acquire: pre-check; the CAS decides.
            if (HandleWord.Generation(w) != generation || HandleWord.State(w) == HandleState.Freed || HandleWord.IsFreeRequested(w))
                ThrowFreed(handle);
            if (HandleWord.State(w) != HandleState.Normal)
            {
                // A migration is pending or copying: new pins wait (so pins cannot starve it); bounded
                // by one window plus one copy.
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            if (HandleWord.Pins(w) == HandleWord.MaxPins)
                throw new InvalidOperationException($"Movable buffer 0x{handle:X} already holds {HandleWord.MaxPins} pins.");
            // Full fence (CAS): the address read below is the one published by the last republish,
            // which wrote it before its CAS back to Normal.
            if (Interlocked.CompareExchange(ref e->Word, w + HandleWord.OnePin, w) == w)
                return (byte*)e->Address;
        }
    }

    /// <summary>Releases one pin; the last unpin of a buffer whose free is pending completes the free.</summary>
    /// <exception cref="InvalidOperationException">The buffer is not pinned.</exception>
    public void Unpin(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out uint generation);
        while (true)
        {
            long w = Volatile.Read(ref e->Word); // Acquire: pre-check; the CAS decides.
            if (HandleWord.Generation(w) != generation || HandleWord.State(w) == HandleState.Freed || HandleWord.Pins(w) == 0)
                throw new InvalidOperationException($"Unpin of movable buffer 0x{handle:X}, which is not pinned; nothing was changed.");
            long next = w - HandleWord.OnePin;
            bool completeFree = HandleWord.Pins(next) == 0 && HandleWord.IsFreeRequested(next) && HandleWord.State(next) == HandleState.Normal;
            if (completeFree)
                next = HandleWord.Make(generation, HandleState.Freed, 0, false);
            // Full fence (CAS): our accesses through the pointer complete before the pin is seen released.
            if (Interlocked.CompareExchange(ref e->Word, next, w) == w)
            {
                if (completeFree)
                    ReleaseSlot(SlotOf(handle), e);
                return;
            }
        }
    }

    /// <summary>Frees a buffer (see <see cref="MovableBuffer.Free"/>).</summary>
    public void Free(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out uint generation);
        while (true)
        {
            long w = Volatile.Read(ref e->Word); // Acquire: pre-check; the CAS decides.
            if (HandleWord.Generation(w) != generation || HandleWord.State(w) == HandleState.Freed || HandleWord.IsFreeRequested(w))
                ThrowFreed(handle);
            if (HandleWord.Pins(w) != 0)
                throw new InvalidOperationException($"Free of movable buffer 0x{handle:X} while it is pinned ({HandleWord.Pins(w)} pins); nothing was changed. Dispose the pins first.");
            if (HandleWord.State(w) == HandleState.Normal)
            {
                // Full fence (CAS): Freed is decided before the pages go back; a racing migrator's
                // Normal -> MigratePending CAS fails and it finds the slot gone.
                if (Interlocked.CompareExchange(ref e->Word, HandleWord.Make(generation, HandleState.Freed, 0, false), w) == w)
                {
                    ReleaseSlot(SlotOf(handle), e);
                    return;
                }
            }
            else if (Interlocked.CompareExchange(ref e->Word, w | HandleWord.FreeRequested, w) == w)
            {
                // Full fence (CAS): the migrator's republish CAS sees the flag and completes the free.
                return;
            }
        }
    }

    /// <summary>Whether the handle's buffer is freed or has a free pending.</summary>
    public bool IsFreed(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out uint generation);
        long w = Volatile.Read(ref e->Word); // Acquire: a racy query.
        return HandleWord.Generation(w) != generation || HandleWord.State(w) == HandleState.Freed || HandleWord.IsFreeRequested(w);
    }

    /// <summary>The node whose memory holds the buffer now (racy unless pinned), or -1 when freed.</summary>
    public int NodeOf(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out uint generation);
        long w = Volatile.Read(ref e->Word); // Acquire: the address read after it is at least as new.
        if (HandleWord.Generation(w) != generation || HandleWord.State(w) == HandleState.Freed)
            return -1;
        return _heap.TryLocate((void*)e->Address, out PageLocation where) ? where.Node : -1;
    }

    /// <summary>The handle-state word's pin count and state (tests and stats).</summary>
    internal (HandleState State, int Pins, bool FreeRequested) Inspect(ulong handle)
    {
        HandleEntry* e = EntryOf(handle, out _);
        long w = Volatile.Read(ref e->Word); // Acquire: a racy query.
        return (HandleWord.State(w), HandleWord.Pins(w), HandleWord.IsFreeRequested(w));
    }

    /// <summary>The current word of a slot (the offline's retry rule compares it).</summary>
    internal long WordOf(int slot) => Volatile.Read(ref _table.At(slot)->Word); // Acquire: a racy snapshot.

    /// <summary>Whether <paramref name="slot"/> is a slot of the table.</summary>
    internal bool IsSlot(uint slot) => slot < (uint)_table.Capacity;

    /*
     * One migration (handle.pml's MigrateOne). Race: pins, unpins and frees of the same buffer. Rule:
     * see the class remarks; in addition the buffer is moved only if it still heads the page the
     * caller found it at (a slot reused elsewhere is left alone), and no callback of any kind runs
     * while the word says MigratePending.
     */
    /// <summary>
    /// Migrates the buffer of <paramref name="slot"/>, found heading <paramref name="expectedPage"/>, to
    /// another node (the nearest by distance with room; its own node only when no other can take it).
    /// </summary>
    internal MigrationOutcome MigrateOne(int slot, int expectedPage)
    {
        HandleEntry* e = _table.At(slot);
        long w;
        while (true)
        {
            w = Volatile.Read(ref e->Word); // Acquire: pre-check; the CAS decides.
            if (HandleWord.State(w) != HandleState.Normal || _heap.Layout.PageOf((void*)e->Address) != expectedPage)
                return MigrationOutcome.Gone;
            if (HandleWord.IsFreeRequested(w))
                return MigrationOutcome.Pinned; // pinned with a free pending: the last unpin frees it
            // Full fence (CAS): from here new pins wait; the address cannot change (only we move it).
            if (Interlocked.CompareExchange(ref e->Word, HandleWord.WithState(w, HandleState.MigratePending), w) == w)
                break;
        }
        if (_heap.Layout.PageOf((void*)e->Address) != expectedPage)
        {
            // Reused elsewhere between our checks: back to Normal, not ours to move.
            BackToNormal(e);
            return MigrationOutcome.Gone;
        }

        long start = Stopwatch.GetTimestamp();
        var spinner = default(SpinWait);
        while (true)
        {
            w = Volatile.Read(ref e->Word); // Acquire: the pin holders' unpins (their CAS) are seen.
            if (HandleWord.Pins(w) == 0)
            {
                // Full fence (CAS): every pin holder's accesses through the old pointer happened before its
                // unpin, which we have now seen; nobody can pin again until we republish.
                if (Interlocked.CompareExchange(ref e->Word, HandleWord.WithState(w, HandleState.Migrating), w) == w)
                    break;
                continue;
            }
            if (Stopwatch.GetTimestamp() - start >= MigratePendingWindowTicks)
            {
                // The window closed with pins held: give the holders their buffer back (nested or crossed
                // pins then make progress) and retry later.
                // Full fence (CAS): pins held are unchanged by this; waiting pinners may proceed.
                if (Interlocked.CompareExchange(ref e->Word, HandleWord.WithState(w, HandleState.Normal), w) == w)
                {
                    Interlocked.Increment(ref _pinnedRollbacks); // Atomic only: a statistic.
                    return MigrationOutcome.Pinned;
                }
                continue;
            }
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        // Migrating, no pins. A free may set FreeRequested at any moment from now on.
        TestHookWhileMigrating?.Invoke(slot);
        byte* from = (byte*)e->Address;
        int order = e->Order;
        int sourceNode = _heap.Layout.NodeOfBlock(_heap.Layout.BlockOfPage(expectedPage));
        if (HandleWord.IsFreeRequested(Volatile.Read(ref e->Word))) // Acquire: the free's CAS.
        {
            CompleteFreeFromMigrator(slot, e);
            return MigrationOutcome.Gone;
        }
        byte* to = AllocateTarget(order, sourceNode);
        if (to == null)
        {
            if (!BackToNormal(e))
            {
                CompleteFreeFromMigrator(slot, e);
                return MigrationOutcome.Gone;
            }
            Interlocked.Increment(ref _noRoomRollbacks); // Atomic only: a statistic.
            return MigrationOutcome.NoRoom;
        }
        Buffer.MemoryCopy(from, to, (long)HeapLayout.PageSize << order, (long)e->SizeBytes);
        MarkHead(to, slot);
        e->Address = (nint)to; // plain: nobody reads the address while the word says Migrating
        if (!BackToNormal(e))
        {
            // A free arrived during the copy: complete it (frees the new copy) and drop the old one.
            CompleteFreeFromMigrator(slot, e);
            _pages.FreePages(from, order);
            return MigrationOutcome.Gone;
        }
        _pages.FreePages(from, order);
        Interlocked.Increment(ref _migrated); // Atomic only: a statistic.
        Interlocked.Add(ref _pagesMigrated, 1L << order); // Atomic only: a statistic.
        return MigrationOutcome.Migrated;
    }

    /// <inheritdoc/>
    public void Dispose() => _table.Dispose();

    private static int OrderFor(int sizeBytes)
    {
        int pages = (sizeBytes + HeapLayout.PageSize - 1) >> HeapLayout.PageShift;
        return pages <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)pages - 1);
    }

    // MigratePending/Migrating -> Normal, keeping the pins; false (nothing changed) when a free is pending.
    private static bool BackToNormal(HandleEntry* e)
    {
        while (true)
        {
            long w = Volatile.Read(ref e->Word); // Acquire: pre-check; the CAS decides.
            if (HandleWord.IsFreeRequested(w) && HandleWord.Pins(w) == 0)
                return false;
            // Full fence (CAS): the new address (written while Migrating) is visible before Normal.
            if (Interlocked.CompareExchange(ref e->Word, HandleWord.WithState(w, HandleState.Normal), w) == w)
                return true;
        }
    }

    private void CompleteFreeFromMigrator(int slot, HandleEntry* e)
    {
        long w = Volatile.Read(ref e->Word); // Acquire: only FreeRequested can have changed; we own the word.
        // Release: the pages are ours to free once the word says Freed (no pinner or freer acts on Freed).
        Volatile.Write(ref e->Word, HandleWord.Make(HandleWord.Generation(w), HandleState.Freed, 0, false));
        Interlocked.Increment(ref _freesCompletedByMigrator); // Atomic only: a statistic.
        ReleaseSlot(slot, e);
    }

    private void ReleaseSlot(int slot, HandleEntry* e)
    {
        void* p = (void*)e->Address;
        int order = e->Order;
        e->Address = 0;
        _pages.FreePages(p, order);
        _table.Return(slot);
    }

    private byte* AllocateTarget(int order, int sourceNode)
    {
        var nodes = _heap.Topology.NodesByDistance(sourceNode);
        foreach (int node in nodes)
        {
            if (node == sourceNode)
                continue;
            void* p = _pages.AllocPages(order, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly, node);
            if (p != null)
                return (byte*)p;
        }
        return (byte*)_pages.AllocPages(order, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly, sourceNode);
    }

    private void MarkHead(void* p, int slot)
    {
        ref PageDescriptor d = ref _heap.Descriptor(_heap.Layout.PageOf(p));
        d.Owner = (uint)slot;
        // Release: the owner slot is visible before the state that tells an offline scan to read it.
        Volatile.Write(ref Unsafe.As<PageState, byte>(ref d.State), (byte)PageState.Movable);
    }

    private HandleEntry* EntryOf(ulong handle, out uint generation)
    {
        int slot = SlotOf(handle);
        if (slot < 0 || handle == 0)
            throw new ArgumentException(string.Format(CultureInfo.InvariantCulture, "0x{0:X} is not a movable-buffer handle.", handle), nameof(handle));
        generation = (uint)(handle >> 32);
        return _table.At(slot);
    }

    private int SlotOf(ulong handle) => _table.SlotOf(handle);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowFreed(ulong handle) =>
        throw new ObjectDisposedException(nameof(MovableBuffer), $"Movable buffer 0x{handle:X} was freed (or the handle is stale); nothing was changed.");
}

/// <summary>The movable heap's counters.</summary>
/// <param name="LiveBuffers">Buffers allocated and not freed.</param>
/// <param name="Migrated">Buffers moved to another location.</param>
/// <param name="PagesMigrated">Pages those buffers occupied.</param>
/// <param name="PinnedRollbacks">Migrations that gave up after one window because pins were held.</param>
/// <param name="NoRoomRollbacks">Migrations that found no room on any node.</param>
/// <param name="FreesCompletedByMigrator">Frees that raced a migration and were completed by the migrator.</param>
internal readonly record struct MovableStats(int LiveBuffers, long Migrated, long PagesMigrated, long PinnedRollbacks, long NoRoomRollbacks, long FreesCompletedByMigrator);
