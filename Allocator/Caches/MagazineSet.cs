using System.Diagnostics;

namespace Numalloc.Caches;

/// <summary>
/// One thread's magazines (one small owner-only stack per kind) and the two words of the deferred-work
/// protocol, in one native block reached through one thread-static pointer
/// (<see cref="MagazineRegistry.Current"/>). The owner's fast path uses no atomics and no locks.
/// </summary>
/// <remarks>
/// <para><b>The race.</b> Another thread (a hot-remove, or an allocation slow path that drains caches
/// before it fails) must empty these magazines without stopping the owner, and the owner may be inside
/// the allocator using them, or idle for hours. Nobody may touch a magazine the owner is using, no
/// drain may be lost, and none may run twice.</para>
/// <para><b>The rule</b> (model: <c>eng/models/magazine.pml</c>; requester side in <see cref="DeferredWork"/>):</para>
/// <list type="bullet">
/// <item><see cref="InAllocator"/> is written only by the owner: 1 at its outermost entry, 0 at its
/// outermost exit (exceptions included, through <see cref="MagazineScope"/>).</item>
/// <item>At the outermost entry, after storing <see cref="InAllocator"/> = 1, the owner reads
/// <see cref="Pending"/> once and decides for the whole call: zero → use the magazines; non-zero (work
/// bits, or <see cref="Busy"/>: someone is working on them) → bypass them. Nested entries keep that
/// decision (<see cref="Bypass"/>) and never read <see cref="Pending"/> or wait.</item>
/// <item>A requester ORs its work bit into <see cref="Pending"/>, runs a process-wide barrier, then reads
/// <see cref="InAllocator"/>. This is Dekker's pattern made asymmetric: the requester's barrier
/// interrupts the owner's CPU, so either the owner's store is visible to the requester (it waits; the
/// owner does the work at its outermost exit), or the owner's later load sees the bit (it bypasses),
/// which is what lets a requester that saw 0 claim and touch the magazines.</item>
/// <item>Whoever does the work first claims it: one CAS sets <see cref="Busy"/> and takes every work bit
/// present; the work runs; one atomic add clears only <see cref="Busy"/> and advances the completion
/// count (bits 32..63), so bits that arrived meanwhile stay set for the next claim.</item>
/// <item>A requester claims only while its own bit is still set (<see cref="DeferredWork.TryClaim"/>):
/// its "owner outside" observation licenses it only because that bit has been visible since before its
/// barrier. (For the Promela model: the completion count is an addition to the design's "work bits |
/// BUSY" word; it is how a requester knows its request ran, and is never read by the owner.)</item>
/// </list>
/// <para><b>Ordering on the owner's side.</b> The owner's <c>InAllocator = 1</c> store must precede its
/// <c>Pending</c> load. The .NET memory model (and x86-TSO's store buffer, and arm64) lets a store pass
/// a later load, even with <see cref="Volatile"/> on both: volatile gives release and acquire, not
/// store→load order. The design does not pay for a fence here: the requester's
/// <see cref="Interlocked.MemoryBarrierProcessWide"/> (membarrier) runs a full barrier on the owner's
/// CPU, which is enough as long as the compiler keeps the store before the load in program order. A
/// test disassembles <see cref="EnterOutermost"/> to check that (<c>MagazineDisassemblyTests</c>). Where
/// membarrier is unavailable (<see cref="MembarrierSupport.OwnerNeedsFence"/>) the owner issues a full
/// fence between the two instead.</para>
/// <para>Layout: a 64-byte header, then one <see cref="Magazine"/> per kind at a 64-byte stride.</para>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = HeaderBytes)]
internal unsafe struct MagazineSet
{
    /// <summary>Size of the header; the first magazine starts here.</summary>
    internal const int HeaderBytes = 64;

    /// <summary>Bit 31 of <see cref="Pending"/>: a claim is in progress; nobody else touches the magazines.</summary>
    internal const long Busy = 1L << 31;

    /// <summary>The work bits of <see cref="Pending"/> (bits 0..30).</summary>
    internal const long WorkMask = Busy - 1;

    /// <summary>One claim's completion in the upper half of <see cref="Pending"/>.</summary>
    internal const long CompletionUnit = 1L << 32;

