/*
 * magazine.pml -- deferred work on per-thread magazines (DESIGN.md, "Caches:
 * per-thread magazines, per-CPU caches, deferred work").
 *
 * Planned C# names used as step names below:
 *   Numalloc.Caches.MagazineSet   InAllocator, Pending, BUSY
 *   MagazineSet.Enter / Exit      outermost entry / exit of the owner
 *   DeferredWork.Request          atomic OR of a work bit, process-wide barrier, read InAllocator
 *   DeferredWork.TryClaim         one CAS: set BUSY, take every work bit present
 *   MagazineRegistry.Reap         the exited-thread reaper (under the registry lock)
 *
 * Threads:
 *   Owner0  owns set S0. Up to two outermost calls, each a fast-path call (with a
 *           nested frame) or a slow-path call that, from its outermost frame,
 *           requests a drain of S1 and services its own S0 while it waits;
 *           then goes idle forever or exits its thread.
 *   Owner1  owns set S1. One outermost call: fast path, or slow path requesting
 *           a drain of S0 (so Owner0 and Owner1 can drain each other); then idle
 *           forever or exits.
 *   Req     a plain requester (the hotplug thread) asking for a drain of S0.
 *   Reaper  MagazineRegistry.Reap of sets whose thread exited.
 *   Flusher drains the owners' store buffers nondeterministically.
 * So S0 has two requesters (Owner1 with bit 0, Req with bit 1), S1 has one
 * (Owner0, bit 0).
 *
 * Memory model: each owner has a one-entry store buffer for its InAllocator
 * store. Its later load of Pending reads memory, so it may pass the buffered
 * store (x86-TSO store->load reordering; the .NET model allows the same). A
 * new store first retires the old one (stores retire in order). Locked/
 * interlocked operations of a thread drain its own buffer. The requester's
 * Interlocked.MemoryBarrierProcessWide() drains every thread's buffer.
 *
 * Build switches (mutants, each must be rejected):
 *   MUTANT_NO_BARRIER   Request reads InAllocator without the process-wide barrier
 *   MUTANT_NO_BUSY      TryClaim takes the bits without setting BUSY
 *   MUTANT_TWO_STEP     TryClaim tests the bits, then clears them in a second step
 *   MUTANT_NESTED_WAIT  a nested frame re-reads Pending and waits for BUSY to clear
 *   MUTANT_CLAIM_ANY    a requester claims whatever bits are present even after its
 *                       own bit was taken by someone else (DESIGN.md as written)
 */

#define NS    2
#define NONE  255
#define WORK  3          /* work bits 0 and 1 */
#define BUSY  4

byte Pending[NS];
bool InAlloc[NS];        /* InAllocator as seen in memory */
bool sbv[NS];            /* store buffer of owner s holds an InAllocator store */
bool sbval[NS];          /* ... and its value */
bool alive[NS];          /* Thread.IsAlive of the owner */
bool linked[NS];         /* set still in the registry */
byte reg;                /* registry lock: 0 free, else holder _pid+1 */

/* ghost */
byte done[4];            /* executions of the work of request (s, k): index s*2+k */
bool req[4];             /* request (s, k) issued (its bit was set) */
bool comp[4];            /* request (s, k) completed (its work ran) */
byte working[NS];        /* claimers currently working on set s */
bool fast[NS];           /* owner of s is on its fast path (may touch its magazines) */

inline flush(s) {
    if
    :: sbv[s] -> InAlloc[s] = sbval[s]; sbv[s] = 0
    :: else -> skip
    fi
}

/* an owner's plain store InAllocator = v: goes to its store buffer */
inline store_inalloc(s, v) {
    atomic { flush(s); sbval[s] = v; sbv[s] = 1 }
}

/* Interlocked.MemoryBarrierProcessWide(): drains every thread's store buffer */
inline barrier() {
    atomic { flush(0); flush(1) }
}

inline lockreg()   { atomic { reg == 0 -> reg = _pid + 1 } }
inline unlockreg() { assert(reg == _pid + 1); reg = 0 }

/* a fast-path access of the owner to its own magazines */
inline TouchMag(s) {
    assert(working[s] == 0)
}

