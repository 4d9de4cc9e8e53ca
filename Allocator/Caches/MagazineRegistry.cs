using System.Diagnostics;
using System.Numerics;
using Numalloc.Platform;

namespace Numalloc.Caches;

/// <summary>Work run on a claimed <see cref="MagazineSet"/> (the claimer holds <see cref="MagazineSet.Busy"/>).</summary>
/// <param name="set">The set, whose magazines the callback may read and change.</param>
internal unsafe delegate void MagazineWorkCallback(MagazineSet* set);

/// <summary>
/// Every thread's <see cref="MagazineSet"/> for one cache hierarchy (kinds = <see cref="CpuCacheSet"/>s),
/// the deferred work they can be asked to do, the drains that reach all of them, and the combined
/// fast path magazine → CPU cache → backend.
/// </summary>
/// <remarks>
/// <para><b>The race.</b> A set is native memory owned by its thread, and its thread can exit at any
/// moment, leaving items in it; requesters hold pointers to sets while they wait.</para>
/// <para><b>The rule.</b> Sets are linked, unlinked and freed only under <c>_lock</c>. Requesters find
/// sets only under <c>_lock</c> and pin them there (<c>Entry.Pins</c>) for as long as they use them,
/// then unpin under <c>_lock</c>; they never wait while holding it. The reaper (<see cref="Reap"/>)
/// takes a set of an exited thread (<see cref="Thread.IsAlive"/> false) under <c>_lock</c>: claims
/// <see cref="MagazineSet.Busy"/>, runs the pending work, flushes every magazine to the backends,
/// unlinks it, and frees it at once or, if pinned, at the last unpin. A set is never freed while its
/// owner is alive (the owner's thread-static pointer may still point at it): <see cref="Dispose"/>
/// retires such sets instead, freeing them once their owner has exited.</para>
/// <para>Lock order: <c>_lock</c> → backend locks. Backends never call back into the registry.</para>
/// </remarks>
internal sealed unsafe class MagazineRegistry : IDisposable
{
    /// <summary>The built-in work bit: flush every magazine of every kind to the backends.</summary>
    public const uint DrainAllWork = 1u;

    /// <summary>
    /// New sets between two reaps run by <see cref="Current"/> itself, so a process whose threads come and go
    /// without anyone draining does not accumulate exited threads' sets (and the items they hold).
    /// </summary>
    public const int ReapEverySets = 64;

    private static long s_lastRegistryId;
    private static readonly Lock s_retiredLock = new();
    private static readonly List<RetiredSet> s_retired = [];

    private readonly Lock _lock = new();
    private readonly List<Entry> _entries = [];
    private readonly CpuCacheSet[] _kinds;
    private readonly int[] _capacities;
    private readonly int _capacity;
    private readonly long _id;
    private readonly object _completionGate = new();
    private readonly int[]?[] _drainKindsOfBit = new int[]?[31];
    private readonly MagazineWorkCallback?[] _callbackOfBit = new MagazineWorkCallback?[31];
    private GCHandle _self;
    private int _nextWorkBit = 1;
    private int _setsSinceReap;
    private int _completionEpoch;
    private int _waiters;
    private long _requests;
    private long _doneRemotely;
    private long _doneByOwner;
    private long _coalesced;
    private long _setsReaped;
    private bool _disposed;

    /// <summary>Creates a registry over <paramref name="kinds"/> (kind i = <paramref name="kinds"/>[i]).</summary>
    /// <param name="kinds">One CPU-cache set per kind; the registry does not own them.</param>
    /// <param name="magazineCapacity">Items per magazine (refills and flushes move half of it).</param>
    /// <exception cref="ArgumentException">No kinds.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="magazineCapacity"/> below 2 or above 4096.</exception>
    public MagazineRegistry(CpuCacheSet[] kinds, int magazineCapacity)
        : this(kinds, Uniform(kinds, magazineCapacity))
    {
    }

    /// <summary>Creates a registry whose magazine of kind i holds at most <paramref name="magazineCapacities"/>[i] items.</summary>
    /// <param name="kinds">One CPU-cache set per kind; the registry does not own them.</param>
    /// <param name="magazineCapacities">Items per magazine, per kind (the generic refill and flush move half of one).</param>
    /// <exception cref="ArgumentException">No kinds, or not one capacity per kind.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A capacity below 2 or above 4096.</exception>
    public MagazineRegistry(CpuCacheSet[] kinds, int[] magazineCapacities)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        ArgumentNullException.ThrowIfNull(magazineCapacities);
        if (kinds.Length == 0)
        {
            throw new ArgumentException("At least one kind is needed.", nameof(kinds));
        }