    /// <summary>
    /// Owner-written protocol word: the depth of the owner's entries, so non-zero exactly while it is
    /// inside the allocator (the outermost entry stores 1, the outermost exit 0). One word for both
    /// saves the fast paths a load and a store per call; requesters only ever test it against zero.
    /// </summary>
    [FieldOffset(0)] internal int InAllocator;

    /// <summary>
    /// 1 when the owner must fence between its <see cref="InAllocator"/> store and its <see cref="Pending"/>
    /// load (<see cref="MembarrierSupport.OwnerNeedsFence"/>, copied here when the set is made): the
    /// ahead-of-time build reads it here, next to the word it is about, instead of through a static
    /// with a class-constructor check. Read-only after creation.
    /// </summary>
    [FieldOffset(4)] internal int OwnerNeedsFence;

    /// <summary>Requests: work bits 0..30, <see cref="Busy"/> bit 31, completed claims in bits 32..63.</summary>
    [FieldOffset(8)] internal long Pending;

    /// <summary>The outermost entry's decision (1 = bypass the magazines) for the whole call. Owner only.</summary>
    [FieldOffset(16)] internal int Bypass;

    /// <summary>Kinds, hence magazines.</summary>
    [FieldOffset(20)] internal int KindCount;

    /// <summary>Items the largest magazine holds (sizes the stride; each magazine has its own <see cref="Magazine.Capacity"/>).</summary>
    [FieldOffset(24)] internal int Capacity;

    /// <summary>Bytes from one magazine to the next.</summary>
    [FieldOffset(28)] internal int MagazineStrideBytes;

    /// <summary>The owning registry's id; 0 once the registry retired the set.</summary>
    [FieldOffset(32)] internal long RegistryId;

    /// <summary>A <see cref="GCHandle"/> to the owning <see cref="MagazineRegistry"/> (slow paths only).</summary>
    [FieldOffset(40)] internal nint RegistryHandle;

    /// <summary>Managed id of the owning thread (diagnostics).</summary>
    [FieldOffset(48)] internal int OwnerThreadId;

    /// <summary>
    /// The user's cached "home" plus one (0 = not known yet): for the page caches the kind the owner's
    /// CPU maps to (with magazines off, the CPU itself, for <see cref="ThreadPageCache"/>), for the object
    /// caches the node whose objects the magazines hold, so the fast path needs no CPU lookup. Owner only.
    /// </summary>
    [FieldOffset(52)] internal int HomeKindPlusOne;

    /// <summary>Fast-path operations left before the owner re-derives <see cref="HomeKindPlusOne"/> (its thread may have moved). Owner only.</summary>
    [FieldOffset(56)] internal int OpsUntilHomeCheck;

    /// <summary>
    /// The owner's open <see cref="ThreadPageCache"/> handles, which hold this set's address: while any is
    /// open, <see cref="MagazineRegistry.FlushCurrentThread"/> empties the set but keeps it. Owner only.
    /// </summary>
    [FieldOffset(60)] internal int OpenHandles;

    /// <summary>Bytes a set with <paramref name="kindCount"/> magazines of <paramref name="capacity"/> items takes.</summary>
    internal static nuint SizeBytes(int kindCount, int capacity) =>
        HeaderBytes + (nuint)kindCount * (nuint)StrideBytes(capacity);

    /// <summary>
    /// Bytes from one magazine to the next: the count, the items, rounded up to two lines. An even
    /// number of lines puts every magazine's count at an odd multiple of 64 bytes from the header, so
    /// never 4 KiB apart from the protocol words the same call stores: with a stride of nine lines the
    /// count of the eighth magazine (the 64-byte objects) sat exactly 4 KiB after <see cref="InAllocator"/>,
    /// and the load of it, right after the store of that word, waited on the store (the low 12 address
    /// bits match: "4K aliasing"). That 64-byte pair cost 15.3 ns from C against 13.1 ns for its neighbours.
    /// </summary>
    internal static int StrideBytes(int capacity) => (Magazine.HeaderBytes + capacity * sizeof(nint) + 127) & ~127;

