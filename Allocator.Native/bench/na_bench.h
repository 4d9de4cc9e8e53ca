/*
 * na_bench.h - benchmark-only exports of libnumalloc, used by bench/crossing.c to time the
 * C -> NativeAOT crossing. NOT part of the numalloc ABI (see include/numalloc.h): they may
 * change or vanish without notice.
 */
#ifndef NA_BENCH_H
#define NA_BENCH_H

#ifdef __cplusplus
extern "C" {
#endif

/* Does nothing: the cost of a bare call into the library. */
void na_bench_noop(void);

/* Increments a [ThreadStatic] counter of the calling thread and returns it (1 on the first call). */
int na_bench_tls(void);

#ifdef __cplusplus
}
#endif

#endif /* NA_BENCH_H */
