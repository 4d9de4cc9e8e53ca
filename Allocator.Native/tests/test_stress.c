/*
 * test_stress.c - pthreads against numalloc. (1) 8 threads, created and joined in rounds, allocate
 * random sizes 1 B..1 MiB, fill them with a pattern derived from the object, and hand them through
 * a shared ring: whatever a thread takes out of the ring (mostly another thread's object) it checks
 * and frees, so frees cross threads; some operations go through na_malloc_bulk / na_free_bulk;
 * half the threads call na_thread_flush before they exit, half do not. (2) Thousands of
 * short-lived threads that exit with objects in their caches: after na_trim the heap's used pages
 * are back where they were (their caches were reclaimed), nothing leaked.
 * Bounded by iterations, not time. Prints "ok N - ..." lines and "c-tests: P passed, F failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numalloc.h"
#include "tap.h"

enum { THREADS = 8, ROUNDS = 4, OPS = 3000, RING = 256, BULK = 32 };

/* Every object starts with a tag byte. TAG_LARGE: a header (size, seed) at offset 8, then the
 * pattern; TAG_TINY (under 24 bytes): its size in byte 1 (inside the 8-byte minimum usable size),
 * then the pattern. So verify() never reads a byte the object's writer did not write. */
enum { TAG_LARGE = 0xAB, TAG_TINY = 0xEE, HEADER_END = 24 };

typedef struct {
    size_t size;
    uint32_t seed;
} header_t;

static void *volatile s_ring[RING];
static long s_errors;
static long s_ops;

static unsigned char pattern(uint32_t seed, size_t i)
{
    return (unsigned char)(((seed * 2654435761u) >> 24) ^ (uint32_t)(i * 31));
}

/* Bytes checked from `from`: all of a small object; a sample of every 4 KiB page and the tail of a large one. */
static int visit(unsigned char *p, size_t from, size_t size, uint32_t seed, int write)
{
    size_t i;
    int ok = 1;
    size_t dense = size <= 8192 ? size : 256;
    for (i = from; i < size; i = i + 1 < dense ? i + 1 : (i < dense ? dense : i + 4093)) {
        if (write) {
            p[i] = pattern(seed, i);
        } else {
            ok &= p[i] == pattern(seed, i);
        }
    }
    if (size > from) {
        if (write) {
            p[size - 1] = pattern(seed, size - 1);
        } else {
            ok &= p[size - 1] == pattern(seed, size - 1);
        }
    }
    return ok;
}

static size_t random_size(unsigned *r)
{
    unsigned x = (unsigned)rand_r(r);
    if (x % 100 < 90) {
        return 1 + x % 1024;
    }
    if (x % 100 < 99) {
        return 1 + x % 65536;
    }
    return 1 + x % (1u << 20);
}

static void fill(void *p, size_t size, uint32_t seed)
{
    unsigned char *b = p;
    header_t h;
    if (size < HEADER_END) {
        b[0] = TAG_TINY;
        b[1] = (unsigned char)size;
        visit(b, 2, size, (uint32_t)size, 1);
        return;
    }
    b[0] = TAG_LARGE;
    h.size = size;
    h.seed = seed;
    memcpy(b + 8, &h, sizeof h);
    visit(b, HEADER_END, size, seed, 1);
}

static int verify(void *p)
{
    unsigned char *b = p;
    header_t h;
    size_t usable = na_malloc_usable_size(p);
    if (usable < 8) {
        return 0;
    }
    if (b[0] == TAG_TINY) {
        return b[1] < HEADER_END && b[1] <= usable && visit(b, 2, b[1], b[1], 0);
    }
    if (b[0] != TAG_LARGE) {
        return 0;
    }
    memcpy(&h, b + 8, sizeof h);
    return h.size >= HEADER_END && h.size <= usable && visit(b, HEADER_END, h.size, h.seed, 0);
}