    /// <summary>The magazine of <paramref name="kind"/>. Owner, or a claimer holding <see cref="Busy"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Magazine* MagazineAt(MagazineSet* set, int kind)
    {
        Debug.Assert((uint)kind < (uint)set->KindCount, "kind in range");
        return (Magazine*)((byte*)set + HeaderBytes + (nint)kind * set->MagazineStrideBytes);
    }

    /// <summary>
    /// The owner enters the allocator. At the outermost entry: publishes <see cref="InAllocator"/>,
    /// reads <see cref="Pending"/> once and records the decision; nested entries return the recorded
    /// decision without reading <see cref="Pending"/>. Pair with <see cref="Exit"/> in a finally (or use
    /// <see cref="EnterScope"/>).
    /// </summary>
    /// <returns>True when this call must bypass the magazines (work is pending or in progress on them).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Enter(MagazineSet* set)
    {
        int depth = set->InAllocator;
        if (depth != 0)
        {
            // Nested (an object refill calling the page layer): one level deeper, still inside; keep
            // the outer decision; never re-read Pending, never wait.
            set->InAllocator = depth + 1;
            return set->Bypass != 0;
        }

        return EnterOutermost(set);
    }

    /// <summary>
    /// The outermost entry: store <see cref="InAllocator"/> = 1, then load <see cref="Pending"/> once.
    /// Kept as its own method so a test can disassemble exactly it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool EnterOutermost(MagazineSet* set)
    {
        // Release store (program order): the requester's membarrier orders this store before our load
        // of Pending below; without membarrier, the full fence that follows does.
        Volatile.Write(ref set->InAllocator, 1);
        if (MustFence(set))
        {
            // Full fence: the InAllocator store is globally visible before the Pending load executes
            // (only where no process-wide barrier can interrupt us; folded away elsewhere).
            Interlocked.MemoryBarrier();
        }

        // Acquire: a claimer's magazine writes (published by its atomic release of Busy) are visible
        // before we use the magazines on the fast path.
        int bypass = (Volatile.Read(ref set->Pending) & (WorkMask | Busy)) != 0 ? 1 : 0;
        set->Bypass = bypass;
        return bypass != 0;
    }

    /// <summary>
    /// The owner leaves the allocator. At the outermost exit: clears <see cref="InAllocator"/>, then
    /// does any pending work itself (claim, work, release). Nested exits only unwind the depth.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Exit(MagazineSet* set)
    {
        int depth = set->InAllocator - 1;
        Debug.Assert(depth >= 0, "Exit pairs with Enter");
        if (depth != 0)
        {
            set->InAllocator = depth; // Still inside: the requester sees non-zero either way.
            return;
        }

        ExitOutermost(set);
    }

    /// <summary>The outermost exit: store <see cref="InAllocator"/> = 0, then read <see cref="Pending"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitOutermost(MagazineSet* set)
    {
        // Release: this call's magazine writes are visible before a requester can see us outside and
        // claim them. No fence after it: if our Pending load passes this store, a waiting requester
        // repeats barrier + read, sees us outside and claims the work itself.
        Volatile.Write(ref set->InAllocator, 0);
        // Acquire: pairs with the requester's atomic OR of its work bit.
        if ((Volatile.Read(ref set->Pending) & WorkMask) != 0)
        {
            DeferredWork.RunPendingAsOwner(set);
        }
    }

    /// <summary>
    /// The object fast paths' entry. They run only as the outermost call (from the public API, never
    /// from inside the allocator), so they keep no depth and no recorded decision: store
    /// <see cref="InAllocator"/> = 1, then read <see cref="Pending"/> once, as <see cref="EnterOutermost"/>.
    /// Pair with <see cref="ExitUnnested"/> on every path.
    /// </summary>
    /// <returns>True when the magazines may be used (no work bits, no claim in progress).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool EnterUnnested(MagazineSet* set)
    {
        Volatile.Write(ref set->InAllocator, 1); // Release store, in program order before the loads that follow.
        if (MustFence(set))
            Interlocked.MemoryBarrier(); // Full fence: the store above is visible before the loads below (no membarrier here).
        // Acquire: a claimer's magazine writes (released by its atomic completion) are visible before we
        // use the magazines. Only the low half matters: work bits and Busy (the high half counts claims).
        return (int)Volatile.Read(ref set->Pending) == 0;
    }

