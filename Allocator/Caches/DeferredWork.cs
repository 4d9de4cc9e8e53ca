using System.Diagnostics;
using System.Numerics;

namespace Numalloc.Caches;

/// <summary>
/// The requester's side of the magazine protocol (the owner's side is <see cref="MagazineSet.Enter"/>
/// and <see cref="MagazineSet.Exit"/>): ask for work on another thread's magazines, do it yourself when
/// the owner is outside the allocator, else let the owner do it at its outermost exit.
/// </summary>
/// <remarks>
/// <para><b>The race.</b> The requester and the owner (and other requesters, and the reaper) may all
/// want to do the same pending work; the owner may be inside the allocator using the magazines, and
/// may never come back (an idle or exited thread).</para>
/// <para><b>The rules.</b></para>
/// <list type="number">
/// <item>Request = atomic OR of the work bit into <c>Pending</c> (a bit already set means a request
/// nobody has claimed yet: ours is coalesced into it, safely, because that claim has not chosen its
/// items), then <see cref="Interlocked.MemoryBarrierProcessWide"/>, then read <c>InAllocator</c>.</item>
/// <item>Claim = one CAS that sets <c>Busy</c> and takes every work bit present; nobody claims while
/// <c>Busy</c> is set, so claims are serialized and each work bit set is taken by exactly one claim.
/// A requester claims only after seeing <c>InAllocator</c> = 0 after its barrier (the owner is then
/// outside, and will bypass its magazines at any later entry because it will see the bit or
/// <c>Busy</c>); the owner claims at its outermost exit.</item>
/// <item>Complete = one atomic add that clears only <c>Busy</c> and advances the completion count in
/// bits 32..63 of <c>Pending</c>. A requester's request is done when the count has advanced past the
/// claim that took its bit: the next claim after its OR, or the one after that if a claim was already
/// in progress at its OR. So "done" means its bit is no longer set and no claim holding it runs.</item>
/// <item>While the owner is inside, the requester waits on a completion with a short timeout, then
/// repeats barrier + read: the owner's exit check alone is not enough (its <c>InAllocator = 0</c>
/// store may pass its <c>Pending</c> load), and an idle owner never re-enters.</item>
/// <item>A requester that is itself inside the allocator waits only from its outermost frame (its own
/// magazines are consistent there) and services its own <c>Pending</c> while it waits, so two threads
/// draining each other cannot deadlock. Nested frames request and claim but never wait.</item>
/// </list>
/// <para>Counters: every request is either coalesced or sets its bit, and every bit set is taken by
/// exactly one claim, counted as done by the owner or done remotely; so at quiescence
/// <c>requests == doneRemotely + doneByOwner + coalesced</c>.</para>
/// </remarks>
internal static unsafe class DeferredWork
{
    // How long one wait for a completion lasts before the requester repeats barrier + read.
    private const int WaitSliceMs = 1;

    /// <summary>A target of a request: a set pinned in its registry, and its owner when known.</summary>
    internal struct Ticket
    {
        /// <summary>The set.</summary>
        internal MagazineSet* Target;

        /// <summary>The owning thread (a dead owner is outside for good), or null when unknown.</summary>
        internal Thread? Owner;

        /// <summary>The completion count (Pending bits 32..63) seen by our OR.</summary>
        internal uint StartCompletions;

        /// <summary>Completions past <see cref="StartCompletions"/> after which our request has run (1 or 2).</summary>
        internal uint NeededCompletions;

        /// <summary>Our request has run.</summary>
        internal bool Done;
    }

    /// <summary>
    /// Requests <paramref name="workBits"/> on one set and returns when the work has run (by anyone)
    /// or the timeout expired. The caller guarantees that <paramref name="target"/> stays allocated
    /// (the set is its own, or is pinned in its registry, as <see cref="MagazineRegistry.DrainAll"/> does).
    /// </summary>
    /// <returns>True when the work ran; false on timeout, or when called from a nested frame and the
    /// owner was inside (the work then still runs, at the owner's exit).</returns>
    internal static bool Request(MagazineSet* target, uint workBits, int timeoutMs)
    {
        var tickets = new Ticket[1];
        tickets[0].Target = target;
        return RequestAll(MagazineRegistry.Of(target), tickets, workBits, timeoutMs);
    }

