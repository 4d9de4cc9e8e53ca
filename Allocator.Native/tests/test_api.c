/*
 * test_api.c - the malloc family of numalloc.h against the C standard and POSIX, one check per
 * rule: malloc(0), free(NULL), calloc zeroing and overflow, realloc(NULL, n) and (p, 0), aligned
 * allocation (every power of two from sizeof(void *), EINVAL with *out untouched, ENOMEM for
 * impossible sizes), PTRDIFF_MAX, usable size, node calls, bulk calls, trim and thread flush, and
 * errno as each call documents it.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numalloc.h"
#include "tap.h"

static int all_bytes(const void *p, int value, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; ++i) {
        if (b[i] != (unsigned char)value) {
            return 0;
        }
    }
    return 1;
}

static void check_malloc_free(void)
{
    void *a, *b, *p;
    char what[160];
    size_t sizes[] = { 1, 8, 24, 64, 100, 4096, 32768, 40000, 1 << 20, (size_t)8 << 20 };
    size_t i;
    int ok = 1;

    a = na_malloc(0);
    b = na_malloc(0);
    check(a != NULL && b != NULL && a != b, "na_malloc(0) returns unique non-NULL pointers");
    na_free(a);
    na_free(b);

    errno = EDOM;
    na_free(NULL);
    check(errno == EDOM, "na_free(NULL) is a no-op (errno untouched)");

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        p = na_malloc(sizes[i]);
        if (p == NULL || na_malloc_usable_size(p) < sizes[i] || ((uintptr_t)p & 7) != 0) {
            ok = 0;
            break;
        }
        memset(p, 0xA5, sizes[i]);
        ok &= all_bytes(p, 0xA5, sizes[i]);
        na_free(p);
    }
    snprintf(what, sizeof what, "na_malloc 1 B..8 MiB: 8-aligned, usable size >= asked, writable (stopped at %zu)", i);
    check(ok && i == sizeof sizes / sizeof sizes[0], what);

    p = na_malloc(48);
    check(p != NULL && ((uintptr_t)p & 15) == 0, "na_malloc(48) is 16-byte aligned");
    na_free_sized(p, 48);

    errno = 0;
    p = na_malloc((size_t)PTRDIFF_MAX + 1);
    check(p == NULL && errno == ENOMEM, "na_malloc(PTRDIFF_MAX + 1): NULL, errno ENOMEM");
    errno = 0;
    p = na_malloc(SIZE_MAX);
    check(p == NULL && errno == ENOMEM, "na_malloc(SIZE_MAX): NULL, errno ENOMEM");
    check(na_malloc_usable_size(NULL) == 0, "na_malloc_usable_size(NULL) is 0");
    errno = 0;
    check(na_malloc_usable_size(&ok) == 0 && errno == EINVAL, "na_malloc_usable_size of a pointer not ours: 0, errno EINVAL");
}

static void check_calloc(void)
{
    unsigned char *p;
    int i, zeroed = 1;
    /* Dirty some objects of the class first, so a recycled one would show old bytes. */
    for (i = 0; i < 64; ++i) {
        void *d = na_malloc(200);
        memset(d, 0xFF, 200);
        na_free(d);
    }
    for (i = 0; i < 64; ++i) {
        p = na_calloc(10, 20);
        zeroed &= p != NULL && all_bytes(p, 0, 200);
        memset(p, 0xFF, 200);
        na_free(p);
    }
    check(zeroed, "na_calloc(10, 20) is zeroed, also when it recycles a dirtied object");
    p = na_calloc(1, 100000);
    check(p != NULL && all_bytes(p, 0, 100000), "na_calloc(1, 100000) (page run) is zeroed");
    na_free(p);
    p = na_calloc(0, 0);
    check(p != NULL, "na_calloc(0, 0) returns a unique freeable pointer");
    na_free(p);
    errno = 0;
    p = na_calloc(SIZE_MAX / 2, 3);
    check(p == NULL && errno == ENOMEM, "na_calloc(SIZE_MAX / 2, 3) overflows: NULL, errno ENOMEM");
    errno = 0;
    p = na_calloc((size_t)1 << 32, (size_t)1 << 32);
    check(p == NULL && errno == ENOMEM, "na_calloc(2^32, 2^32) overflows to 0: NULL, errno ENOMEM");
}