    /// <summary>
    /// Whether the owner fences on entry. Under the JIT the static is a constant at tier 1 and the test
    /// folds away; ahead-of-time compiled (the C library) the static would cost a class-constructor check
    /// on every call, so the set's own copy is read instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MustFence(MagazineSet* set) =>
        RuntimeFeature.IsDynamicCodeCompiled ? MembarrierSupport.OwnerNeedsFence : set->OwnerNeedsFence != 0;

    /// <summary>
    /// The object fast paths' exit: store <see cref="InAllocator"/> = 0, then run any work that arrived
    /// meanwhile. It ends the fast path and passes the path's <paramref name="result"/> through the rare
    /// call to the work, so the result lives in no callee-saved register across it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T ExitUnnested<T>(MagazineSet* set, T result)
        where T : unmanaged
    {
        Volatile.Write(ref set->InAllocator, 0); // Release: our magazine writes are visible before a requester can see us outside.
        if (((int)Volatile.Read(ref set->Pending) & (int)WorkMask) != 0) // Acquire: pairs with a requester's OR.
            return DeferredWork.RunPendingAsOwner(set, result);
        return result;
    }

    /// <summary>Enters (see <see cref="Enter"/>) and returns a scope whose Dispose exits, also on exceptions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static MagazineScope EnterScope(MagazineSet* set) => new(set, Enter(set));

    /// <summary>Pops the hottest item of <paramref name="kind"/>'s magazine. Owner only, inside, not bypassing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryPop(MagazineSet* set, int kind, out nint item)
    {
        Magazine* magazine = MagazineAt(set, kind);
        int count = magazine->Count;
        if (count == 0)
        {
            item = 0;
            return false;
        }

        count--;
        item = Magazine.Items(magazine)[count];
        magazine->Count = count;
        return true;
    }

    /// <summary>Pushes onto <paramref name="kind"/>'s magazine. Owner only, inside, not bypassing.</summary>
    /// <returns>False when the magazine is full.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryPush(MagazineSet* set, int kind, nint item)
    {
        Magazine* magazine = MagazineAt(set, kind);
        int count = magazine->Count;
        if (count == magazine->Capacity)
        {
            return false;
        }

        Magazine.Items(magazine)[count] = item;
        magazine->Count = count + 1;
        return true;
    }

    /// <summary>Items in <paramref name="kind"/>'s magazine (owner, claimer, or a quiesced test).</summary>
    internal static int CountOf(MagazineSet* set, int kind) => MagazineAt(set, kind)->Count;
}

/// <summary>One kind's magazine: a count and a capacity, then room for <see cref="MagazineSet.Capacity"/> items.</summary>
[StructLayout(LayoutKind.Explicit, Size = HeaderBytes)]
internal unsafe struct Magazine
{
    /// <summary>Bytes before the first item.</summary>
    internal const int HeaderBytes = 8;

    /// <summary>Items held; index Count-1 is the hottest.</summary>
    [FieldOffset(0)] internal int Count;

    /// <summary>Items this magazine holds at most (kinds may differ: an object cache bounds big classes tighter). Set at creation.</summary>
    [FieldOffset(4)] internal int Capacity;

    /// <summary>The items.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static nint* Items(Magazine* magazine) => (nint*)((byte*)magazine + HeaderBytes);
}

/// <summary>
/// An entry into the allocator on a <see cref="MagazineSet"/>; <see cref="Dispose"/> exits, so
/// <c>using var scope = MagazineSet.EnterScope(set);</c> clears <c>InAllocator</c> on every path.
/// </summary>
internal unsafe ref struct MagazineScope
{
    private MagazineSet* _set;

    internal MagazineScope(MagazineSet* set, bool bypass)
    {
        _set = set;
        Bypass = bypass;
    }

    /// <summary>The set entered.</summary>
    public readonly MagazineSet* Set => _set;

    /// <summary>True when this call must leave the magazines alone (decided at the outermost entry).</summary>
    public bool Bypass { get; }

    /// <summary>Exits once; further calls do nothing.</summary>
    public void Dispose()
    {
        MagazineSet* set = _set;
        _set = null;
        if (set != null)
        {
            MagazineSet.Exit(set);
        }
    }
}
