/*
 * crossing.c - cost of a call from C into libnumalloc (NativeAOT), per call:
 *   na_bench_noop   the bare crossing (reverse P/Invoke transition in and out)
 *   na_bench_tls    the crossing plus one [ThreadStatic] read-modify-write
 *   na_node_count   a cheap export with the export guard every real one has (try/catch, the shared
 *                   allocator's lookup): the crossing the C ABI issue names as its example
 *   malloc+free     a glibc malloc(64)/free pair, for reference
 *   page alloc+free na_bench_page_alloc + na_bench_page_free from C: one order-0 page through
 *                   the cached page allocator's fast path (the thread's magazine), two crossings
 *   page pair (in)  na_bench_page_pair(N): the same N pairs inside the library, one crossing in
 *                   all; ns per pair = total / N
 *   object 64 (C)   na_bench_object_alloc(64) + na_bench_object_free from C: NumaAllocator's fast path
 *                   (the thread's magazine), two crossings
 *   object pair (in) na_bench_object_pair(S, N): N pairs of S bytes inside the library, one crossing
 *                   in all, for S = 16, 64, 256, 1024, 4096 (the BenchmarkDotNet object sizes), next to
 *                   malloc(S)+free(S) from C
 *   na_malloc+na_free    the C ABI's pair of S bytes from C (numalloc.h, the shared allocator of
 *                   NUMALLOC_CONFIG): two crossings plus the magazine pop and push
 *   na bulk 32      na_malloc_bulk(S, out, 32) + na_free_bulk(out, 32), ns per object: two
 *                   crossings per 32 objects
 * Each figure is the best of ROUNDS rounds of ITERATIONS calls, timed with CLOCK_MONOTONIC.
 * Build: run-crossing.sh (once against libnumalloc.so, once against libnumalloc.a).
 * Usage: crossing [iterations]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "na_bench.h"
#include "numalloc.h"

#ifndef NA_LINK
#define NA_LINK "?"
#endif

enum { ROUNDS = 5 };

/* Stores through these cannot be dropped, so the pair and the results stay live. */
static void *volatile s_sink_ptr;
static volatile int s_sink_int;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double time_noop(long n)
{
    long i;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        na_bench_noop();
    }
    return now_ns() - start;
}

/* n calls of an export returning int; inlined with a constant function, so each is a direct call. */
static inline double time_int_export(int (*call)(void), long n)
{
    long i;
    int sum = 0;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        sum += call();
    }
    s_sink_int = sum;
    return now_ns() - start;
}

static double time_node_count(long n)
{
    return time_int_export(na_node_count, n);
}

static double time_tls(long n)
{
    return time_int_export(na_bench_tls, n);
}

static double time_malloc_free(long n)
{
    long i;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        void *p = malloc(64);
        s_sink_ptr = p; /* escapes: GCC may not fold the pair away */
        free(p);
    }
    return now_ns() - start;
}

static double time_page_pair_c(long n)
{
    long i;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        void *p = na_bench_page_alloc();
        s_sink_ptr = p;
        na_bench_page_free(p);
    }
    return now_ns() - start;
}

static double time_page_pair_in(long n)
{
    double start = now_ns();
    int rc = na_bench_page_pair(n);
    double t = now_ns() - start;
    if (rc != 0) {
        fprintf(stderr, "crossing: na_bench_page_pair(%ld) failed (%d)\n", n, rc);
        exit(1);
    }
    return t;
}

static double time_object_pair_c(long n)
{
    long i;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        void *p = na_bench_object_alloc(64);
        s_sink_ptr = p;
        na_bench_object_free(p);
    }
    return now_ns() - start;
}

static size_t s_object_size = 64;

static double time_object_pair_in(long n)
{
    double start = now_ns();
    int rc = na_bench_object_pair(s_object_size, n);
    double t = now_ns() - start;
    if (rc != 0) {
        fprintf(stderr, "crossing: na_bench_object_pair(%zu, %ld) failed (%d)\n", s_object_size, n, rc);
        exit(1);
    }
    return t;
}

