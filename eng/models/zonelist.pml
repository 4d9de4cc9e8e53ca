/*
 * zonelist.pml -- the zonelist seqcount protocol of numalloc (DESIGN.md,
 * "Zonelists and the seqcount").
 *
 * Planned C# names used as step names below:
 *   Numalloc.Sync.SeqCount        BeginWrite / EndWrite / ReadBegin (cookie) / ReadRetry(cookie)
 *   Numalloc.Zonelists.ZonelistBuilder.Rebuild   (the in-place rewrite of the array)
 *   Zonelist.TryAllocate          (the reader's walk)
 *   Zone.TryServe                 (eligibility re-check + allocation under the zone lock)
 *
 * One writer (hotplug: offline of Z0, online of Z3, in either order), two
 * readers (one unmovable request, one movable request; two allocations each).
 *
 * Build switches:
 *   WRITER_STALL        the writer may stop forever at any point of its work
 *                       (checked with the LTL property readers_progress).
 *   MUTANT_ODD_COOKIE   ReadRetry trusts a failed walk taken with an odd cookie.
 *   MUTANT_NO_RECHECK   Zone.TryServe serves without re-checking eligibility.
 *   MUTANT_SPIN_ODD     ReadBegin spins while the count is odd (the kernel's old
 *                       read_seqcount_begin); must fail readers_progress.
 */

#define NZ      4       /* zones Z0..Z3 */
#ifndef NREQ
#ifdef WRITER_STALL
#define NREQ    1       /* allocations per reader (liveness run: one is enough) */
#else
#define NREQ    2       /* allocations per reader */
#endif
#endif
#define L       4       /* zonelist array length (fixed, rewritten in place) */
#define NONE    255     /* end-of-list marker */

#define NORMAL  0       /* zone types = request kinds */
#define MOVABLE 1

#define ABSENT   0      /* block states (one block per zone in the model) */
#define ONLINE   1
#define ISOLATED 2

#define Z0 0            /* Normal, online, 1 free page, gets offlined  */
#define Z1 1            /* Normal, online, 1 free page                 */
#define Z2 2            /* Movable, online, 1 free page                */
#define Z3 3            /* Normal, absent, gets onlined with 1 page    */

byte seq;               /* SeqCount: odd = write section open */
bool wlock;             /* SeqCount writer lock */
byte zl[L];             /* the zonelist array, rewritten in place */
byte ztype[NZ];
byte zstate[NZ];        /* block table byte, read under the zone lock by TryServe */
byte zfree[NZ];         /* free pages in the zone's buddy lists */

/* ghost state for the properties */
byte cand[2];           /* per reader: zones eligible with free pages throughout the attempt */
bool inatt[2];          /* per reader: inside one attempt (ReadBegin .. success/fail/restart) */
byte served[2];
byte failed[2];
byte restarts[2];

#define ELIGIBLE(z, req) (zstate[z] == ONLINE && (req == MOVABLE || ztype[z] == NORMAL))

/* a zone stops being "eligible with free pages": drop it from every reader's set */
#define DROPCAND(z) cand[0] = cand[0] & ~(1 << z); cand[1] = cand[1] & ~(1 << z)

inline take_cand(r, req, k) {
    cand[r] = 0; k = 0;
    do
    :: k < NZ -> if
                 :: ELIGIBLE(k, req) && zfree[k] > 0 -> cand[r] = cand[r] | (1 << k)
                 :: else -> skip
                 fi; k++
    :: else -> break
    od
}

/* Zone.TryServe: the zone lock is the atomic block; re-check eligibility. */
inline TryServe(z, req, ok) {
    atomic {
#ifdef MUTANT_NO_RECHECK
        if
        :: zfree[z] > 0 ->
#else
        if
        :: ELIGIBLE(z, req) && zfree[z] > 0 ->
#endif
            assert(ELIGIBLE(z, req));       /* never served by an ineligible zone */
            zfree[z]--;
            if :: zfree[z] == 0 -> DROPCAND(z) :: else -> skip fi;
            ok = 1
        :: else -> ok = 0
        fi
    }
}

#ifdef WRITER_STALL
#define MAYSTALL  if :: true -> goto stalled :: true -> skip fi
#else
#define MAYSTALL  skip
#endif