static void *worker(void *arg)
{
    unsigned r = (unsigned)(uintptr_t)arg * 7919u + 1;
    int flush = (int)((uintptr_t)arg & 1);
    long errors = 0;
    int op;
    for (op = 0; op < OPS; ++op) {
        if (op % 64 == 63) {
            void *batch[BULK];
            size_t size = 1 + (size_t)rand_r(&r) % 512, got, i;
            got = na_malloc_bulk(size, batch, BULK);
            if (got != BULK) {
                fprintf(stderr, "na_malloc_bulk(%zu, 32) gave %zu\n", size, got);
                ++errors;
            }
            for (i = 0; i < got; ++i) {
                fill(batch[i], size, (uint32_t)rand_r(&r));
            }
            for (i = 0; i < got; ++i) {
                if (!verify(batch[i])) {
                    fprintf(stderr, "bulk object %p of %zu bytes: contents changed\n", batch[i], size);
                    ++errors;
                }
            }
            na_free_bulk(batch, got);
        } else {
            size_t size = random_size(&r);
            void *p = na_malloc(size);
            void *old;
            if (p == NULL) {
                fprintf(stderr, "na_malloc(%zu) failed\n", size);
                ++errors;
                continue;
            }
            fill(p, size, (uint32_t)rand_r(&r));
            old = __atomic_exchange_n(&s_ring[(unsigned)rand_r(&r) % RING], p, __ATOMIC_ACQ_REL);
            if (old != NULL) {
                if (!verify(old)) {
                    fprintf(stderr, "ring object %p (usable %zu, tag 0x%x): contents changed\n", old, na_malloc_usable_size(old),
                            *(unsigned char *)old);
                    ++errors;
                }
                na_free(old);
            }
        }
    }
    __atomic_add_fetch(&s_errors, errors, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s_ops, OPS, __ATOMIC_RELAXED);
    if (flush) {
        na_thread_flush();
    }
    return NULL;
}

static void check_ring_stress(void)
{
    pthread_t threads[THREADS];
    int round, i, created = 1;
    long left_errors = 0;
    char what[200];
    for (round = 0; round < ROUNDS; ++round) {
        for (i = 0; i < THREADS; ++i) {
            created &= pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(round * THREADS + i)) == 0;
        }
        for (i = 0; i < THREADS; ++i) {
            pthread_join(threads[i], NULL);
        }
    }
    for (i = 0; i < RING; ++i) {
        if (s_ring[i] != NULL) {
            left_errors += !verify(s_ring[i]);
            na_free(s_ring[i]);
            s_ring[i] = NULL;
        }
    }
    check(created, "8 threads x 4 rounds created and joined");
    snprintf(what, sizeof what, "%ld operations, cross-thread frees through a %d-slot ring: %ld content or allocation errors",
             s_ops, RING, s_errors + left_errors);
    check(s_errors + left_errors == 0 && s_ops == (long)THREADS * ROUNDS * OPS, what);
}

/* ---- short-lived threads ----------------------------------------------------------------- */

/* Pages in use (managed - free) over every zone of the stats document; -1 on failure. */
static long used_pages(void)
{
    static char buf[1 << 20];
    long n = na_stats_json(buf, sizeof buf), used = 0;
    const char *p = buf;
    if (n < 0 || n >= (long)sizeof buf) {
        return -1;
    }
    while ((p = strstr(p, "\"free_pages\":")) != NULL) {
        long free_pages = atol(p + 13);
        const char *m = strstr(p, "\"managed_pages\":");
        if (m == NULL) {
            return -1;
        }
        used += atol(m + 16) - free_pages;
        p = m;
    }
    return used;
}

static void *short_lived(void *arg)
{
    static const size_t sizes[] = { 16, 64, 256, 1024, 4096 };
    void *objects[5][40];
    size_t s;
    int i;
    for (s = 0; s < 5; ++s) {
        for (i = 0; i < 40; ++i) {
            objects[s][i] = na_malloc(sizes[s]);
        }
    }
    /* With arg: the thread flushes (its set is freed) and then frees, so its frees must find the
     * set the next call makes, not the freed one (the shared library's thread slot is a copy). */
    if (arg != NULL) {
        na_thread_flush();
    }
    /* Freed by this thread: they sit in its magazines when it exits (no na_thread_flush after). */
    for (s = 0; s < 5; ++s) {
        for (i = 0; i < 40; ++i) {
            na_free(objects[s][i]);
        }
    }
    return NULL;
}