        if (magazineCapacities.Length != kinds.Length)
        {
            throw new ArgumentException("One magazine capacity per kind is needed.", nameof(magazineCapacities));
        }

        foreach (int capacity in magazineCapacities)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2, nameof(magazineCapacities));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 4096, nameof(magazineCapacities));
        }

        _kinds = (CpuCacheSet[])kinds.Clone();
        _capacities = (int[])magazineCapacities.Clone();
        _capacity = _capacities.Max();
        _id = Interlocked.Increment(ref s_lastRegistryId); // Atomic only: unique ids, orders nothing.
        _self = GCHandle.Alloc(this, GCHandleType.Normal);
        SweepRetired();
    }

    /// <summary>Kinds (magazines per set).</summary>
    public int KindCount => _kinds.Length;

    /// <summary>This registry's id: a set belongs to it exactly when its <see cref="MagazineSet.RegistryId"/> equals this.</summary>
    public long Id => _id;

    /// <summary>
    /// The calling thread's current set, of whichever registry it used last (null before its first
    /// use): one thread-static load. A fast path compares its <see cref="MagazineSet.RegistryId"/> with
    /// its own registry's <see cref="Id"/> and goes through <see cref="Current"/> when they differ.
    /// </summary>
    internal static MagazineSet* ThreadSet
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ThreadMagazines.Current;
    }

    /// <summary>The CPU-cache set of <paramref name="kind"/>.</summary>
    public CpuCacheSet KindAt(int kind) => _kinds[kind];

    /// <summary>The calling thread's set, created and registered on first use (slow path).</summary>
    public MagazineSet* Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            MagazineSet* set = ThreadMagazines.Current;
            return set != null && set->RegistryId == _id ? set : Attach();
        }
    }

    /// <summary>Bytes of native memory the registered sets take (racy).</summary>
    public long MetadataBytes => (long)SetCount * (long)MagazineSet.SizeBytes(_kinds.Length, _capacity);

    /// <summary>Sets registered now (racy).</summary>
    public int SetCount
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Items in every registered set's magazines of <paramref name="kind"/>. Exact only while no owner runs (tests, stats).</summary>
    public long CountMagazineItems(int kind)
    {
        long total = 0;
        lock (_lock)
        {
            foreach (Entry entry in _entries)
            {
                total += MagazineSet.CountOf(entry.Set, kind);
            }
        }

        return total;
    }

    /// <summary>A snapshot of the protocol counters (exact once every request has returned).</summary>
    public MagazineCounters Counters => new(
        Interlocked.Read(ref _requests),
        Interlocked.Read(ref _doneRemotely),
        Interlocked.Read(ref _doneByOwner),
        Interlocked.Read(ref _coalesced),
        Interlocked.Read(ref _setsReaped));

    internal int CompletionEpoch => Volatile.Read(ref _completionEpoch); // Acquire: read before the IsDone checks it guards.

    /// <summary>Registers a work bit that drains the magazines of <paramref name="kinds"/> only. Register at start-up, before any request.</summary>
    /// <returns>The bit to pass to <see cref="DrainAll"/> or <see cref="DeferredWork.Request"/>.</returns>
    /// <exception cref="InvalidOperationException">All 30 registrable bits are taken.</exception>
    public uint RegisterDrainWork(params int[] kinds)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        foreach (int kind in kinds)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(kind);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(kind, _kinds.Length);
        }

        lock (_lock)
        {
            int bit = TakeWorkBitLocked();
            _drainKindsOfBit[bit] = (int[])kinds.Clone();
            return 1u << bit;
        }
    }

    /// <summary>
    /// Registers a work bit whose work is <paramref name="callback"/>, run by whoever claims the bit (the
    /// owner, a requester or the reaper), exactly once per claim. Register at start-up, before any request.
    /// </summary>
    /// <exception cref="InvalidOperationException">All 30 registrable bits are taken.</exception>
    public uint RegisterWork(MagazineWorkCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_lock)
        {
            int bit = TakeWorkBitLocked();
            _callbackOfBit[bit] = callback;
            return 1u << bit;
        }
    }

    /// <summary>Enters the allocator on the calling thread's set; dispose the scope to exit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MagazineScope EnterScope() => MagazineSet.EnterScope(Current);

    /// <summary>
    /// Takes one item of <paramref name="kind"/>: the thread's magazine, else a refill from a CPU cache
    /// (itself refilled from the backend), or, while work is pending on the magazines, the CPU caches
    /// directly.
    /// </summary>
    /// <returns>False when the backend is out of items.</returns>
    public bool TryAllocate(int kind, out nint item)
    {
        MagazineSet* set = Current;
        using MagazineScope scope = MagazineSet.EnterScope(set);
        if (!scope.Bypass)
        {
            return MagazineSet.TryPop(set, kind, out item) || RefillAndPop(set, kind, out item);
        }

        return _kinds[kind].TryPop(PlatformCpu.Current(), out item);
    }

    /// <summary>
    /// Gives back one item of <paramref name="kind"/>: into the thread's magazine (flushing half of a full
    /// one to a CPU cache), or, while work is pending, a CPU cache. An item of an isolated block goes
    /// straight to the backend.
    /// </summary>
    // Race: the item's block is isolated and this thread's magazines drained while the free runs.
    // Rule: the block state is read inside the scope (after InAllocator is set), so a drain request
    // either sees this thread inside and its work runs at the outermost exit, after the push, or
    // its Pending bit is visible to this entry, which then bypasses the magazines.
    public void Free(int kind, nint item)
    {
        CpuCacheSet caches = _kinds[kind];
        MagazineSet* set = Current;
        using MagazineScope scope = MagazineSet.EnterScope(set);
        if (!caches.Backend.IsCacheable(item))
        {
            caches.Backend.FlushBatch(new ReadOnlySpan<nint>(in item));
        }
        else if (scope.Bypass)
        {
            caches.Push(PlatformCpu.Current(), item);
        }
        else if (!MagazineSet.TryPush(set, kind, item))
        {
            FlushColdHalf(set, kind);
            MagazineSet.TryPush(set, kind, item);
        }
    }

    /// <summary>
    /// Asks every registered set to run <paramref name="workBits"/> (reaping exited threads' sets
    /// first), waits until all have run it, then drains every CPU cache of the kinds concerned.
    /// From inside the allocator, call it from the outermost frame only to wait; a nested frame gets
    /// false back while owners inside still have the work to do at their exit.
    /// </summary>
    /// <remarks>Takes the registry lock and the backends' locks (reaping, flushing): call it holding no
    /// backend lock and no CPU-cache word.</remarks>
    /// <param name="workBits"><see cref="DrainAllWork"/> or registered bits.</param>
    /// <param name="timeoutMs">How long to wait for owners inside the allocator; negative = forever.</param>
    /// <returns>True when every set ran the work (the CPU caches are drained either way).</returns>
    public bool DrainAll(uint workBits = DrainAllWork, int timeoutMs = Timeout.Infinite)
    {
        ArgumentOutOfRangeException.ThrowIfZero(workBits);
        Reap();
        DeferredWork.Ticket[] tickets;
        Entry[] pinned;
        lock (_lock)
        {
            pinned = [.. _entries];
            tickets = new DeferredWork.Ticket[pinned.Length];
            for (int i = 0; i < pinned.Length; i++)
            {
                pinned[i].Pins++;
                tickets[i].Target = pinned[i].Set;
                tickets[i].Owner = pinned[i].Owner;
            }
        }

        bool done = true;
        try
        {
            if (tickets.Length != 0)
            {
                done = DeferredWork.RequestAll(this, tickets, workBits, timeoutMs);
            }
        }
        finally
        {
            Unpin(pinned);
        }

        // After the magazines: an owner inside may have pushed into a CPU cache before its exit.
        for (int kind = 0; kind < _kinds.Length; kind++)
        {
            if (BitConcernsKind(workBits, kind))
            {
                _kinds[kind].DrainAll();
            }
        }

        return done;
    }

    /// <summary>
    /// Finds the sets of exited threads, runs their pending work, flushes them to the backends,
    /// unlinks and frees them (see the class remarks).
    /// </summary>
    /// <returns>Sets reaped.</returns>
    public int Reap()
    {
        SweepRetired();
        int reaped = 0;
        lock (_lock)
        {
            for (int i = _entries.Count - 1; i >= 0; i--)
            {
                Entry entry = _entries[i];
                if (entry.Owner.IsAlive)
                {
                    continue;
                }

                // A dead owner never touches its set again: claim it whole and flush it.
                FlushClaimedWhole(entry.Set, byOwner: false);
                _entries.RemoveAt(i);
                entry.Unlinked = true;
                if (entry.Pins == 0)
                {
                    FreeSet(entry.Set);
                }

                reaped++;
            }
        }

        Interlocked.Add(ref _setsReaped, reaped); // Atomic only: a statistic, orders nothing.
        return reaped;
    }

    /// <summary>
    /// <c>na_thread_flush</c>: runs the calling thread's pending work, flushes its magazines to the
    /// backends, and unregisters and frees its set (a later allocation makes a new one); while a
    /// <see cref="ThreadPageCache"/> of the thread is open, the emptied set stays registered.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from inside the allocator.</exception>
    public void FlushCurrentThread()
    {
        MagazineSet* set = ThreadMagazines.Current;
        if (set == null || set->RegistryId != _id)
        {
            return;
        }

        if (set->InAllocator != 0)
        {
            ThrowInsideAllocator();
        }

        lock (_lock)
        {
            int index = _entries.FindIndex(e => e.Set == set);
            Entry entry = _entries[index];
            FlushClaimedWhole(set, byOwner: true);
            if (set->OpenHandles != 0)
            {
                return; // An open ThreadPageCache holds the set's address: keep it, empty.
            }

            _entries.RemoveAt(index);
            entry.Unlinked = true;
            ThreadMagazines.Current = null;
            if (entry.Pins == 0)
            {
                FreeSet(set);
            }
        }
    }

    /// <summary>
    /// Flushes every set to the backends and releases the registry. No thread may use the registry
    /// any more. Sets of live threads are retired (freed once their owner exits), not freed.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (Entry entry in _entries)
            {
                FlushClaimedWhole(entry.Set, byOwner: false);
                entry.Unlinked = true;
                if (!entry.Owner.IsAlive && entry.Pins == 0)
                {
                    FreeSet(entry.Set);
                }
                else
                {
                    // The owner's ThreadMagazines.Current may still point here: make its registry check fail, keep the memory.
                    entry.Set->RegistryId = 0;
                    entry.Set->RegistryHandle = 0;
                    lock (s_retiredLock)
                    {
                        s_retired.Add(new RetiredSet(entry.Owner, (nint)entry.Set));
                    }
                }
            }

            _entries.Clear();
        }

        _self.Free();
    }

    /// <summary>The registry owning <paramref name="set"/> (slow paths only).</summary>
    internal static MagazineRegistry Of(MagazineSet* set) =>
        (MagazineRegistry)GCHandle.FromIntPtr(set->RegistryHandle).Target!;

    /// <summary>The calling thread's set in this registry, or null; never creates one.</summary>
    internal MagazineSet* CurrentIfAttached()
    {
        MagazineSet* set = ThreadMagazines.Current;
        return set != null && set->RegistryId == _id ? set : null;
    }

    /// <summary>Runs claimed work bits on <paramref name="set"/>. The caller holds <see cref="MagazineSet.Busy"/> (or owns a dead set).</summary>
    internal void RunWork(MagazineSet* set, uint bits)
    {
        if ((bits & DrainAllWork) != 0)
        {
            for (int kind = 0; kind < _kinds.Length; kind++)
            {
                FlushMagazine(set, kind);
            }
        }

        uint others = bits & ~DrainAllWork;
        while (others != 0)
        {
            int bit = BitOperations.TrailingZeroCount(others);
            others &= others - 1;
            if (_drainKindsOfBit[bit] is int[] kinds)
            {
                foreach (int kind in kinds)
                {
                    FlushMagazine(set, kind);
                }
            }

            _callbackOfBit[bit]?.Invoke(set);
        }
    }

    internal void CountRequests(long requests, long coalesced)
    {
        Interlocked.Add(ref _requests, requests); // Atomic only: a counter, orders nothing.
        Interlocked.Add(ref _coalesced, coalesced); // Atomic only: a counter, orders nothing.
    }

    internal void CountDone(int bits, bool byOwner)
    {
        // Atomic only: counters; Complete's atomic add publishes them before the completion is seen.
        Interlocked.Add(ref byOwner ? ref _doneByOwner : ref _doneRemotely, bits);
    }

    /// <summary>Wakes requesters waiting in <see cref="WaitForCompletion"/>.</summary>
    internal void NotifyCompletion()
    {
        // Full fence (atomic increment) before the waiter-count read: pairs with the waiter's increment
        // of _waiters before its epoch re-check, so one of us sees the other (no lost wake-up).
        Interlocked.Increment(ref _completionEpoch);
        if (Volatile.Read(ref _waiters) != 0)
        {
            lock (_completionGate)
            {
                Monitor.PulseAll(_completionGate);
            }
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for a completion after <paramref name="epoch"/>.</summary>
    internal void WaitForCompletion(int epoch, int timeoutMs)
    {
        // Full fence (atomic increment): our presence is visible before we re-read the epoch.
        Interlocked.Increment(ref _waiters);
        try
        {
            lock (_completionGate)
            {
                if (Volatile.Read(ref _completionEpoch) == epoch) // Acquire: see NotifyCompletion.
                {
                    Monitor.Wait(_completionGate, timeoutMs);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiters); // Atomic only: the count's exactness matters, not its order.
        }
    }

    private static int[] Uniform(CpuCacheSet[] kinds, int magazineCapacity)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        var capacities = new int[kinds.Length];
        Array.Fill(capacities, magazineCapacity);
        return capacities;
    }

    private static void ThrowInsideAllocator() =>
        throw new InvalidOperationException("A thread cannot flush its magazines from inside the allocator.");

    private static void FreeSet(MagazineSet* set) => NativeMemory.AlignedFree(set);

    // Frees retired sets whose owner has exited (no thread-static can point at them any more).
    private static void SweepRetired()
    {
        lock (s_retiredLock)
        {
            for (int i = s_retired.Count - 1; i >= 0; i--)
            {
                if (!s_retired[i].Owner.IsAlive)
                {
                    FreeSet((MagazineSet*)s_retired[i].Set);
                    s_retired.RemoveAt(i);
                }
            }
        }
    }

    private int TakeWorkBitLocked()
    {
        if (_nextWorkBit > 30)
        {
            throw new InvalidOperationException("All magazine work bits are registered.");
        }

        return _nextWorkBit++;
    }

    private bool BitConcernsKind(uint workBits, int kind)
    {
        if ((workBits & DrainAllWork) != 0)
        {
            return true;
        }

        uint others = workBits & ~DrainAllWork;
        while (others != 0)
        {
            int bit = BitOperations.TrailingZeroCount(others);
            others &= others - 1;
            if (_drainKindsOfBit[bit] is int[] kinds && Array.IndexOf(kinds, kind) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    // Claims the set whole (its owner is dead, is the caller, or the registry is being disposed), runs
    // the work pending on it and flushes every magazine. Counted like any claim.
    private void FlushClaimedWhole(MagazineSet* set, bool byOwner)
    {
        uint taken = DeferredWork.ClaimAll(set);
        RunWork(set, taken);
        for (int kind = 0; kind < _kinds.Length; kind++)
        {
            FlushMagazine(set, kind);
        }

        DeferredWork.Complete(set, taken, byOwner);
    }

    /// <summary>Returns every item of one magazine to its kind's backend. Owner inside, or a claimer holding <see cref="MagazineSet.Busy"/>.</summary>
    internal void FlushMagazine(MagazineSet* set, int kind)
    {
        Magazine* magazine = MagazineSet.MagazineAt(set, kind);
        int count = magazine->Count;
        if (count != 0)
        {
            _kinds[kind].Backend.FlushBatch(new ReadOnlySpan<nint>(Magazine.Items(magazine), count));
            magazine->Count = 0;
        }
    }

    private bool RefillAndPop(MagazineSet* set, int kind, out nint item)
    {
        Magazine* magazine = MagazineSet.MagazineAt(set, kind);
        int moved = _kinds[kind].PopBatch(PlatformCpu.Current(), new Span<nint>(Magazine.Items(magazine), magazine->Capacity / 2));
        magazine->Count = moved;
        return MagazineSet.TryPop(set, kind, out item);
    }

    private void FlushColdHalf(MagazineSet* set, int kind)
    {
        Magazine* magazine = MagazineSet.MagazineAt(set, kind);
        nint* items = Magazine.Items(magazine);
        int count = magazine->Count;
        int moved = Math.Min(magazine->Capacity / 2, count);
        _kinds[kind].PushBatch(PlatformCpu.Current(), new ReadOnlySpan<nint>(items, moved));
        int left = count - moved;
        Buffer.MemoryCopy(items + moved, items, (long)left * sizeof(nint), (long)left * sizeof(nint));
        magazine->Count = left;
    }

    private MagazineSet* Attach()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        MagazineSet* previous = ThreadMagazines.Current;
        Debug.Assert(previous == null || previous->InAllocator == 0, "no registry switch inside the allocator");
        Thread me = Thread.CurrentThread;
        MagazineSet* set = null;
        bool reap = false;
        lock (_lock)
        {
            foreach (Entry entry in _entries)
            {
                if (entry.Owner == me)
                {
                    set = entry.Set;
                    break;
                }
            }

            if (set == null)
            {
                nuint bytes = MagazineSet.SizeBytes(_kinds.Length, _capacity);
                set = (MagazineSet*)NativeMemory.AlignedAlloc(bytes, 64);
                NativeMemory.Clear(set, bytes);
                set->KindCount = _kinds.Length;
                set->Capacity = _capacity;
                set->MagazineStrideBytes = MagazineSet.StrideBytes(_capacity);
                for (int kind = 0; kind < _kinds.Length; kind++)
                {
                    MagazineSet.MagazineAt(set, kind)->Capacity = _capacities[kind];
                }

                set->OwnerNeedsFence = MembarrierSupport.OwnerNeedsFence ? 1 : 0;
                set->RegistryId = _id;
                set->RegistryHandle = GCHandle.ToIntPtr(_self);
                set->OwnerThreadId = Environment.CurrentManagedThreadId;
                _entries.Add(new Entry(set, me));
                if (++_setsSinceReap >= ReapEverySets)
                {
                    _setsSinceReap = 0;
                    reap = true;
                }
            }
        }

        ThreadMagazines.Current = set;
        if (reap)
        {
            // Outside every lock and before the caller enters the allocator: Reap takes the registry lock
            // and the backends' locks.
            Reap();
        }

        return set;
    }

    private void Unpin(Entry[] pinned)
    {
        lock (_lock)
        {
            foreach (Entry entry in pinned)
            {
                if (--entry.Pins == 0 && entry.Unlinked && !_disposed)
                {
                    FreeSet(entry.Set);
                }
            }
        }
    }

    private sealed class Entry(MagazineSet* set, Thread owner)
    {
        public MagazineSet* Set { get; } = set;

        public Thread Owner { get; } = owner;

        // Requesters using the set now; changed under the registry lock only.
        public int Pins { get; set; }

        // Unlinked by the reaper or a flush; freed at the last unpin.
        public bool Unlinked { get; set; }
    }

    private readonly record struct RetiredSet(Thread Owner, nint Set);
}

/// <summary>The deferred-work counters of a <see cref="MagazineRegistry"/>.</summary>
/// <param name="Requests">Work bits requested (one per bit per target set).</param>
/// <param name="DoneRemotely">Requested bits whose work a requester (or the reaper) ran.</param>
/// <param name="DoneByOwner">Requested bits whose work the owning thread ran.</param>
/// <param name="Coalesced">Requests whose bit was already set, merged into a claim that had not chosen its items yet.</param>
/// <param name="SetsReaped">Sets of exited threads reaped.</param>
internal readonly record struct MagazineCounters(long Requests, long DoneRemotely, long DoneByOwner, long Coalesced, long SetsReaped);

/// <summary>
/// The calling thread's current magazine set: the one thread-static of the fast paths. A class of its
/// own with no other static, so NativeAOT reads it with no class-constructor check (MagazineRegistry's
/// static initializers would need one on every fast-path call).
/// </summary>
internal static unsafe class ThreadMagazines
{
    /// <summary>The set of whichever registry the thread used last; null before its first use.</summary>
    [ThreadStatic]
    internal static MagazineSet* Current;
}