/* a nested allocator frame of the thread owning set `own` */
inline Nested(own) {
#ifdef MUTANT_NESTED_WAIT
    if
    :: own != NONE -> (Pending[own] & BUSY) == 0     /* re-reads Pending, waits for BUSY */
    :: else -> skip
    fi
#else
    skip                                             /* never re-reads Pending, never waits */
#endif
}

/* DeferredWork.TryClaim(s): me = the caller's own set (its interlocked op drains
   its store buffer) or NONE. need = the bits that must still be present for the
   claim to go ahead: a requester passes its own bit (see README, "Where the
   model changed the design"), the owner and the reaper pass WORK.
   got = the work bits taken (all that are present), 0 if none. */
inline TryClaim(s, got, me, need) {
#ifdef MUTANT_TWO_STEP
    got = Pending[s];                                /* test ... */
    if
    :: (got & BUSY) == 0 && (got & need) != 0 ->
        atomic {                                     /* ... then clear, separately */
            if :: me != NONE -> flush(me) :: else -> skip fi;
            got = got & WORK;
            Pending[s] = (Pending[s] & ~got) | BUSY;
            working[s]++;
            assert(!fast[s])
        }
    :: else -> got = 0
    fi
#else
    atomic {
        if :: me != NONE -> flush(me) :: else -> skip fi;
        if
        :: (Pending[s] & BUSY) == 0 && (Pending[s] & need) != 0 ->
            got = Pending[s] & WORK;
#ifdef MUTANT_NO_BUSY
            Pending[s] = Pending[s] & ~got;          /* request cleared before the work is done */
#else
            Pending[s] = (Pending[s] & ~got) | BUSY;
#endif
            working[s]++;
            assert(!fast[s])
        :: else -> got = 0
        fi
    }
#endif
}

/* the drain itself, for every bit taken; `own` = the worker's own set, whose
   nested frame the flush to the per-CPU caches / zones runs in */
inline DoWork(s, got, own) {
    atomic {
        assert(!fast[s]);
        if :: got & 1 -> done[s*2]++;   assert(done[s*2] == 1);   comp[s*2] = 1   :: else -> skip fi;
        if :: got & 2 -> done[s*2+1]++; assert(done[s*2+1] == 1); comp[s*2+1] = 1 :: else -> skip fi
    };
    Nested(own)
}

/* clear only BUSY */
inline Release(s) {
    atomic {
#ifndef MUTANT_NO_BUSY
        Pending[s] = Pending[s] & ~BUSY;
#endif
        working[s]--
    }
}

/* the owner of `own`, at its outermost frame, services its own Pending */
inline ServiceOwn(own, got) {
    TryClaim(own, got, own, WORK);
    if
    :: got != 0 -> DoWork(own, got, own); Release(own)
    :: else -> skip
    fi
}

/* DeferredWork.Request(s, k) by a thread whose own set is `own` (NONE for a
   plain requester), waiting until the work of its request has run. */
inline Request(s, k, own, got) {
    lockreg();
    if
    :: !linked[s] -> unlockreg()                     /* set already reaped: nothing to drain */
    :: else ->
        atomic {                                     /* atomic OR of the work bit */
            if :: own != NONE -> flush(own) :: else -> skip fi;
            Pending[s] = Pending[s] | (1 << k);
            req[s*2+k] = 1
        };
        unlockreg();
        do
        :: comp[s*2+k] -> break                      /* completion signalled */
        :: else ->
            if
            :: own != NONE -> ServiceOwn(own, got)   /* outermost frame: service own Pending */
            :: else -> skip
            fi;
            /* the poll reads the set inside an epoch (sets are never freed under
               it); claiming and working take the registry lock */
#ifndef MUTANT_NO_BARRIER
            barrier();                               /* MemoryBarrierProcessWide */
#endif
            if
            :: InAlloc[s] -> skip                    /* owner inside: wait, repeat */
            :: else ->
                lockreg();
                if
                :: linked[s] ->
#ifdef MUTANT_CLAIM_ANY
                    TryClaim(s, got, own, WORK);     /* the design as first written */
#else
                    TryClaim(s, got, own, 1 << k);   /* only while its own bit is still set */
#endif
                    if
                    :: got != 0 -> DoWork(s, got, own); Release(s)
                    :: else -> skip                  /* BUSY or bits taken: wait for completion */
                    fi
                :: else -> assert(comp[s*2+k])       /* reaped: the reaper did the work */
                fi;
                unlockreg()
            fi
        od
    fi
}