    /// <summary>The protocol over many targets: all ORs, one barrier, then claim or wait for each.</summary>
    internal static bool RequestAll(MagazineRegistry registry, Ticket[] tickets, uint workBits, int timeoutMs)
    {
        Debug.Assert(workBits != 0 && (workBits & ~(uint)MagazineSet.WorkMask) == 0, "work bits only");
        int bitCount = BitOperations.PopCount(workBits);
        long coalesced = 0;
        for (int i = 0; i < tickets.Length; i++)
        {
            ref Ticket ticket = ref tickets[i];
            // Full fence (atomic OR): our bit is in Pending before the barrier below, hence before any
            // later Pending load by the owner, and before any claim's CAS that could take it.
            long old = Interlocked.Or(ref ticket.Target->Pending, workBits);
            coalesced += BitOperations.PopCount((uint)(old & workBits));
            ticket.StartCompletions = (uint)((ulong)old >> 32);
            ticket.NeededCompletions = (old & MagazineSet.Busy) != 0 ? 2u : 1u;
            ticket.Done = false;
        }

        registry.CountRequests((long)bitCount * tickets.Length, coalesced);

        MagazineSet* self = registry.CurrentIfAttached();
        int selfDepth = self != null ? self->InAllocator : 0;
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;

        // Process-wide barrier: every owner's InAllocator store that precedes its Pending load in
        // program order is visible to our reads below, or that load sees our bit (the asymmetric Dekker
        // pair; the owner side is MagazineSet.EnterOutermost).
        Interlocked.MemoryBarrierProcessWide();
        while (true)
        {
            int epoch = registry.CompletionEpoch;
            bool allDone = true;
            for (int i = 0; i < tickets.Length; i++)
            {
                ref Ticket ticket = ref tickets[i];
                if (ticket.Done || (ticket.Done = IsDone(ref ticket)))
                {
                    continue;
                }

                MagazineSet* target = ticket.Target;
                bool mayClaim = target == self
                    ? selfDepth <= 1 // our own magazines are consistent outside and at the outermost frame
                    : Volatile.Read(ref target->InAllocator) == 0 || ticket.Owner is { IsAlive: false };
                // A requester claims only while its own bits are still set: they have been set since before
                // its first barrier, so every owner entry since then bypasses (see TryClaim).
                if (mayClaim && TryClaim(target, target == self ? 0 : workBits, out uint taken))
                {
                    registry.RunWork(target, taken);
                    Complete(target, taken, byOwner: target == self);
                    if (ticket.Done = IsDone(ref ticket))
                    {
                        continue;
                    }
                }

                allDone = false;
            }

            if (allDone)
            {
                return true;
            }

            if (selfDepth > 1 || Environment.TickCount64 >= deadline)
            {
                // Nested frames never wait on another thread; the work still runs at the owner's exit.
                return false;
            }

            if (self != null && selfDepth == 1)
            {
                // Whoever waits for us may be waiting right now: do our own pending work first.
                RunPendingAsOwner(self);
            }

            registry.WaitForCompletion(epoch, WaitSliceMs);
            // Process-wide barrier again: an owner whose exit check missed our bit has its
            // InAllocator = 0 store made visible to the re-read above.
            Interlocked.MemoryBarrierProcessWide();
        }
    }

