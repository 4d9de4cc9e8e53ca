/*
 * numalloc.h - C ABI of numalloc, a NUMA-aware memory allocator.
 *
 * Link with libnumalloc.so (-lnumalloc; beside the program: -Wl,-rpath,'$ORIGIN') or with
 * libnumalloc.a and the NativeAOT runtime archives (eng/native.sh writes the exact line to
 * artifacts/native/static/LINK.txt). Neither needs anything at run time beyond the system's
 * C runtime libraries. Every function may be called from any thread; none lets an exception
 * or a signal escape; a failing call sets errno as POSIX says.
 *
 * Configuration is read once, at the first call, from NUMALLOC_CONFIG (e.g.
 * "topology=sim:2;normal=64M;movable=64M;on_bad_free=report"). A bad value is reported in one
 * line on stderr and every later call fails (allocations with NULL and errno ENOMEM).
 *
 * Memory from na_malloc and friends is owned by the caller until passed to na_free (from any
 * thread). It is not the process's malloc: never pass it to free(), nor malloc's to na_free.
 * Bad frees (not numalloc's, interior, double) are reported in one line on stderr naming the
 * address and what was wrong, and change nothing; NUMALLOC_CONFIG=...;on_bad_free=abort aborts.
 */
#ifndef NUMALLOC_H
#define NUMALLOC_H

#include <stddef.h>

#if defined(__cplusplus) && __cplusplus >= 201103L
#include <cstdint>
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* --- the malloc family ------------------------------------------------------------------- */

/* At least size bytes, aligned for any standard type (16 bytes for sizes that are multiples of 16).
 * size 0 gives a unique pointer to free like any other. NULL with errno ENOMEM on failure
 * (also for size > PTRDIFF_MAX). */
void *na_malloc(size_t size);

/* Frees p (from any thread). NULL does nothing. A bad pointer is reported on stderr and ignored
 * (errno EINVAL), or aborts the process with on_bad_free=abort. */
void na_free(void *p);

/* As na_free; size (what was asked for) is a hint numalloc does not need. */
void na_free_sized(void *p, size_t size);

/* n * size bytes, zeroed. NULL with errno ENOMEM when n * size overflows or on failure. */
void *na_calloc(size_t n, size_t size);

/* Resizes p to size bytes keeping its contents (up to the smaller size); the result replaces p.
 * p NULL: as na_malloc(size). size 0: p is released and a minimum allocation returned (like
 * na_malloc(0); unlike glibc, which returns NULL), so NULL always means failure. On failure NULL
 * with errno ENOMEM and p untouched; a p that is not a live allocation: reported on stderr,
 * NULL with errno EINVAL. */
void *na_realloc(void *p, size_t size);

/* size bytes aligned to alignment, any power of two >= sizeof(void *) (size need not be a
 * multiple). NULL with errno EINVAL for another alignment, ENOMEM when it cannot be served. */
void *na_aligned_alloc(size_t alignment, size_t size);

/* As na_aligned_alloc, the memory stored in *out. Returns 0, EINVAL (bad alignment, out NULL)
 * or ENOMEM; errno is not changed and *out is untouched on error. */
int na_posix_memalign(void **out, size_t alignment, size_t size);

/* Bytes usable at p (>= the size asked for). 0 for NULL; 0 with errno EINVAL for a pointer
 * that is not the start of a live numalloc allocation. */
size_t na_malloc_usable_size(const void *p);

/* At least size bytes of node's memory only (strict, whatever the thread's node): NULL with
 * errno ENOMEM when that node cannot serve, EINVAL when node is not 0..na_node_count()-1. */
void *na_malloc_onnode(size_t size, int node);

/* The node of the memory p points into; -1 when it is not numalloc's (or NULL). */
int na_node_of(const void *p);

/* Number of NUMA nodes the allocator serves (at least 1). -1 with errno ENOMEM when
 * initialization failed (a bad NUMALLOC_CONFIG, reported once on stderr): every call fails so. */
int na_node_count(void);