/* Control: a thread that keeps its cached objects alive until released, so the metric can fail. */
static pthread_mutex_t s_hold = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_held = PTHREAD_COND_INITIALIZER;
static int s_state; /* 0 running, 1 cached and waiting, 2 released */

static void *holder(void *arg)
{
    short_lived(arg);
    pthread_mutex_lock(&s_hold);
    s_state = 1;
    pthread_cond_broadcast(&s_held);
    while (s_state != 2) {
        pthread_cond_wait(&s_held, &s_hold);
    }
    pthread_mutex_unlock(&s_hold);
    return NULL;
}

static void check_short_lived_threads(void)
{
    enum { TOTAL = 2000, BATCH = 8 };
    pthread_t threads[BATCH];
    long before, after;
    int done, i, created = 1;
    char what[200];
    /* A first batch warms the slabs up, so "before" already holds what a working heap keeps. */
    for (i = 0; i < BATCH; ++i) {
        created &= pthread_create(&threads[i], NULL, short_lived, NULL) == 0;
    }
    for (i = 0; i < BATCH; ++i) {
        pthread_join(threads[i], NULL);
    }
    na_trim();
    before = used_pages();
    for (done = 0; done < TOTAL; done += BATCH) {
        for (i = 0; i < BATCH; ++i) {
            created &= pthread_create(&threads[i], NULL, short_lived, NULL) == 0;
        }
        for (i = 0; i < BATCH; ++i) {
            pthread_join(threads[i], NULL);
        }
    }
    na_trim();
    after = used_pages();
    {
        /* The metric sees cached objects: a live thread's caches are not reclaimed by na_trim. */
        pthread_t t;
        long held;
        pthread_create(&t, NULL, holder, NULL);
        pthread_mutex_lock(&s_hold);
        while (s_state != 1) {
            pthread_cond_wait(&s_held, &s_hold);
        }
        pthread_mutex_unlock(&s_hold);
        na_trim();
        held = used_pages();
        pthread_mutex_lock(&s_hold);
        s_state = 2;
        pthread_cond_broadcast(&s_held);
        pthread_mutex_unlock(&s_hold);
        pthread_join(t, NULL);
        na_trim();
        snprintf(what, sizeof what, "control: a live thread's cached objects show as %ld pages in use; after it exits and na_trim, %ld",
                 held, used_pages());
        check(held > after && used_pages() <= before + 8, what);
    }
    {
        /* Threads that flush between their allocations and their frees. */
        static int flush_first = 1;
        before = used_pages();
        for (done = 0; done < 400; done += BATCH) {
            for (i = 0; i < BATCH; ++i) {
                created &= pthread_create(&threads[i], NULL, short_lived, &flush_first) == 0;
            }
            for (i = 0; i < BATCH; ++i) {
                pthread_join(threads[i], NULL);
            }
        }
        na_trim();
        snprintf(what, sizeof what,
                 "after 400 threads flushed, then freed their objects and exited, and na_trim: %ld pages in use, %ld before",
                 used_pages(), before);
        check(before >= 0 && used_pages() >= 0 && used_pages() <= before + 8, what);
    }
    check(created, "2400 short-lived threads created and joined, 8 at a time");
    snprintf(what, sizeof what,
             "after 2000 threads exited with objects in their caches and na_trim: %ld pages in use, %ld before (nothing leaked)",
             after, before);
    /* 2000 threads' caches held about 2000 x 200 objects (hundreds of MiB): a leak is far above slack. */
    check(before >= 0 && after >= 0 && after <= before + 8, what);
}

int main(void)
{
    check_ring_stress();
    check_short_lived_threads();
    return tap_finish();
}