static double time_malloc_sized(long n)
{
    long i;
    size_t size = s_object_size;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        void *p = malloc(size);
        s_sink_ptr = p;
        free(p);
    }
    return now_ns() - start;
}

static double time_na_pair(long n)
{
    long i;
    size_t size = s_object_size;
    double start = now_ns();
    for (i = 0; i < n; ++i) {
        void *p = na_malloc(size);
        s_sink_ptr = p;
        na_free(p);
    }
    return now_ns() - start;
}

enum { BULK = 32 };

/* n objects in batches of BULK (n rounded down to a multiple of BULK; the caller divides by n). */
static double time_na_bulk(long n)
{
    long i;
    size_t size = s_object_size;
    void *batch[BULK];
    double start = now_ns();
    for (i = 0; i + BULK <= n; i += BULK) {
        if (na_malloc_bulk(size, batch, BULK) != BULK) {
            fprintf(stderr, "crossing: na_malloc_bulk(%zu, 32) failed\n", size);
            exit(1);
        }
        s_sink_ptr = batch[BULK - 1];
        na_free_bulk(batch, BULK);
    }
    return now_ns() - start;
}

static void report(const char *name, const char *unit, double (*run)(long), long n)
{
    double best = 0;
    int round;
    for (round = 0; round < ROUNDS; ++round) {
        double t = run(n);
        if (round == 0 || t < best) {
            best = t;
        }
    }
    printf("%-7s %-26s %6.2f ns/%-4s (best of %d x %ld)\n", NA_LINK, name, best / (double)n, unit, ROUNDS, n);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000000L;
    if (n <= 0) {
        fprintf(stderr, "usage: crossing [iterations > 0]\n");
        return 2;
    }
    /* The first call starts the runtime and attaches this thread: keep it out of the timing. */
    na_bench_noop();
    s_sink_int = na_bench_tls();
    /* The first page call builds the page allocator and this thread's magazines: keep it out too. */
    {
        void *p = na_bench_page_alloc();
        if (p == NULL || na_bench_page_pair(1) != 0) {
            fprintf(stderr, "crossing: the bench page allocator failed (alloc %p)\n", p);
            return 1;
        }
        na_bench_page_free(p);
    }

    report("na_bench_noop", "call", time_noop, n);
    report("na_node_count", "call", time_node_count, n);
    report("na_bench_tls", "call", time_tls, n);
    report("malloc64+free", "pair", time_malloc_free, n);
    report("page alloc+free (C)", "pair", time_page_pair_c, n);
    report("page_pair (in lib)", "pair", time_page_pair_in, n);
    {
        void *p = na_bench_object_alloc(64);
        if (p == NULL || na_bench_object_pair(64, 1) != 0) {
            fprintf(stderr, "crossing: the bench object allocator failed (alloc %p)\n", p);
            return 1;
        }
        na_bench_object_free(p);
    }
    report("object64 alloc+free (C)", "pair", time_object_pair_c, n);
    {
        static const size_t sizes[] = { 16, 64, 256, 1024, 4096 };
        char name[40];
        size_t i;
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
            s_object_size = sizes[i];
            snprintf(name, sizeof name, "object_pair %zu (in lib)", sizes[i]);
            report(name, "pair", time_object_pair_in, n);
            snprintf(name, sizeof name, "malloc%zu+free", sizes[i]);
            report(name, "pair", time_malloc_sized, n);
        }
    }
    /* The C ABI over the shared allocator; the first call builds it: keep that out of the timing. */
    na_free(na_malloc(64));
    {
        static const size_t sizes[] = { 16, 64, 256, 1024, 4096 };
        char name[40];
        size_t i;
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
            s_object_size = sizes[i];
            snprintf(name, sizeof name, "na_malloc%zu+na_free", sizes[i]);
            report(name, "pair", time_na_pair, n);
            snprintf(name, sizeof name, "na bulk 32 x %zu", sizes[i]);
            report(name, "obj", time_na_bulk, n / BULK * BULK);
        }
    }
    return 0;
}
