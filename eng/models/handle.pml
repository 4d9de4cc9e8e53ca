/*
 * handle.pml -- movable buffers: pinning, migration, free, slot reuse
 * (DESIGN.md, "Movable memory and migration").
 *
 * Planned C# names used as step names below:
 *   Numalloc.Movable.HandleTable      slots: one state word + the published pointer
 *   MovableBuffer.Pin / Unpin / Free
 *   Migrator.MigrateOne               MigratePending (bounded window) -> Migrating -> republish
 *
 * One state word per slot: generation, pin count, state, FreeRequested; every
 * transition is a CAS on the whole word (modelled as an atomic compare-and-set).
 *
 * Threads:
 *   User0     Pin(h0), Pin(h1), Pin(h0) again (nested), use, unpin all three
 *   User1     Pin(h1), Pin(h0) (crossed with User0), use, unpin both
 *   Mig(h0), Mig(h1)   Migrator.MigrateOne on each buffer, retried until done
 *   Freer     Free(h0) (racing the migration and the pins), then, once the slot
 *             is free, a new buffer reuses slot 0 with the next generation, then
 *             a stale Pin(h0) and a stale Free(h0) (a double free through an old
 *             handle) must both be refused.
 *
 * Build switches (mutants, each must be rejected):
 *   MUTANT_FREE_NO_GEN   Free does not check the generation of the handle
 *   MUTANT_NO_WINDOW     MigratePending has no bounded window (waits for pins forever)
 *   MUTANT_RETRY_NOW     after its window expired, MigrateOne retries the same buffer
 *                        back to back (livelock: the pin holders never get a turn)
 * Configuration:
 *   NO_FREE              leave out the Freer (the liveness run: pins and migrations)
 */

#define NSLOT  2
#define NLOC   6          /* buffer memory locations */
#define NONE   255
#ifndef WIN
#define WIN    1          /* the bounded MigratePending window, in migrator steps */
#endif

#define NORMAL    0
#define MIGPEND   1
#define MIGRATING 2
#define FREED     3

/* word: bits 0-1 state, bit 2 FreeRequested, bits 3-4 pins, bits 5-6 generation */
#define ST(w)    ((w) & 3)
#define FR(w)    (((w) >> 2) & 1)
#define PINS(w)  (((w) >> 3) & 3)
#define GEN(w)   (((w) >> 5) & 3)
#define FRBIT    4
#define PIN1     8
#define MK(g, p, f, s)  (((g) << 5) | ((p) << 3) | ((f) << 2) | (s))
#define WITHST(w, s)    (((w) & ~3) | (s))

#define HID(s, g)  ((s) * 4 + (g))      /* a handle: slot + generation */
#define HSLOT(h)   ((h) / 4)
#define HGEN(h)    ((h) % 4)

byte word[NSLOT];
byte ptr[NSLOT];          /* the published pointer of each slot */

/* ghost */
byte loc_owner[NLOC];     /* handle owning each location, NONE if free */
byte pinned_on[NLOC];     /* users currently holding a pointer to each location */
byte frreq[NSLOT];        /* handle whose Free set FreeRequested on the slot */
bool mdone[NSLOT];        /* MigrateOne of the original buffer in the slot finished */

inline CAS(s, old, new, ok) {
    atomic {
        if
        :: word[s] == old -> word[s] = new; ok = 1
        :: else -> ok = 0
        fi
    }
}

/* take a free location (d_step: an allocation of the copy target / new buffer) */
inline alloc_loc(l, h) {
    d_step {
        l = 0;
        do
        :: l < NLOC && loc_owner[l] != NONE -> l++
        :: else -> break
        od;
        assert(l < NLOC);
        loc_owner[l] = h
    }
}

/* give a location back: nobody may hold a pointer into it, and it must belong
   to the buffer being freed */
inline free_loc(l, h) {
    assert(pinned_on[l] == 0);
    assert(loc_owner[l] == h);
    loc_owner[l] = NONE
}

/* final free of slot s whose word is w (CAS already done): gen kept, slot free */
inline complete_free(s, w) {
    assert(frreq[s] == NONE || frreq[s] == HID(s, GEN(w)));
    free_loc(ptr[s], HID(s, GEN(w)));
    frreq[s] = NONE
}

/* MovableBuffer.Pin: returns the pointer in p, NONE if the handle is stale or
   the buffer is being freed. New pins wait while MigratePending / Migrating. */
