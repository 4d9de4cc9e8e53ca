/*
 * numalloc.h - C ABI of numalloc, a NUMA-aware memory allocator.
 *
 * Link with libnumalloc.so (-lnumalloc; beside the program: -Wl,-rpath,'$ORIGIN') or with
 * libnumalloc.a and the NativeAOT runtime archives (eng/native.sh writes the exact line to
 * artifacts/native/static/LINK.txt). Neither needs anything at run time beyond the system's
 * C runtime libraries. Every function may be called from any thread; none lets an exception
 * or a signal escape; a failing call sets errno as POSIX says.
 *
 * Only the first function of the ABI is declared so far; the rest of the C ABI in
 * DESIGN.md ("C ABI") is added here as it lands.
 */
#ifndef NUMALLOC_H
#define NUMALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of NUMA nodes the allocator serves (at least 1). -1 with errno ENOMEM when
 * initialization failed (a bad NUMALLOC_CONFIG, reported once on stderr): every call fails so. */
int na_node_count(void);

#ifdef __cplusplus
}
#endif

#endif /* NUMALLOC_H */
