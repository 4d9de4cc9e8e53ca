/*
 * dlopen_slot.c - libnumalloc.so opened with dlopen() by a program that is not linked against it.
 *
 * The shared library keeps each thread's magazine-set pointer in an initial-exec TLS slot
 * (native/thread_slot.c), so it carries DF_STATIC_TLS: glibc must place the slot in its static
 * TLS surplus at dlopen time. This program checks that the open succeeds and that the slot is
 * per thread: an object freed on one thread stays in that thread's magazine (the next allocation
 * of its size there returns it), and another thread does not see it. Then threads allocate, fill,
 * check and free in rounds, each flushing at the end, with every object's contents checked.
 * Usage: NA_LIBRARY=PATH-TO-libnumalloc.so dlopen_slot (an environment variable, so that
 * tests/run.sh runs it like every other test program). Prints "ok N - ..." lines and "c-tests: P passed,
 * F failed"; exits 1 on failure.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void (*flush_fn)(void);

static malloc_fn s_malloc;
static free_fn s_free;
static flush_fn s_flush;

enum { SLOT_SIZE = 64, WORKERS = 4, ROUNDS = 200, OBJECTS = 64 };

/* What another thread got when it allocated the size the main thread had just freed. */
struct other_thread {
    void *main_freed;
    void *got;
    int own_reuse;
};

static void *other_thread_main(void *arg)
{
    struct other_thread *t = arg;
    void *mine;
    t->got = s_malloc(SLOT_SIZE);
    /* Its own free and allocation go through its own magazine: LIFO. */
    mine = s_malloc(SLOT_SIZE);
    s_free(mine);
    t->own_reuse = s_malloc(SLOT_SIZE) == mine;
    s_free(mine);
    s_free(t->got);
    s_flush();
    return NULL;
}

struct worker {
    unsigned seed;
    long corrupted;
    long failed;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char *objects[OBJECTS];
    size_t sizes[OBJECTS];
    int round, i;
    for (round = 0; round < ROUNDS; round++) {
        for (i = 0; i < OBJECTS; i++) {
            w->seed = w->seed * 1103515245u + 12345u;
            sizes[i] = 1 + (w->seed >> 8) % 4096;
            objects[i] = s_malloc(sizes[i]);
            if (objects[i] == NULL) {
                w->failed++;
                continue;
            }
            memset(objects[i], (int)((uintptr_t)objects[i] >> 4) & 0xFF, sizes[i]);
        }
        for (i = 0; i < OBJECTS; i++) {
            size_t k;
            unsigned char tag = (unsigned char)(((uintptr_t)objects[i] >> 4) & 0xFF);
            if (objects[i] == NULL)
                continue;
            for (k = 0; k < sizes[i]; k++) {
                if (objects[i][k] != tag) {
                    w->corrupted++;
                    break;
                }
            }
            s_free(objects[i]);
        }
    }
    s_flush();
    return NULL;
}

int main(void)
{
    const char *path = getenv("NA_LIBRARY");
    void *library, *p;
    struct other_thread other = { NULL, NULL, 0 };
    struct worker workers[WORKERS];
    pthread_t threads[WORKERS], thread;
    int started[WORKERS];
    long corrupted = 0, failed = 0;
    int i;

    if (path == NULL) {
        fprintf(stderr, "dlopen_slot: set NA_LIBRARY to the path of libnumalloc.so\n");
        return 2;
    }
    library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    check(library != NULL, "dlopen(libnumalloc.so, RTLD_NOW) succeeds although the library uses static TLS");
    if (library == NULL) {
        printf("# dlerror: %s\n", dlerror());
        return tap_finish();
    }
    s_malloc = (malloc_fn)(uintptr_t)dlsym(library, "na_malloc");
    s_free = (free_fn)(uintptr_t)dlsym(library, "na_free");
    s_flush = (flush_fn)(uintptr_t)dlsym(library, "na_thread_flush");
    check(s_malloc != NULL && s_free != NULL && s_flush != NULL, "dlsym finds na_malloc, na_free and na_thread_flush");
    if (s_malloc == NULL || s_free == NULL || s_flush == NULL)
        return tap_finish();

    p = s_malloc(SLOT_SIZE);
    s_free(p);
    other.main_freed = p;
    check(pthread_create(&thread, NULL, other_thread_main, &other) == 0 && pthread_join(thread, NULL) == 0,
          "a second thread runs and joins");
    check(other.got != NULL && other.got != p,
          "an object the main thread freed is not handed to another thread (the slot is per thread)");
    check(other.own_reuse, "the second thread's own free is its next allocation of that size (its own magazine)");
    check(s_malloc(SLOT_SIZE) == p, "the main thread's next allocation of that size is the object it freed");
    s_free(p);

    for (i = 0; i < WORKERS; i++) {
        workers[i].seed = 7u + (unsigned)i;
        workers[i].corrupted = 0;
        workers[i].failed = 0;
        started[i] = pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0;
    }
    for (i = 0; i < WORKERS; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            failed++;
        corrupted += workers[i].corrupted;
        failed += workers[i].failed;
    }
    check(failed == 0, "4 threads x 200 rounds x 64 objects of 1..4096 B: every allocation and thread start succeeds");
    check(corrupted == 0, "every object's contents are intact at its free");
    s_flush();
    return tap_finish();
}