    /// <summary>
    /// Claims the work pending on <paramref name="set"/>: one CAS (retried only when a new bit arrives)
    /// that sets <see cref="MagazineSet.Busy"/> and takes every work bit present.
    /// </summary>
    /// <remarks>
    /// Why a requester passes its own bits as <paramref name="mustHold"/>: its licence to touch the
    /// magazines is "I saw InAllocator = 0 after my barrier, and my bit has been set ever since my OR
    /// before that barrier", because an owner entry whose Pending load follows the barrier then sees
    /// the bit (or Busy, once claimed) and bypasses. If a third party already claimed and completed its
    /// bit, the owner may since have entered on the fast path, and a bit that arrived later (another
    /// requester's, whose barrier found the owner inside) gives no licence at all.
    /// </remarks>
    /// <param name="set">The set.</param>
    /// <param name="mustHold">Claim only while one of these bits is set; 0 for the owner (and the
    /// reaper), who may always claim.</param>
    /// <param name="taken">The work bits taken; the claimer must run them, then <see cref="Complete"/>.</param>
    /// <returns>False when there is no work, a claim is already in progress, or <paramref name="mustHold"/> is gone.</returns>
    internal static bool TryClaim(MagazineSet* set, uint mustHold, out uint taken)
    {
        long required = mustHold != 0 ? mustHold : MagazineSet.WorkMask;
        // Acquire: a pre-check; the CAS below is what decides.
        long observed = Volatile.Read(ref set->Pending);
        while ((observed & MagazineSet.Busy) == 0 && (observed & required) != 0)
        {
            long claimed = (observed & ~MagazineSet.WorkMask) | MagazineSet.Busy;
            // Full fence (CAS): the previous claimer's magazine writes (released by its atomic add) and
            // the owner's (released by its InAllocator = 0 store, which we read before) are visible
            // before we touch the magazines.
            long seen = Interlocked.CompareExchange(ref set->Pending, claimed, observed);
            if (seen == observed)
            {
                taken = (uint)(observed & MagazineSet.WorkMask);
                return true;
            }

            observed = seen;
        }

        taken = 0;
        return false;
    }

    /// <summary>
    /// Claims <paramref name="set"/> even with no work pending, waiting for a claim in progress to
    /// complete: for the reaper, a thread's own flush and disposal, which must own the magazines.
    /// </summary>
    /// <returns>The work bits taken (the claimer runs them).</returns>
    internal static uint ClaimAll(MagazineSet* set)
    {
        var spinner = new SpinWait();
        long observed = Volatile.Read(ref set->Pending); // Acquire: pre-check only; the CAS decides.
        while (true)
        {
            if ((observed & MagazineSet.Busy) == 0)
            {
                long claimed = (observed & ~MagazineSet.WorkMask) | MagazineSet.Busy;
                // Full fence (CAS): as in TryClaim, the last writer's magazine writes are visible to us.
                long seen = Interlocked.CompareExchange(ref set->Pending, claimed, observed);
                if (seen == observed)
                {
                    return (uint)(observed & MagazineSet.WorkMask);
                }

                observed = seen;
                continue;
            }

            spinner.SpinOnce();
            observed = Volatile.Read(ref set->Pending); // Acquire: re-check after the holder's release.
        }
    }

    /// <summary>
    /// Ends a claim: counts the bits done, then one atomic add clears only <see cref="MagazineSet.Busy"/>
    /// and advances the completion count; bits that arrived during the claim stay set.
    /// </summary>
    internal static void Complete(MagazineSet* set, uint taken, bool byOwner)
    {
        MagazineRegistry registry = MagazineRegistry.Of(set);
        registry.CountDone(BitOperations.PopCount(taken), byOwner);
        // Full fence (atomic add): our magazine writes and the counters above are visible before Busy
        // reads clear and the completion count advances (what a requester's IsDone and the owner's next
        // Pending load observe).
        Interlocked.Add(ref set->Pending, MagazineSet.CompletionUnit - MagazineSet.Busy);
        registry.NotifyCompletion();
    }

    /// <summary><see cref="RunPendingAsOwner(MagazineSet*)"/>, then returns <paramref name="result"/> (a fast path's, passed through: see <see cref="MagazineSet.ExitUnnested"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static T RunPendingAsOwner<T>(MagazineSet* set, T result)
        where T : unmanaged
    {
        RunPendingAsOwner(set);
        return result;
    }

    /// <summary>The owner's slow path at its outermost exit (and while it waits as a requester): claim, run, complete.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void RunPendingAsOwner(MagazineSet* set)
    {
        if (TryClaim(set, 0, out uint taken))
        {
            MagazineRegistry.Of(set).RunWork(set, taken);
            Complete(set, taken, byOwner: true);
        }
    }

    private static bool IsDone(ref Ticket ticket)
    {
        // Acquire: when done, the claimer's work (and counters) are visible to us.
        long pending = Volatile.Read(ref ticket.Target->Pending);
        return unchecked((uint)((ulong)pending >> 32) - ticket.StartCompletions) >= ticket.NeededCompletions;
    }
}