static void check_realloc(void)
{
    unsigned char *p, *q;
    size_t i;
    int kept = 1;

    p = na_realloc(NULL, 100);
    check(p != NULL && na_malloc_usable_size(p) >= 100, "na_realloc(NULL, 100) allocates like na_malloc");
    for (i = 0; i < 100; ++i) {
        p[i] = (unsigned char)i;
    }
    q = na_realloc(p, 100000);
    for (i = 0; i < 100 && q != NULL; ++i) {
        kept &= q[i] == (unsigned char)i;
    }
    check(q != NULL && kept, "na_realloc grows 100 B -> 100000 B keeping the contents");
    p = na_realloc(q, 10);
    for (i = 0, kept = p != NULL; i < 10 && p != NULL; ++i) {
        kept &= p[i] == (unsigned char)i;
    }
    check(kept, "na_realloc shrinks 100000 B -> 10 B keeping the first 10 bytes");
    errno = 0;
    q = na_realloc(p, (size_t)PTRDIFF_MAX + 1);
    check(q == NULL && errno == ENOMEM && p[9] == 9 && na_malloc_usable_size(p) >= 10,
          "na_realloc(p, PTRDIFF_MAX + 1): NULL, errno ENOMEM, p still valid");
    q = na_realloc(p, 0);
    check(q != NULL && na_node_of(q) >= 0, "na_realloc(p, 0) returns a minimum allocation (the documented choice), not NULL");
    na_free(q);
}

static void check_aligned(void)
{
    size_t alignment;
    int ok = 1;
    void *p;
    void *out;
    int rc;
    char what[160];

    for (alignment = sizeof(void *); alignment <= ((size_t)1 << 24); alignment <<= 1) {
        p = na_aligned_alloc(alignment, 24);
        rc = na_posix_memalign(&out, alignment, 3000);
        if (p == NULL || ((uintptr_t)p & (alignment - 1)) != 0 || rc != 0 || ((uintptr_t)out & (alignment - 1)) != 0) {
            ok = 0;
            break;
        }
        memset(p, 1, 24);
        memset(out, 2, 3000);
        na_free(p);
        na_free(out);
    }
    snprintf(what, sizeof what, "aligned_alloc and posix_memalign honour every power of two 8..16 MiB (stopped at %zu)", alignment);
    check(ok, what);

    errno = 0;
    p = na_aligned_alloc(24, 64);
    check(p == NULL && errno == EINVAL, "na_aligned_alloc(24, 64): not a power of two: NULL, errno EINVAL");
    errno = 0;
    p = na_aligned_alloc(4, 64);
    check(p == NULL && errno == EINVAL, "na_aligned_alloc(4, 64): below sizeof(void *): NULL, errno EINVAL");
    errno = 0;
    p = na_aligned_alloc(0, 64);
    check(p == NULL && errno == EINVAL, "na_aligned_alloc(0, 64): NULL, errno EINVAL");
    errno = 0;
    p = na_aligned_alloc(64, (size_t)PTRDIFF_MAX + 1);
    check(p == NULL && errno == ENOMEM, "na_aligned_alloc(64, PTRDIFF_MAX + 1): NULL, errno ENOMEM");
    errno = 0;
    p = na_aligned_alloc((size_t)1 << 62, 64);
    check(p == NULL && errno == ENOMEM, "na_aligned_alloc(2^62, 64): impossible: NULL, errno ENOMEM");

    out = &ok;
    errno = EDOM;
    rc = na_posix_memalign(&out, 12, 64);
    check(rc == EINVAL && out == (void *)&ok, "na_posix_memalign(12): EINVAL, *out untouched");
    rc = na_posix_memalign(&out, 2, 64);
    check(rc == EINVAL && out == (void *)&ok, "na_posix_memalign(2): below sizeof(void *): EINVAL, *out untouched");
    rc = na_posix_memalign(&out, 64, (size_t)PTRDIFF_MAX + 1);
    check(rc == ENOMEM && out == (void *)&ok, "na_posix_memalign(64, PTRDIFF_MAX + 1): ENOMEM, *out untouched");
    rc = na_posix_memalign(&out, (size_t)1 << 62, 1);
    check(rc == ENOMEM && out == (void *)&ok, "na_posix_memalign(2^62, 1): ENOMEM, *out untouched");
    check(errno == EDOM, "na_posix_memalign returns its errors and leaves errno alone");
    rc = na_posix_memalign(&out, 64, 0);
    check(rc == 0 && out != (void *)&ok && out != NULL, "na_posix_memalign(64, 0): 0 and a unique pointer");
    na_free(out);
}

static void check_nodes(void)
{
    int nodes = na_node_count();
    int node, ok = 1;
    void *p;
    check(nodes >= 1, "na_node_count() >= 1");
    for (node = 0; node < nodes; ++node) {
        p = na_malloc_onnode(1000, node);
        ok &= p != NULL && na_node_of(p) == node;
        na_free(p);
        p = na_malloc_onnode(200000, node);
        ok &= p != NULL && na_node_of(p) == node;
        na_free(p);
    }
    check(ok, "na_malloc_onnode(size, node) gives node's memory (na_node_of agrees), small and large");
    errno = 0;
    check(na_malloc_onnode(64, nodes) == NULL && errno == EINVAL, "na_malloc_onnode on a node that does not exist: NULL, errno EINVAL");
    errno = 0;
    check(na_malloc_onnode(64, -1) == NULL && errno == EINVAL, "na_malloc_onnode(64, -1): NULL, errno EINVAL");
    check(na_node_of(NULL) == -1, "na_node_of(NULL) is -1");
    check(na_node_of(&ok) == -1, "na_node_of of a stack address is -1");
    p = malloc(64);
    check(na_node_of(p) == -1, "na_node_of of a glibc malloc pointer is -1");
    free(p);
}

