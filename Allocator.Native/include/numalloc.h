/*
 * numalloc.h - C ABI of numalloc, a NUMA-aware memory allocator.
 *
 * Link with libnumalloc.so (-lnumalloc; beside the program: -Wl,-rpath,'$ORIGIN') or with
 * libnumalloc.a and the NativeAOT runtime archives (eng/native.sh writes the exact line to
 * artifacts/native/static/LINK.txt). Every function may be called from any thread; none
 * lets an exception or a signal escape.
 *
 * Only the first function of the ABI is declared so far; the rest of the C ABI in
 * DESIGN.md ("C ABI") is added here as it lands.
 */
#ifndef NUMALLOC_H
#define NUMALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of NUMA nodes the allocator serves (at least 1); -1: initialization failed. */
int na_node_count(void);

#ifdef __cplusplus
}
#endif

#endif /* NUMALLOC_H */