inline Pin(h, p, w, ok) {
    do
    :: w = word[HSLOT(h)];
        if
        :: GEN(w) != HGEN(h) || ST(w) == FREED || FR(w) -> p = NONE; break
        :: else ->
            if
            :: ST(w) == NORMAL ->
                assert(PINS(w) < 3);
                atomic {
                    CAS(HSLOT(h), w, w + PIN1, ok);
                    if
                    :: ok ->                    /* then read the pointer: stable while pinned */
                        p = ptr[HSLOT(h)];
                        assert(loc_owner[p] == h);
                        pinned_on[p]++
                    :: else -> skip
                    fi
                };
                if :: ok -> break :: else -> skip fi
            :: else -> (word[HSLOT(h)] != w)    /* MigratePending / Migrating: wait */
            fi
        fi
    od;
    w = 0; ok = 0                               /* dead locals: keep the state small */
}

/* a use of a pinned pointer: not moved, not freed, not reused */
inline Use(h, p) {
    if
    :: p != NONE -> assert(ptr[HSLOT(h)] == p && loc_owner[p] == h)
    :: else -> skip
    fi
}

/* MovableBuffer.Unpin; the last unpin of a buffer with FreeRequested frees it */
inline Unpin(h, p, w, ok) {
    if
    :: p != NONE ->
        do
        :: w = word[HSLOT(h)];
            assert(GEN(w) == HGEN(h) && PINS(w) > 0 && ST(w) != MIGRATING && ST(w) != FREED);
            if
            :: PINS(w) == 1 && FR(w) && ST(w) == NORMAL ->
                atomic {
                    CAS(HSLOT(h), w, MK(GEN(w), 0, 0, FREED), ok);
                    if :: ok -> pinned_on[p]--; complete_free(HSLOT(h), w) :: else -> skip fi
                }
            :: else ->
                atomic {
                    CAS(HSLOT(h), w, w - PIN1, ok);
                    if :: ok -> pinned_on[p]-- :: else -> skip fi
                }
            fi;
            if :: ok -> break :: else -> skip fi
        od;
        w = 0; ok = 0
    :: else -> skip
    fi
}

/* MovableBuffer.Free */
inline Free(h, w, ok) {
    do
    :: w = word[HSLOT(h)];
        if
#ifndef MUTANT_FREE_NO_GEN
        :: GEN(w) != HGEN(h) -> break            /* stale handle: refused */
#else
        :: false -> skip                                    /* mutant: no generation check */
#endif
        :: else ->
            if
            :: ST(w) == FREED || FR(w) -> break  /* double free: refused */
            :: else ->
                if
                :: ST(w) == NORMAL && PINS(w) == 0 ->
                    atomic {
                        CAS(HSLOT(h), w, MK(GEN(w), 0, 0, FREED), ok);
                        if
                        :: ok -> free_loc(ptr[HSLOT(h)], h) /* it must be this handle's buffer */
                        :: else -> skip
                        fi
                    };
                    if :: ok -> break :: else -> skip fi
                :: else ->
                    /* pinned, MigratePending or Migrating: only request the free;
                       the last unpin or the migrator completes it */
                    atomic {
                        CAS(HSLOT(h), w, w | FRBIT, ok);
                        if :: ok -> frreq[HSLOT(h)] = h :: else -> skip fi
                    };
                    if :: ok -> break :: else -> skip fi
                fi
            fi
        fi
    od;
    w = 0; ok = 0
}

/* Migrator.MigrateOne(h): done = 1 when migrated or the buffer went away;
   rb = 1 when the window expired and it rolled back (retry later); neither:
   a CAS raced, retry now */
