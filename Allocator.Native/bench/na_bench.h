/*
 * na_bench.h - benchmark and test-only exports of libnumalloc, used by bench/crossing.c to time
 * the C -> NativeAOT crossing and by tests/ to reach the export guard. NOT part of the numalloc ABI (see include/numalloc.h): they may
 * change or vanish without notice.
 */
#ifndef NA_BENCH_H
#define NA_BENCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Does nothing: the cost of a bare call into the library. */
void na_bench_noop(void);

/* Increments a [ThreadStatic] counter of the calling thread and returns it (1 on the first call). */
int na_bench_tls(void);

/*
 * Order-0 page fast path. The first call of any of these builds, once, a benchmark-only cached
 * page allocator (one simulated node, 16 MiB Normal, no Movable zone, magazines in front),
 * independent of NUMALLOC_CONFIG.
 */

/* One 4 KiB page from that allocator (the calling thread's magazine when it holds one); NULL on failure. */
void *na_bench_page_alloc(void);

/* Frees a page from na_bench_page_alloc; NULL does nothing, a bad pointer is ignored. */
void na_bench_page_free(void *p);

/* Runs `iterations` page alloc+free pairs inside the library (one crossing in all): 0, or -1 on failure. */
int na_bench_page_pair(long iterations);

/* Throws inside the export guard: returns -1 with errno ENOMEM; the first call reports the
 * exception in one line on stderr, later calls report nothing. */
int na_bench_throw(void);

/*
 * Object fast path. The first call of any of these builds, once, a benchmark-only NumaAllocator of
 * the same shape (one simulated node, 16 MiB Normal), independent of NUMALLOC_CONFIG.
 */

/* One object of `size` bytes (the calling thread's magazine when it holds one); NULL on failure. */
void *na_bench_object_alloc(size_t size);

/* Frees an object from na_bench_object_alloc; NULL does nothing, a bad pointer is ignored. */
void na_bench_object_free(void *p);

/* Runs `iterations` allocate+free pairs of `size` bytes inside the library (one crossing in all): 0, or -1 on failure. */
int na_bench_object_pair(size_t size, long iterations);

/* Test hook on the shared allocator (NUMALLOC_CONFIG): veto non-zero registers a hotplug listener
 * that vetoes every offline (they then return -ECANCELED), 0 removes it. 0, or -1 with errno
 * ENOMEM when the library failed to initialize. */
int na_bench_veto_offline(int veto);

#ifdef __cplusplus
}
#endif

#endif /* NA_BENCH_H */