/* ZonelistBuilder.Rebuild: compute the new list (zones online, in fallback order
   Z2 (movable first), Z0, Z1, Z3) and write it slot by slot, in place. */
inline Rebuild() {
    i = 0; j = 0;
    do
    :: j < NZ ->
        atomic {
            z = order[j]; j++;
            if
            :: zstate[z] == ONLINE -> zl[i] = z; i++
            :: else -> skip
            fi
        };
        MAYSTALL
    :: else -> break
    od;
    do
    :: i < L -> zl[i] = NONE; i++; MAYSTALL
    :: else -> break
    od
}

inline BeginWrite() {
    atomic { !wlock -> wlock = 1 };
    MAYSTALL;
    seq++;              /* odd */
    MAYSTALL
}

inline EndWrite() {
    seq++;              /* even */
    MAYSTALL;
    wlock = 0
}

proctype Writer() {
    byte i, j, z, op;
    byte order[NZ];
    bool offlined, onlined;
    order[0] = Z2; order[1] = Z0; order[2] = Z1; order[3] = Z3;
    do
    :: !offlined ->
        /* offline Z0: isolate its block (CAS on the block table, outside the
           write section), then rebuild under the seqcount writer */
        atomic { zstate[Z0] = ISOLATED; DROPCAND(Z0) };
        MAYSTALL;
        BeginWrite();
        Rebuild();
        EndWrite();
        offlined = 1
    :: !onlined ->
        /* online Z3: page additions and the rebuild in one write section */
        BeginWrite();
        atomic { zstate[Z3] = ONLINE; zfree[Z3] = 1 };   /* under Z3's zone lock */
        MAYSTALL;
        Rebuild();
        EndWrite();
        onlined = 1
    :: offlined && onlined -> break
    od;
stalled:
    skip
}

/* Zonelist.TryAllocate, with the retry protocol of SeqCount.ReadRetry */
proctype Reader(byte r; byte req) {
    byte n, cookie, i, z, k;
    bool ok;
    do
    :: n < NREQ ->
attempt:
        inatt[r] = 1;
#ifdef MUTANT_SPIN_ODD
        (seq % 2 == 0);                 /* waits for the writer: forbidden */
#endif
        atomic {                        /* SeqCount.ReadBegin -> cookie (may be odd) */
            cookie = seq;
            take_cand(r, req, k)
        };
        i = 0; ok = 0;
        do                              /* walk the list */
        :: i < L ->
            z = zl[i];
            if
            :: z != NONE -> TryServe(z, req, ok)
            :: else -> skip
            fi;
            if
            :: ok -> break
            :: else -> i++
            fi
        :: else -> break
        od;
        if
        :: ok -> atomic { served[r]++; n++; inatt[r] = 0 }
        :: else ->
            /* SeqCount.ReadRetry(cookie): full fence, re-read the count */
            if
#ifdef MUTANT_ODD_COOKIE
            :: seq == cookie ->
#else
            :: (cookie % 2 == 0) && seq == cookie ->
#endif
                /* authoritative failure: must not be spurious */
                atomic { assert(cand[r] == 0); failed[r]++; n++; inatt[r] = 0 }
            :: else ->
                atomic { restarts[r]++; inatt[r] = 0 };
                goto attempt
            fi
        fi
    :: else -> break
    od
}

init {
    atomic {
        ztype[Z0] = NORMAL;  zstate[Z0] = ONLINE; zfree[Z0] = 1;
        ztype[Z1] = NORMAL;  zstate[Z1] = ONLINE; zfree[Z1] = 1;
        ztype[Z2] = MOVABLE; zstate[Z2] = ONLINE; zfree[Z2] = 1;
        ztype[Z3] = NORMAL;  zstate[Z3] = ABSENT; zfree[Z3] = 0;
        zl[0] = Z2; zl[1] = Z0; zl[2] = Z1; zl[3] = NONE;
        run Writer();
        run Reader(0, NORMAL);
        run Reader(1, MOVABLE)
    }
}

#ifdef WRITER_STALL
/* Readers never wait on the writer: every attempt a reader starts ends (in a
   success, an authoritative failure or a restart), even when the writer has
   stopped forever in the middle of a write section. Checked with -a -f. */
ltl readers_progress { [] ((inatt[0] -> <> !inatt[0]) && (inatt[1] -> <> !inatt[1])) }
#endif
