/*
 * abi-bench.c - the C ABI of libnumalloc against the process's malloc, in one run.
 * For 1 and 2 threads (each thread runs its own loop; figures are ns per operation per thread,
 * the mean over the threads) and sizes 16, 64, 256, 1024, 4096 B:
 *   crossing    na_bench_noop: the bare C -> NativeAOT call (empty, unguarded)
 *   guarded     na_node_count: a cheap export with the export guard, the example crossing
 *   malloc      malloc(S)+free pair of this process (glibc, or the LD_PRELOADed peer)
 *   na pair     na_malloc(S)+na_free pair (two crossings plus the work)
 *   work        na pair - 2 x crossing (same run); work/g: na pair - 2 x guarded
 *   bulk        na_malloc_bulk(S, out, 32) + na_free_bulk(out, 32), ns per object
 * Each figure is the best of REPEATS repeats of an iteration-bounded loop (CLOCK_MONOTONIC).
 * Output: a readable table, and one "ROW threads size crossing malloc na work bulk guarded work/g" line per row
 * for run-abi.sh. Usage: abi-bench [iterations]   |   abi-bench --which (the file providing malloc)
 * Build: run-abi.sh (once against libnumalloc.so, once against libnumalloc.a).
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "na_bench.h"
#include "numalloc.h"

#ifndef NA_LINK
#define NA_LINK "?"
#endif

enum { REPEATS = 3, BULK = 32, MAX_THREADS = 2, NSIZES = 5, NKINDS = 5 };
enum { K_CROSS, K_MALLOC, K_NA, K_BULK, K_GUARDED };

static const size_t s_sizes[NSIZES] = { 16, 64, 256, 1024, 4096 };

/* One per thread: a sink the threads shared moved its cache line between the CPUs at every pair,
 * which slowed every allocator's two-thread pair about threefold (the crossing loop, which stores
 * nothing, did not slow down). */
static __thread void *volatile s_sink_ptr;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One timed loop: ns per operation. */
static double run_kind(int kind, size_t size, long n)
{
    long i;
    double start, t;
    void *batch[BULK];
    switch (kind) {
    case K_CROSS:
        start = now_ns();
        for (i = 0; i < n; ++i) {
            na_bench_noop();
        }
        return (now_ns() - start) / (double)n;
    case K_GUARDED:
        start = now_ns();
        for (i = 0; i < n; ++i) {
            if (na_node_count() < 1) {
                return -1; /* the library failed to start: no figure */
            }
        }
        return (now_ns() - start) / (double)n;
    case K_MALLOC:
        start = now_ns();
        for (i = 0; i < n; ++i) {
            void *p = malloc(size);
            s_sink_ptr = p; /* escapes: the compiler may not fold the pair away */
            free(p);
        }
        return (now_ns() - start) / (double)n;
    case K_NA:
        start = now_ns();
        for (i = 0; i < n; ++i) {
            void *p = na_malloc(size);
            s_sink_ptr = p;
            na_free(p);
        }
        return (now_ns() - start) / (double)n;
    default:
        n = n / BULK * BULK;
        start = now_ns();
        for (i = 0; i < n; i += BULK) {
            if (na_malloc_bulk(size, batch, BULK) != BULK) {
                fprintf(stderr, "abi-bench: na_malloc_bulk(%zu, 32) failed\n", size);
                exit(1);
            }
            s_sink_ptr = batch[BULK - 1];
            na_free_bulk(batch, BULK);
        }
        t = now_ns() - start;
        return t / (double)n;
    }
}

typedef struct {
    int id;
    long n;
    pthread_barrier_t *barrier;
    double best[NSIZES][NKINDS];
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = (worker_t *)arg;
    int s, k, r;
    /* The first calls attach the thread to the runtime and fill its magazines: untimed. */
    na_bench_noop();
    for (s = 0; s < NSIZES; ++s) {
        na_free(na_malloc(s_sizes[s]));
        free(malloc(s_sizes[s]));
    }
    for (s = 0; s < NSIZES; ++s) {
        for (k = 0; k < NKINDS; ++k) {
            for (r = 0; r < REPEATS; ++r) {
                double t;
                pthread_barrier_wait(w->barrier); /* every thread runs the same loop at once */
                t = run_kind(k, s_sizes[s], w->n);
                if (r == 0 || t < w->best[s][k]) {
                    w->best[s][k] = t;
                }
            }
        }
    }
    return NULL;
}

static const char *malloc_provider(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL) {
        return info.dli_fname;
    }
    return "?";
}

int main(int argc, char **argv)
{
    long n;
    int threads;
    if (argc > 1 && strcmp(argv[1], "--which") == 0) {
        printf("%s\n", malloc_provider());
        return 0;
    }
    n = argc > 1 ? atol(argv[1]) : 10000000L;
    if (n < BULK) {
        fprintf(stderr, "usage: abi-bench [iterations >= 32] | --which\n");
        return 2;
    }
    /* Starts the runtime and builds the shared allocator (NUMALLOC_CONFIG): untimed. */
    na_bench_noop();
    na_free(na_malloc(64));

    printf("abi-bench (%s build), malloc from %s, best of %d x %ld per figure, ns per op per thread\n",
           NA_LINK, malloc_provider(), REPEATS, n);
    printf("%-3s %6s %9s %9s %9s %9s %9s %8s %8s %9s %9s\n", "thr", "size", "crossing", "malloc", "na pair",
           "work", "bulk/obj", "na/mall", "bulk/mall", "guarded", "work/g");
    for (threads = 1; threads <= MAX_THREADS; ++threads) {
        pthread_t tid[MAX_THREADS];
        worker_t w[MAX_THREADS];
        pthread_barrier_t barrier;
        int t, s, k;
        pthread_barrier_init(&barrier, NULL, (unsigned)threads);
        for (t = 0; t < threads; ++t) {
            memset(&w[t], 0, sizeof w[t]);
            w[t].id = t;
            w[t].n = n;
            w[t].barrier = &barrier;
            if (pthread_create(&tid[t], NULL, worker, &w[t]) != 0) {
                fprintf(stderr, "abi-bench: pthread_create failed\n");
                return 1;
            }
        }
        for (t = 0; t < threads; ++t) {
            pthread_join(tid[t], NULL);
        }
        pthread_barrier_destroy(&barrier);
        for (s = 0; s < NSIZES; ++s) {
            double v[NKINDS], work, work_guarded;
            for (k = 0; k < NKINDS; ++k) {
                v[k] = 0;
                for (t = 0; t < threads; ++t) {
                    v[k] += w[t].best[s][k];
                }
                v[k] /= threads;
            }
            work = v[K_NA] - 2 * v[K_CROSS];
            work_guarded = v[K_NA] - 2 * v[K_GUARDED];
            printf("%-3d %6zu %9.2f %9.2f %9.2f %9.2f %9.2f %8.2f %8.2f %9.2f %9.2f\n", threads, s_sizes[s],
                   v[K_CROSS], v[K_MALLOC], v[K_NA], work, v[K_BULK], v[K_NA] / v[K_MALLOC],
                   v[K_BULK] / v[K_MALLOC], v[K_GUARDED], work_guarded);
            printf("ROW %d %zu %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n", threads, s_sizes[s], v[K_CROSS], v[K_MALLOC],
                   v[K_NA], work, v[K_BULK], v[K_GUARDED], work_guarded);
        }
    }
    fflush(stdout);
    return 0;
}