/* Up to n allocations of size bytes into out[0..n), in one call (one crossing into the library).
 * Returns how many were stored (n unless it failed: errno ENOMEM, or EINVAL for out NULL);
 * each is freed like a na_malloc result. */
size_t na_malloc_bulk(size_t size, void **out, size_t n);

/* Frees ptrs[0..n) as na_free does, in one call; NULL entries are skipped. */
void na_free_bulk(void **ptrs, size_t n);

/* Gives free memory back to the OS now (and this thread's cached objects to the heap). */
void na_trim(void);

/* Flushes the calling thread's caches back to the heap; call it before a thread exits (an exited
 * thread's caches are otherwise reclaimed later, when another thread trims or registers). */
void na_thread_flush(void);

/* --- movable buffers: handles whose memory numalloc may move (hot-remove) while unpinned ---- */

/* A movable-buffer handle; 0 is never a valid handle. */
#if (defined(__cplusplus) && __cplusplus >= 201103L) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
typedef uint64_t na_handle_t;
#elif defined(__LP64__) || defined(_LP64)
typedef unsigned long na_handle_t;  /* C89 on LP64 (Linux x86-64): the type uint64_t names there */
#else
__extension__ typedef unsigned long long na_handle_t; /* C89 elsewhere (GCC, Clang) */
#endif

/* A buffer of size bytes (0: the minimum; at most 4 MiB), on node first (-1: the calling thread's
 * node); Movable zones first, Normal ones as a fallback. 0 with errno EINVAL for a bad node,
 * ENOMEM when too large or nothing could serve it. Free it with na_movable_free. */
na_handle_t na_movable_alloc(size_t size, int node);

/* Pins h and returns its memory's address, valid until the matching na_unpin (pins nest). Waits
 * briefly while a migration of it runs. NULL with errno EINVAL for a freed or unknown handle. */
void *na_pin(na_handle_t h);

/* Releases one pin of h; the address from na_pin may then change. An unknown or unpinned handle
 * is reported on stderr (errno EINVAL) and changes nothing. */
void na_unpin(na_handle_t h);

/* Frees h; 0 does nothing. A pinned, freed or unknown handle is reported on stderr (errno EINVAL)
 * and changes nothing. */
void na_movable_free(na_handle_t h);

/* --- hot-remove / hot-add (the admin API) -------------------------------------------------- */

enum { NA_ZONE_NORMAL = 0, NA_ZONE_MOVABLE = 1 };

/* The offline and online calls return 0 or a negative errno (also stored in errno):
 *   -EBUSY      unmovable memory still in use (rolled back)
 *   -EAGAIN     another hotplug operation is running (nothing done)
 *   -ECANCELED  a listener vetoed the offline
 *   -ETIMEDOUT  pinned movable buffers were not unpinned within timeout_ms (rolled back)
 *   -EINVAL     unknown target, wrong state, or the last online Normal memory
 * An offline migrates movable buffers out of the memory it removes. */

/* Takes every online block of node's zone (NA_ZONE_NORMAL / NA_ZONE_MOVABLE) offline. */
int na_offline_zone(int node, int zone, unsigned timeout_ms);

/* Brings node's zone back: the blocks it last held go online into it. */
int na_online_zone(int node, int zone);

/* Takes every online block of node offline. */
int na_offline_node(int node, unsigned timeout_ms);

/* Brings node's offline blocks back online. */
int na_online_node(int node);

/* Number of memory blocks (ids 0..count-1, listed in na_stats_json); -1, errno ENOMEM, when
 * initialization failed. */
int na_block_count(void);

/* Takes one block offline. */
int na_offline_block(int block, unsigned timeout_ms);

/* Brings one block online into zone. */
int na_online_block(int block, int zone);

/* The statistics (zones, nodes, every block, size classes, hotplug history) as one JSON object.
 * Returns its length in bytes without the NUL, as snprintf does: the whole text and a NUL are
 * in buf when the result is < len, else at most len - 1 bytes and a NUL (nothing for len 0;
 * buf may then be NULL). -1 with errno ENOMEM on failure. */
long na_stats_json(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* NUMALLOC_H */
