/*
 * workloads.h - the classic allocator workloads, run against any malloc/free pair:
 *   larson        server churn after Larson & Krishnan (ISMM 1998): each thread replaces random
 *                 slots of an array with objects of random size; between rounds the arrays move
 *                 to the next thread, so objects are freed by a thread that did not allocate them
 *   xmalloc       producer/consumer after Lever & Boreham's xmalloc-test: producer threads
 *                 allocate, consumer threads on other threads free (one SPSC ring per producer)
 *   cache-scratch after Hoard's cache-scratch (Berger et al., ASPLOS 2000): the main thread
 *                 allocates one small object per thread and hands it over; each thread frees it,
 *                 then allocates, writes and frees small objects in a loop; an allocator that
 *                 gives two threads parts of one cache line shows as false sharing
 *   mixed         a deterministic generated trace of malloc/free/realloc with a skewed size
 *                 distribution (mostly small, a long tail to 256 KiB) and a live set that grows
 *                 and shrinks in phases; its peak live bytes give the fragmentation ratio
 *   noalloc       a loop of random stores with no allocator call: how far this machine lets any
 *                 loop scale with threads, the ceiling for the others' scaling
 * Every object is written when allocated (a tag at its start and end, one byte per page) and
 * checked before it is freed, so an allocator that hands out overlapping or corrupt memory
 * shows up as integrity errors. Everything random comes from a seeded generator: the same
 * seed gives the same sizes and the same operations.
 * Used by peers.c (the benchmark program) and tests/test_workloads.c (the smoke test).
 */
#ifndef NA_WORKLOADS_H
#define NA_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

/* The allocator under test. realloc_fn may be NULL: then a realloc is malloc + copy + free. */
typedef struct wl_allocator {
    const char *name;
    void *(*malloc_fn)(size_t size);
    void (*free_fn)(void *p);
    void *(*realloc_fn)(void *p, size_t size);
} wl_allocator;

typedef struct wl_params {
    int threads;     /* worker threads, >= 1 */
    long iterations; /* per thread, in the workload's own unit (wl_workload.unit) */
    uint64_t seed;
} wl_params;

typedef struct wl_result {
    long long ops;            /* allocator calls in the timed part (malloc, free, realloc: 1 each) */
    double seconds;           /* wall time of the timed part */
    long long errors;         /* integrity failures: bad tags, NULL from the allocator */
    long long peak_live_bytes; /* mixed: sum over threads of each thread's peak live bytes; else 0 */
} wl_result;

typedef struct wl_workload {
    const char *name;
    const char *unit;         /* what one iteration is */
    long default_iterations;  /* a run of roughly a second on one core */
    long quick_iterations;    /* a run of a fraction of a second */
    int (*run)(const wl_allocator *alloc, const wl_params *params, wl_result *out); /* 0, or -1: could not start */
} wl_workload;

extern const wl_workload wl_workloads[];
extern const int wl_workload_count;

/* The workload called name, or NULL. */
const wl_workload *wl_find(const char *name);

/* The process's own malloc, free and realloc (glibc, or whatever LD_PRELOAD put first). */
wl_allocator wl_libc_allocator(const char *name);

/*
 * Resolves <prefix>malloc, <prefix>free and, when present, <prefix>realloc from the shared
 * library at path (dlopen, RTLD_NOW | RTLD_LOCAL: nothing is interposed). 0 on success; -1 with
 * a one-line reason in why, such as "libnumalloc.so lacks na_malloc".
 */
int wl_load_allocator(const char *path, const char *prefix, const char *name, wl_allocator *out,
                      char *why, size_t why_len);

/* The file that provides the process's malloc (dladdr), or "?". */
const char *wl_malloc_provider(void);

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or -1. */
long wl_status_kib(const char *field);

/* Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs): 0, or -1 if refused. */
int wl_reset_peak_rss(void);

#endif /* NA_WORKLOADS_H */