/* Bytes of small objects in use (na_stats_json's memory.object_bytes_in_use), -1 when missing. Exact
 * here: one thread, called outside the allocator, so its magazines count as cached, not in use. */
static long object_bytes_in_use(void)
{
    static const char key[] = "\"object_bytes_in_use\":";
    /* Room to spare: the text can grow between the two calls (a clock, counters). */
    long n = na_stats_json(NULL, 0) + 4096, bytes = -1;
    char *json = n > 4096 ? malloc((size_t)n) : NULL;
    if (json != NULL && na_stats_json(json, (size_t)n) < n) {
        const char *at = strstr(json, key);
        bytes = at != NULL ? strtol(at + sizeof key - 1, NULL, 10) : -1;
    }
    free(json);
    return bytes;
}

static void check_bulk(void)
{
    void *ptrs[100], *kept;
    size_t got, i;
    int distinct = 1, ok = 1;
    char what[200];
    long after, before = object_bytes_in_use();
    got = na_malloc_bulk(64, ptrs, 100);
    for (i = 0; i < got; ++i) {
        ok &= ptrs[i] != NULL && na_malloc_usable_size(ptrs[i]) >= 64;
        memset(ptrs[i], (int)i, 64);
        if (i > 0) {
            distinct &= ptrs[i] != ptrs[i - 1];
        }
    }
    for (i = 0; i < got; ++i) {
        ok &= all_bytes(ptrs[i], (int)i, 64);
    }
    check(got == 100 && ok && distinct, "na_malloc_bulk(64, out, 100) fills 100 distinct usable objects");
    after = object_bytes_in_use();
    snprintf(what, sizeof what, "after na_malloc_bulk the stats count 100 more 64 B objects in use (%ld -> %ld bytes)", before, after);
    check(before >= 0 && after - before == 100 * 64, what);
    kept = ptrs[50];
    ptrs[50] = NULL;
    na_free_bulk(ptrs, got);
    after = object_bytes_in_use();
    snprintf(what, sizeof what, "na_free_bulk frees them all, a NULL entry skipped: the one it replaced stays in use (%ld -> %ld bytes)", before, after);
    check(after - before == 64, what);
    na_free(kept);
    after = object_bytes_in_use();
    snprintf(what, sizeof what, "and after freeing that one, in use is back where it was (%ld -> %ld bytes)", before, after);
    check(after == before, what);
    got = na_malloc_bulk(100000, ptrs, 4);
    check(got == 4, "na_malloc_bulk of page-run sizes fills 4");
    na_free_bulk(ptrs, got);
    check(na_malloc_bulk(64, ptrs, 0) == 0, "na_malloc_bulk(n = 0) returns 0");
    errno = 0;
    check(na_malloc_bulk(64, NULL, 4) == 0 && errno == EINVAL, "na_malloc_bulk(out = NULL) returns 0, errno EINVAL");
    errno = 0;
    check(na_malloc_bulk((size_t)PTRDIFF_MAX + 1, ptrs, 4) == 0 && errno == ENOMEM,
          "na_malloc_bulk(PTRDIFF_MAX + 1) returns 0, errno ENOMEM");
    before = object_bytes_in_use();
    na_free_bulk(NULL, 5);
    after = object_bytes_in_use();
    snprintf(what, sizeof what, "na_free_bulk(NULL, 5) is a no-op (%ld -> %ld bytes in use)", before, after);
    check(after == before, what);
}

static void check_trim_flush(void)
{
    void *p = na_malloc(64);
    na_free(p);
    na_thread_flush();
    na_trim();
    p = na_malloc(64);
    check(p != NULL, "na_thread_flush and na_trim leave the allocator working");
    na_free(p);
}

int main(void)
{
    /* No background purger: its idle-cache drains move objects while na_stats_json counts them, and
     * check_bulk reads exact in-use figures. Read at the first call, so set before any. */
    if (setenv("NUMALLOC_CONFIG", "decay_ms=-1", 1) != 0) {
        perror("setenv");
        return 1;
    }
    check_malloc_free();
    check_calloc();
    check_realloc();
    check_aligned();
    check_nodes();
    check_bulk();
    check_trim_flush();
    return tap_finish();
}