/* MagazineSet.Enter (outermost): InAllocator = 1, then read Pending once */
inline Enter(s, isfast) {
    store_inalloc(s, 1);
    atomic {
        isfast = (Pending[s] == 0);                  /* load may pass the buffered store */
        fast[s] = isfast
    }
}

/* MagazineSet.Exit (outermost): InAllocator = 0, then claim pending work */
inline Exit(s, got) {
    fast[s] = 0;
    store_inalloc(s, 0);
    if
    :: (Pending[s] & WORK) != 0 && (Pending[s] & BUSY) == 0 ->
        TryClaim(s, got, s, WORK);
        if
        :: got != 0 -> DoWork(s, got, s); Release(s)
        :: else -> skip
        fi
    :: else -> skip                                  /* nothing, or a requester works on it */
    fi
}

/* one outermost fast-path call with a nested frame (object refill -> page layer) */
inline FastCall(s, isfast, got) {
    Enter(s, isfast);
    if :: isfast -> TouchMag(s) :: else -> skip fi;  /* else bypass the magazines */
    Nested(s);
    if :: isfast -> TouchMag(s) :: else -> skip fi;
    Exit(s, got)
}

proctype Owner0() {
    byte n, got; bool isfast, slowdone;
    do
    :: n < 2 -> n++; FastCall(0, isfast, got)
    :: n < 2 && !slowdone ->
        n++; slowdone = 1;
        Enter(0, isfast);
        if :: isfast -> TouchMag(0) :: else -> skip fi;
        fast[0] = 0;                                 /* magazines empty: slow path */
        Request(1, 0, 0, got);                       /* drain S1, from the outermost frame */
        Exit(0, got)
    :: true -> goto idle                             /* idle forever */
    :: true -> alive[0] = 0; goto gone               /* thread exits */
    od;
idle:
gone:
    skip
}

proctype Owner1() {
    byte got; bool isfast;
    if
    :: true -> FastCall(1, isfast, got)
    :: true ->
       Enter(1, isfast);
       fast[1] = 0;
       Request(0, 0, 1, got);                        /* drain S0, from the outermost frame */
       Exit(1, got)
    fi;
    if
    :: true -> skip                                  /* idle forever */
    :: true -> alive[1] = 0                          /* thread exits */
    fi
}

proctype Req() {
    byte got;
    Request(0, 1, NONE, got)
}

/* MagazineRegistry.Reap: claims BUSY on a dead thread's set, flushes it, unlinks */
proctype Reaper() {
    byte s, got;
end:
    do
    :: atomic { !alive[0] && linked[0] -> s = 0 }; goto reap
    :: atomic { !alive[1] && linked[1] -> s = 1 }; goto reap
    od;
reap:
    lockreg();
    atomic {
        assert((Pending[s] & BUSY) == 0);            /* no one works on it: owner dead, requesters need the lock */
        got = Pending[s] & WORK;
        Pending[s] = BUSY;                           /* claimed for good */
        working[s]++
    };
    DoWork(s, got, NONE);
    atomic { linked[s] = 0; working[s]-- };
    unlockreg();
    goto end
}

proctype Flusher() {
end:
    do
    :: atomic { sbv[0] -> flush(0) }
    :: atomic { sbv[1] -> flush(1) }
    od
}

init {
    atomic {
        alive[0] = 1; alive[1] = 1;
        linked[0] = 1; linked[1] = 1;
        run Flusher();
        run Reaper();
        run Owner0();
        run Owner1();
        run Req()
    }
}

/* every issued request is eventually completed (none lost, an idle or exited
   owner included, no two threads draining each other stuck); checked with -a -f */
ltl no_lost_request {
    [] ((req[0] -> <> comp[0]) && (req[1] -> <> comp[1]) && (req[2] -> <> comp[2]))
}