inline MigrateOne(h, done, rb, w, ok, cnt, nl) {
    done = 0; rb = 0;
    w = word[HSLOT(h)];
    if
    :: GEN(w) != HGEN(h) || ST(w) == FREED || FR(w) -> done = 1   /* gone or going */
    :: else -> if :: ST(w) == NORMAL ->
        CAS(HSLOT(h), w, WITHST(w, MIGPEND), ok);
        if
        :: ok ->
            cnt = 0;
            do
            :: w = word[HSLOT(h)];
                if
                :: FR(w) && PINS(w) == 0 ->                /* freed meanwhile: complete the free */
                    atomic {
                        CAS(HSLOT(h), w, MK(GEN(w), 0, 0, FREED), ok);
                        if :: ok -> complete_free(HSLOT(h), w) :: else -> skip fi
                    };
                    if :: ok -> done = 1; break :: else -> skip fi
                :: !FR(w) && PINS(w) == 0 ->               /* pins drained */
                    CAS(HSLOT(h), w, WITHST(w, MIGRATING), ok);
                    if :: ok -> break :: else -> skip fi
                :: else ->
#ifdef MUTANT_NO_WINDOW
                    (word[HSLOT(h)] != w)                  /* wait for the pins, unbounded */
#else
                    if
                    :: cnt < WIN -> cnt++
                    :: else ->                             /* window over: back to Normal */
                        CAS(HSLOT(h), w, WITHST(w, NORMAL), ok);
                        if :: ok -> w = WITHST(w, NORMAL); rb = 1; break :: else -> skip fi
                    fi
#endif
                fi
            od;
            if
            :: done -> skip
            :: rb -> skip                                  /* rolled back */
            :: else ->
                /* Migrating: no pins, new pins wait. Copy to another location. */
                alloc_loc(nl, h);
                assert(pinned_on[ptr[HSLOT(h)]] == 0);
                /* republish: CAS on (generation, state), pointer with it */
                atomic {
                    if
                    :: word[HSLOT(h)] == MK(HGEN(h), 0, 0, MIGRATING) ->
                        free_loc(ptr[HSLOT(h)], h);
                        ptr[HSLOT(h)] = nl;
                        word[HSLOT(h)] = MK(HGEN(h), 0, 0, NORMAL);
                        ok = 1
                    :: else -> ok = 0
                    fi
                };
                if
                :: !ok ->
                    /* only a Free can have changed the word: complete it */
                    w = word[HSLOT(h)];
                    assert(GEN(w) == HGEN(h) && ST(w) == MIGRATING && FR(w) && PINS(w) == 0);
                    atomic {
                        CAS(HSLOT(h), w, MK(GEN(w), 0, 0, FREED), ok);
                        assert(ok);
                        free_loc(nl, h);
                        complete_free(HSLOT(h), w)
                    }
                :: else -> skip
                fi;
                done = 1
            fi
        :: else -> skip                                    /* raced: retry */
        fi
    :: else -> skip fi                                     /* being migrated by someone else */
    fi;
    ok = 0; cnt = 0; nl = 0
}

proctype User0() {
    byte w, pa, pb, pc; bool ok;
    Pin(HID(0, 0), pa, w, ok);
    Pin(HID(1, 0), pb, w, ok);                             /* crossed with User1 */
    Pin(HID(0, 0), pc, w, ok);                             /* nested */
    atomic { Use(HID(0, 0), pa); Use(HID(1, 0), pb); Use(HID(0, 0), pc) };
    Unpin(HID(0, 0), pc, w, ok);
    Unpin(HID(1, 0), pb, w, ok);
    Unpin(HID(0, 0), pa, w, ok)
}

proctype User1() {
    byte w, pa, pb; bool ok;
    Pin(HID(1, 0), pa, w, ok);
    Pin(HID(0, 0), pb, w, ok);
    atomic { Use(HID(1, 0), pa); Use(HID(0, 0), pb) };
    Unpin(HID(0, 0), pb, w, ok);
    Unpin(HID(1, 0), pa, w, ok)
}

proctype Mig(byte s) {
    byte w, cnt, nl; bool ok, done, rb;
    do
    :: !done ->
        MigrateOne(HID(s, 0), done, rb, w, ok, cnt, nl);
        if
        :: rb ->
            /* "retries that buffer later": after the handle's word has moved
               on (some pin holder made progress), not back to back */
#ifndef MUTANT_RETRY_NOW
            (word[s] != w)
#else
            skip
#endif
        :: else -> skip
        fi;
        w = 0
    :: else -> break
    od;
    mdone[s] = 1
}

proctype Freer() {
    byte w, p, l, g; bool ok;
    Free(HID(0, 0), w, ok);
    (ST(word[0]) == FREED);                                /* the free completes */
    /* a new buffer reuses slot 0 with the next generation */
    atomic {
        g = (GEN(word[0]) + 1) % 4;
        alloc_loc(l, HID(0, g));
        ptr[0] = l;
        word[0] = MK(g, 0, 0, NORMAL)
    };
    Free(HID(0, 0), w, ok);                                /* stale free: refused */
    assert(ST(word[0]) == NORMAL && loc_owner[ptr[0]] == HID(0, g))
}

init {
    atomic {
        byte l;
        l = 0;
        do
        :: l < NLOC -> loc_owner[l] = NONE; l++
        :: else -> break
        od;
        loc_owner[0] = HID(0, 0); ptr[0] = 0; word[0] = MK(0, 0, 0, NORMAL);
        loc_owner[1] = HID(1, 0); ptr[1] = 1; word[1] = MK(0, 0, 0, NORMAL);
        frreq[0] = NONE; frreq[1] = NONE;
        run User0();
        run User1();
        run Mig(0);
        run Mig(1);
#ifndef NO_FREE
        run Freer()
#endif
    }
}

/* migration is not starved: with finitely many pins, every MigrateOne
   eventually completes (migrated, or the buffer was freed). -a -f */
ltl migration_completes { <> (mdone[0] && mdone[1]) }
