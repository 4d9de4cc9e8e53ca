/*
 * workloads.c - the workloads of workloads.h. Each one starts its worker threads, lets them set
 * up (untimed), times the part between a start and an end barrier, then lets them free what is
 * left (untimed) and adds up their counters. Cross-thread handoffs use plain pthread barriers or
 * single-producer single-consumer rings with acquire/release atomics (GCC __atomic builtins, so
 * the file builds as C99 in tests/run.sh and as C11 in run-peers.sh).
 */
#define _GNU_SOURCE /* dladdr, sched_yield */

#include "workloads.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { WL_PAGE = 4096, WL_LINE = 64 };

/* ---- deterministic randomness: splitmix64, one state per thread ---- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. The modulo bias is irrelevant here and the same for every allocator. */
static size_t rng_range(uint64_t *state, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static uint64_t rng_seed(uint64_t seed, int thread)
{
    uint64_t s = seed ^ ((uint64_t)(thread + 1) * 0xD1B54A32D192ED03ull);
    return rng_next(&s);
}

/* ---- object integrity: a tag at the start, its complement at the end, a byte per page ---- */

/* Bytes [WL_PAGE, body_end) carry one tag byte per page; the tail tag sits after body_end. */
static size_t body_end(size_t size)
{
    return size >= 16 ? size - 8 : size;
}

static void obj_fill(unsigned char *p, size_t size, uint64_t tag)
{
    size_t off, end = body_end(size);
    memcpy(p, &tag, 8);
    for (off = WL_PAGE; off < end; off += WL_PAGE) {
        p[off] = (unsigned char)tag;
    }
    if (size >= 16) {
        uint64_t tail = ~tag;
        memcpy(p + size - 8, &tail, 8);
    }
}

/*
 * 1 if the object written by obj_fill(p, size, tag) was damaged, else 0; only bytes below valid
 * are checked (valid < size after a shrinking realloc: the tail is gone). size >= 8.
 */
static int obj_damaged(const unsigned char *p, size_t size, uint64_t tag, size_t valid)
{
    size_t off, end = body_end(size);
    uint64_t head, tail;
    memcpy(&head, p, 8);
    if (head != tag) {
        return 1;
    }
    if (end > valid) {
        end = valid;
    }
    for (off = WL_PAGE; off < end; off += WL_PAGE) {
        if (p[off] != (unsigned char)tag) {
            return 1;
        }
    }
    if (size >= 16 && size <= valid) {
        memcpy(&tail, p + size - 8, 8);
        if (tail != ~tag) {
            return 1;
        }
    }
    return 0;
}

/* ---- workers: one per thread, padded so their counters never share a cache line ---- */

typedef struct wl_object {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} wl_object;

struct wl_run;

typedef struct wl_worker {
    struct wl_run *run;
    const wl_allocator *alloc;
    int index;
    uint64_t rng;
    long long ops;
    long long errors;
    long long live_bytes;
    long long peak_live_bytes;
    char pad[WL_LINE];
} __attribute__((aligned(WL_LINE))) wl_worker;

typedef struct wl_run {
    const wl_allocator *alloc;
    const wl_params *params;
    pthread_barrier_t start; /* workers + main: setup done, timing starts */
    pthread_barrier_t end;   /* workers + main: timed part done */
    pthread_barrier_t round; /* workers only: larson's round boundary */
    void *shared;            /* the workload's own state */
} wl_run;

/* Allocates and fills an object; NULL (counted as an error) if the allocator fails. */
static int w_alloc(wl_worker *w, wl_object *o, size_t size)
{
    o->p = w->alloc->malloc_fn(size);
    o->size = size;
    o->tag = rng_next(&w->rng) | 1;
    ++w->ops;
    if (o->p == NULL) {
        ++w->errors;
        return -1;
    }
    obj_fill(o->p, size, o->tag);
    w->live_bytes += (long long)size;
    if (w->live_bytes > w->peak_live_bytes) {
        w->peak_live_bytes = w->live_bytes;
    }
    return 0;
}

/* Checks and frees an object (a NULL one, from a failed allocation, is skipped). */
static void w_free(wl_worker *w, wl_object *o)
{
    if (o->p == NULL) {
        return;
    }
    w->errors += obj_damaged(o->p, o->size, o->tag, o->size);
    w->alloc->free_fn(o->p);
    ++w->ops;
    w->live_bytes -= (long long)o->size;
    o->p = NULL;
}

/* Resizes an object, checks what must have survived, and refills it with its tag. */
static void w_realloc(wl_worker *w, wl_object *o, size_t size)
{
    size_t keep = size < o->size ? size : o->size;
    unsigned char *q;
    if (o->p == NULL) {
        w_alloc(w, o, size);
        return;
    }
    if (w->alloc->realloc_fn != NULL) {
        q = w->alloc->realloc_fn(o->p, size);
    } else {
        q = w->alloc->malloc_fn(size);
        if (q != NULL) {
            memcpy(q, o->p, keep);
            w->alloc->free_fn(o->p);
        }
    }
    ++w->ops;
    if (q == NULL) { /* the old object is still valid and still live */
        ++w->errors;
        return;
    }
    w->errors += obj_damaged(q, o->size, o->tag, keep);
    w->live_bytes += (long long)size - (long long)o->size;
    if (w->live_bytes > w->peak_live_bytes) {
        w->peak_live_bytes = w->live_bytes;
    }
    o->p = q;
    o->size = size;
    obj_fill(q, size, o->tag);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Runs body on params->threads workers. body sets up, waits on run->start, does the timed work,
 * waits on run->end, then frees what it still holds. Returns 0, or -1 if the threads could not
 * be started.
 */
static int run_workers(wl_run *run, void *(*body)(void *), wl_result *out)
{
    int n = run->params->threads, i, started = 0, rc = 0;
    wl_worker *workers;
    pthread_t *ids;
    double t0, t1;

    memset(out, 0, sizeof *out);
    workers = aligned_alloc(WL_LINE, sizeof(wl_worker) * (size_t)n);
    ids = calloc((size_t)n, sizeof *ids);
    if (workers == NULL || ids == NULL) {
        free(workers);
        free(ids);
        return -1;
    }
    memset(workers, 0, sizeof(wl_worker) * (size_t)n);
    pthread_barrier_init(&run->start, NULL, (unsigned)n + 1);
    pthread_barrier_init(&run->end, NULL, (unsigned)n + 1);
    pthread_barrier_init(&run->round, NULL, (unsigned)n);
    for (i = 0; i < n; ++i) {
        workers[i].run = run;
        workers[i].alloc = run->alloc;
        workers[i].index = i;
        workers[i].rng = rng_seed(run->params->seed, i);
        if (pthread_create(&ids[i], NULL, body, &workers[i]) != 0) {
            rc = -1;
            break;
        }
        ++started;
    }
    if (rc != 0) {
        /* The started ones wait on barriers sized for n: nothing can release them safely. */
        fprintf(stderr, "workloads: could not start thread %d of %d\n", started + 1, n);
        exit(1);
    }
    pthread_barrier_wait(&run->start);
    t0 = now_s();
    pthread_barrier_wait(&run->end);
    t1 = now_s();
    for (i = 0; i < n; ++i) {
        pthread_join(ids[i], NULL);
        out->ops += workers[i].ops;
        out->errors += workers[i].errors;
        out->peak_live_bytes += workers[i].peak_live_bytes;
    }
    out->seconds = t1 - t0;
    pthread_barrier_destroy(&run->start);
    pthread_barrier_destroy(&run->end);
    pthread_barrier_destroy(&run->round);
    free(workers);
    free(ids);
    return 0;
}

/* ---- larson: server churn, arrays handed to the next thread each round ---- */

enum { LARSON_SLOTS = 1000, LARSON_ROUNDS = 8, LARSON_MIN = 16, LARSON_MAX = 1024 };

static void *larson_body(void *arg)
{
    wl_worker *w = arg;
    wl_object *arrays = w->run->shared;
    int n = w->run->params->threads, round;
    long per_round = w->run->params->iterations / LARSON_ROUNDS, i;
    wl_object *mine = arrays + (size_t)w->index * LARSON_SLOTS;

    for (i = 0; i < LARSON_SLOTS; ++i) {
        w_alloc(w, &mine[i], rng_range(&w->rng, LARSON_MIN, LARSON_MAX));
    }
    pthread_barrier_wait(&w->run->start);
    w->ops = 0;
    for (round = 0; round < LARSON_ROUNDS; ++round) {
        /* Round r works on the array thread (index + r) % n filled: its objects, not ours. */
        wl_object *slots = arrays + (size_t)((w->index + round) % n) * LARSON_SLOTS;
        for (i = 0; i < per_round; ++i) {
            wl_object *o = &slots[rng_range(&w->rng, 0, LARSON_SLOTS - 1)];
            w_free(w, o);
            w_alloc(w, o, rng_range(&w->rng, LARSON_MIN, LARSON_MAX));
        }
        pthread_barrier_wait(&w->run->round);
    }
    pthread_barrier_wait(&w->run->end);
    {
        long long ops = w->ops;
        for (i = 0; i < LARSON_SLOTS; ++i) {
            w_free(w, &mine[i]);
        }
        w->ops = ops;
    }
    return NULL;
}

static int run_larson(const wl_allocator *alloc, const wl_params *params, wl_result *out)
{
    wl_run run = { .alloc = alloc, .params = params };
    int rc;
    run.shared = calloc((size_t)params->threads * LARSON_SLOTS, sizeof(wl_object));
    if (run.shared == NULL) {
        return -1;
    }
    rc = run_workers(&run, larson_body, out);
    out->peak_live_bytes = 0;
    free(run.shared);
    return rc;
}

/* ---- xmalloc: producers allocate, consumers on other threads free ---- */

enum { XM_RING = 1024, XM_BATCH = 256, XM_MIN = 8, XM_MAX = 256 };

/* One producer -> one consumer. head is written by the producer only, tail by the consumer. */
typedef struct xm_ring {
    size_t head __attribute__((aligned(WL_LINE)));
    int done;
    size_t tail __attribute__((aligned(WL_LINE)));
    wl_object slots[XM_RING] __attribute__((aligned(WL_LINE)));
} xm_ring;

typedef struct xm_shared {
    xm_ring *rings; /* one per producer */
    int producers;
    int consumers;
} xm_shared;

static void xm_produce(wl_worker *w, xm_ring *ring, long count)
{
    size_t head = ring->head, tail = 0;
    long i;
    for (i = 0; i < count; ++i) {
        wl_object o;
        w_alloc(w, &o, rng_range(&w->rng, XM_MIN, XM_MAX));
        while (head - tail == XM_RING) {
            /* acquire: the consumer's reads of the slots it released happen before we reuse them */
            tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
            if (head - tail == XM_RING) {
                sched_yield();
            }
        }
        ring->slots[head % XM_RING] = o;
        ++head;
        /* release: the object's contents and the slot are visible before the new head */
        __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    }
    /* release: done is read after the final head, which is already published */
    __atomic_store_n(&ring->done, 1, __ATOMIC_RELEASE);
}

/* Drains the rings of producers index, index + consumers, ... until all are done and empty. */
static void xm_consume(wl_worker *w, xm_shared *sh)
{
    int open = 0, p;
    for (p = w->index - sh->producers; p < sh->producers; p += sh->consumers) {
        ++open;
    }
    while (open > 0) {
        int progressed = 0;
        open = 0;
        for (p = w->index - sh->producers; p < sh->producers; p += sh->consumers) {
            xm_ring *ring = &sh->rings[p];
            /* acquire done before head: a done ring's last head is then seen below */
            int done = __atomic_load_n(&ring->done, __ATOMIC_ACQUIRE);
            /* acquire: pairs with the producer's release of head, so the slots are complete */
            size_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE), tail = ring->tail;
            if (tail != head) {
                progressed = 1;
                for (; tail != head; ++tail) {
                    w_free(w, &ring->slots[tail % XM_RING]);
                }
                /* release: our reads of the slots happen before the producer reuses them */
                __atomic_store_n(&ring->tail, tail, __ATOMIC_RELEASE);
            }
            if (!done || tail != head) {
                ++open;
            }
        }
        if (!progressed && open > 0) {
            sched_yield();
        }
    }
}

static void *xmalloc_body(void *arg)
{
    wl_worker *w = arg;
    xm_shared *sh = w->run->shared;
    long n = w->run->params->iterations, i, j;
    pthread_barrier_wait(&w->run->start);
    if (sh->consumers == 0) {
        /* One thread: the same objects and sizes, allocated in batches and freed by itself. */
        wl_object batch[XM_BATCH];
        for (i = 0; i < n; i += XM_BATCH) {
            long m = n - i < XM_BATCH ? n - i : XM_BATCH;
            for (j = 0; j < m; ++j) {
                w_alloc(w, &batch[j], rng_range(&w->rng, XM_MIN, XM_MAX));
            }
            for (j = 0; j < m; ++j) {
                w_free(w, &batch[j]);
            }
        }
    } else if (w->index < sh->producers) {
        xm_produce(w, &sh->rings[w->index], n);
    } else {
        xm_consume(w, sh);
    }
    pthread_barrier_wait(&w->run->end);
    return NULL;
}

/*
 * threads = 1: one thread allocates and frees; otherwise (threads + 1) / 2 producers, each
 * allocating `iterations` objects, and threads / 2 consumers freeing them.
 */
static int run_xmalloc(const wl_allocator *alloc, const wl_params *params, wl_result *out)
{
    wl_run run = { .alloc = alloc, .params = params };
    xm_shared sh;
    int rc;
    sh.consumers = params->threads / 2;
    sh.producers = params->threads - sh.consumers;
    sh.rings = aligned_alloc(WL_LINE, sizeof(xm_ring) * (size_t)sh.producers);
    if (sh.rings == NULL) {
        return -1;
    }
    memset(sh.rings, 0, sizeof(xm_ring) * (size_t)sh.producers);
    run.shared = &sh;
    rc = run_workers(&run, xmalloc_body, out);
    out->peak_live_bytes = 0;
    free(sh.rings);
    return rc;
}

/* ---- cache-scratch: small objects from one thread, written by many ---- */

enum { CS_SIZE = 8, CS_WRITES = 50 };

static void *scratch_body(void *arg)
{
    wl_worker *w = arg;
    wl_object *initial = w->run->shared;
    long n = w->run->params->iterations, i;
    int k;
    pthread_barrier_wait(&w->run->start);
    /* The object the main thread allocated for us, next to the other threads' ones. */
    w_free(w, &initial[w->index]);
    for (i = 0; i < n; ++i) {
        volatile uint64_t *q = w->alloc->malloc_fn(CS_SIZE);
        ++w->ops;
        if (q == NULL) {
            ++w->errors;
            continue;
        }
        *q = 0;
        for (k = 0; k < CS_WRITES; ++k) {
            *q = *q + 1; /* volatile: every write reaches the line another thread may share */
        }
        w->errors += *q != CS_WRITES;
        w->alloc->free_fn((void *)q);
        ++w->ops;
    }
    pthread_barrier_wait(&w->run->end);
    return NULL;
}

static int run_scratch(const wl_allocator *alloc, const wl_params *params, wl_result *out)
{
    wl_run run = { .alloc = alloc, .params = params };
    wl_object *initial = calloc((size_t)params->threads, sizeof *initial);
    uint64_t rng = rng_seed(params->seed, -1);
    int i, rc;
    long long failed = 0;
    if (initial == NULL) {
        return -1;
    }
    /* Allocated back to back by one thread: with most allocators they share cache lines. */
    for (i = 0; i < params->threads; ++i) {
        initial[i].p = alloc->malloc_fn(CS_SIZE);
        initial[i].size = CS_SIZE;
        initial[i].tag = rng_next(&rng) | 1;
        if (initial[i].p == NULL) {
            ++failed;
        } else {
            obj_fill(initial[i].p, CS_SIZE, initial[i].tag);
        }
    }
    run.shared = initial;
    rc = run_workers(&run, scratch_body, out);
    out->errors += failed;
    out->peak_live_bytes = 0;
    free(initial);
    return rc;
}

/* ---- mixed: a generated malloc/free/realloc trace with a live set that grows and shrinks ---- */

enum { MIX_SLOTS = 8192, MIX_LOW = MIX_SLOTS / 10, MIX_REALLOC_MAX = 1 << 20 };

/*
 * The size distribution, in per mille: 600 of 8..64 B, 250 of 65..512 B, 110 of 513 B..4 KiB,
 * 35 of 4..32 KiB, 5 of 32..256 KiB (mean about 1.7 KiB). Skewed to small objects the way
 * measured C/C++ heaps are, with a tail large enough to reach the allocators' mmap paths.
 */
static size_t mixed_size(uint64_t *rng)
{
    unsigned band = (unsigned)(rng_next(rng) % 1000);
    if (band < 600) {
        return rng_range(rng, 8, 64);
    }
    if (band < 850) {
        return rng_range(rng, 65, 512);
    }
    if (band < 960) {
        return rng_range(rng, 513, 4096);
    }
    if (band < 995) {
        return rng_range(rng, 4097, 32768);
    }
    return rng_range(rng, 32769, 262144);
}

static void *mixed_body(void *arg)
{
    wl_worker *w = arg;
    long n = w->run->params->iterations, i;
    size_t live = 0;
    int growing = 1;
    wl_object *objs = calloc(MIX_SLOTS, sizeof *objs);
    if (objs == NULL) {
        ++w->errors;
    }
    pthread_barrier_wait(&w->run->start);
    for (i = 0; i < n && objs != NULL; ++i) {
        /* Growing: 70% malloc, 20% free, 10% realloc; shrinking: 20%, 70%, 10%. */
        unsigned op = (unsigned)(rng_next(&w->rng) % 10);
        int do_malloc = growing ? op < 7 : op < 2;
        int do_free = growing ? op >= 7 && op < 9 : op >= 2 && op < 9;
        if (live == 0 || (do_malloc && live < MIX_SLOTS)) {
            w_alloc(w, &objs[live], mixed_size(&w->rng));
            ++live;
        } else if (do_free || do_malloc) {
            size_t j = rng_range(&w->rng, 0, live - 1);
            w_free(w, &objs[j]);
            objs[j] = objs[--live];
        } else {
            size_t j = rng_range(&w->rng, 0, live - 1);
            size_t size = objs[j].size;
            size = rng_next(&w->rng) % 2 ? mixed_size(&w->rng) : size + size / 2;
            w_realloc(w, &objs[j], size < MIX_REALLOC_MAX ? size : MIX_REALLOC_MAX);
        }
        if (growing && live >= MIX_SLOTS) {
            growing = 0;
        } else if (!growing && live <= MIX_LOW) {
            growing = 1;
        }
    }
    pthread_barrier_wait(&w->run->end);
    if (objs != NULL) {
        long long ops = w->ops;
        while (live > 0) {
            w_free(w, &objs[--live]);
        }
        w->ops = ops;
        free(objs);
    }
    return NULL;
}

static int run_mixed(const wl_allocator *alloc, const wl_params *params, wl_result *out)
{
    wl_run run = { .alloc = alloc, .params = params };
    return run_workers(&run, mixed_body, out);
}

/* ---- noalloc: the same kind of loop with no allocator call, the machine's scaling ceiling ---- */

static void *noalloc_body(void *arg)
{
    wl_worker *w = arg;
    long n = w->run->params->iterations, i;
    uint64_t buf[512] = { 0 }, sum = 0;
    pthread_barrier_wait(&w->run->start);
    for (i = 0; i < n; ++i) {
        uint64_t x = rng_next(&w->rng);
        buf[x % 512] += x; /* a store to memory of its own, as a workload writes its objects */
        ++w->ops;
    }
    for (i = 0; i < 512; ++i) {
        sum += buf[i];
    }
    w->errors += sum == 0 && n > 0; /* uses the stores, so the loop stays */
    pthread_barrier_wait(&w->run->end);
    return NULL;
}

static int run_noalloc(const wl_allocator *alloc, const wl_params *params, wl_result *out)
{
    wl_run run = { .alloc = alloc, .params = params };
    return run_workers(&run, noalloc_body, out);
}

/* ---- the table, allocators, /proc ---- */

const wl_workload wl_workloads[] = {
    { "noalloc", "loop steps per thread, no allocator call (counted as 1 op)", 50000000, 10000000, run_noalloc },
    { "larson", "slot replacements per thread (1 free + 1 malloc)", 10000000, 2000000, run_larson },
    { "xmalloc", "objects per producer (1 malloc + 1 free on a consumer)", 5000000, 1000000, run_xmalloc },
    { "cache-scratch", "malloc + 50 writes + free per thread", 10000000, 2000000, run_scratch },
    { "mixed", "trace steps per thread (malloc, free or realloc)", 2000000, 500000, run_mixed },
};
const int wl_workload_count = (int)(sizeof wl_workloads / sizeof wl_workloads[0]);

const wl_workload *wl_find(const char *name)
{
    int i;
    for (i = 0; i < wl_workload_count; ++i) {
        if (strcmp(wl_workloads[i].name, name) == 0) {
            return &wl_workloads[i];
        }
    }
    return NULL;
}

wl_allocator wl_libc_allocator(const char *name)
{
    wl_allocator a = { name, malloc, free, realloc };
    return a;
}

int wl_load_allocator(const char *path, const char *prefix, const char *name, wl_allocator *out,
                      char *why, size_t why_len)
{
    static const char *const names[] = { "malloc", "free", "realloc" };
    void *sym[3];
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    int i;
    if (lib == NULL) {
        snprintf(why, why_len, "cannot load %s: %s", path, dlerror());
        return -1;
    }
    for (i = 0; i < 3; ++i) {
        char symbol[64];
        snprintf(symbol, sizeof symbol, "%s%s", prefix, names[i]);
        sym[i] = dlsym(lib, symbol);
        if (sym[i] == NULL && i < 2) {
            snprintf(why, why_len, "%s lacks %s", base, symbol);
            dlclose(lib);
            return -1;
        }
    }
    /* The library stays loaded for the life of the process: its memory is in use until exit. */
    out->name = name;
    out->malloc_fn = (void *(*)(size_t))sym[0];
    out->free_fn = (void (*)(void *))sym[1];
    out->realloc_fn = (void *(*)(void *, size_t))sym[2];
    return 0;
}

const char *wl_malloc_provider(void)
{
    /* Through a volatile pointer: the address the dynamic linker bound malloc to. */
    void *(*volatile m)(size_t) = malloc;
    Dl_info info;
    if (dladdr((void *)m, &info) == 0 || info.dli_fname == NULL) {
        return "?";
    }
    return info.dli_fname;
}

long wl_status_kib(const char *field)
{
    char line[256];
    size_t len = strlen(field);
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

int wl_reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int rc;
    if (f == NULL) {
        return -1;
    }
    rc = fputs("5", f) < 0 ? -1 : 0;
    if (fclose(f) != 0) {
        rc = -1;
    }
    return rc;
}
