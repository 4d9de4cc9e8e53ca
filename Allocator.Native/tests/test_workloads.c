/*
 * test_workloads.c - keeps the peer benchmark harness (bench/workloads.c) from rotting: every
 * workload runs once with tiny parameters on one and two threads against the process's malloc
 * (glibc; ASan's in the ASan variant) and must finish with the exact operation count and no
 * integrity error; an allocator that corrupts live objects must be caught; the dlopen path
 * that plugs numalloc in must resolve a malloc/free pair, and must say why libnumalloc.so
 * cannot serve yet (or, once it exports na_malloc, run every workload on it).
 * The harness is compiled into this test (tests/run.sh builds one source file per test).
 */
#include "../bench/workloads.c"

#include <dlfcn.h>

#include "numalloc.h"
#include "tap.h"

/* Small enough for ASan on a busy machine; xmalloc's count exceeds its ring (1024) to wrap it. */
static long tiny_iterations(const wl_workload *w, int threads)
{
    if (strcmp(w->name, "larson") == 0) {
        return 800; /* 100 per round */
    }
    if (strcmp(w->name, "xmalloc") == 0) {
        return 3000;
    }
    if (strcmp(w->name, "cache-scratch") == 0) {
        return 1000;
    }
    if (strcmp(w->name, "noalloc") == 0) {
        return 10000;
    }
    return threads == 1 ? 20000 : 5000; /* mixed: one thread reaches its 8192 slots and turns */
}

/* Allocator calls each workload makes in its timed part (see workloads.c). */
static long long expected_ops(const wl_workload *w, const wl_params *p)
{
    long long n = p->iterations, t = p->threads;
    if (strcmp(w->name, "larson") == 0) {
        return 2 * t * (n / 8) * 8;
    }
    if (strcmp(w->name, "xmalloc") == 0) {
        return 2 * n * (t == 1 ? 1 : t - t / 2);
    }
    if (strcmp(w->name, "cache-scratch") == 0) {
        return t * (2 * n + 1);
    }
    return t * n; /* mixed, noalloc */
}

/* Runs every workload on alloc with tiny parameters, one and two threads. */
static void check_all_workloads(const wl_allocator *alloc)
{
    int i, threads;
    char what[256];
    for (i = 0; i < wl_workload_count; ++i) {
        const wl_workload *w = &wl_workloads[i];
        for (threads = 1; threads <= 2; ++threads) {
            wl_params p = { threads, tiny_iterations(w, threads), 42 };
            wl_result r;
            int rc = w->run(alloc, &p, &r);
            snprintf(what, sizeof what, "%s on %s, %d thread(s): runs, %lld ops (expected %lld), %lld integrity errors",
                     w->name, alloc->name, threads, rc == 0 ? r.ops : -1, expected_ops(w, &p), rc == 0 ? r.errors : -1);
            check(rc == 0 && r.ops == expected_ops(w, &p) && r.errors == 0 && r.seconds > 0, what);
        }
    }
}

/*
 * A broken allocator: glibc's malloc, but every 32nd malloc flips the first byte of a live
 * object among the last 16 it handed out. The workloads must report integrity errors.
 */
enum { BROKEN_RECENT = 16 };
static pthread_mutex_t s_broken_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *s_broken_recent[BROKEN_RECENT];
static unsigned long s_broken_calls;

static void *broken_malloc(size_t size)
{
    unsigned char *p = malloc(size);
    int i;
    pthread_mutex_lock(&s_broken_lock);
    if (++s_broken_calls % 32 == 0) {
        for (i = 0; i < BROKEN_RECENT; ++i) {
            if (s_broken_recent[i] != NULL) {
                s_broken_recent[i][0] ^= 0xFF;
                s_broken_recent[i] = NULL; /* corrupt it once */
                break;
            }
        }
    }
    if (p != NULL) {
        s_broken_recent[s_broken_calls % BROKEN_RECENT] = p;
    }
    pthread_mutex_unlock(&s_broken_lock);
    return p;
}

static void broken_free(void *p)
{
    int i;
    pthread_mutex_lock(&s_broken_lock);
    for (i = 0; i < BROKEN_RECENT; ++i) {
        if (s_broken_recent[i] == p) {
            s_broken_recent[i] = NULL;
        }
    }
    pthread_mutex_unlock(&s_broken_lock);
    free(p);
}

static void check_corruption_is_caught(void)
{
    static const char *const names[] = { "larson", "xmalloc", "mixed" };
    wl_allocator broken = { "broken", broken_malloc, broken_free, NULL };
    char what[256];
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; ++i) {
        const wl_workload *w = wl_find(names[i]);
        wl_params p = { 1, 2000, 7 };
        wl_result r;
        int rc = w->run(&broken, &p, &r);
        snprintf(what, sizeof what, "%s: an allocator that corrupts live objects is caught (%lld integrity errors)",
                 names[i], rc == 0 ? r.errors : -1);
        check(rc == 0 && r.errors > 0, what);
    }
}

static void check_determinism(void)
{
    const wl_workload *mixed = wl_find("mixed");
    wl_allocator libc = wl_libc_allocator("glibc");
    wl_params p = { 1, 3000, 42 };
    wl_result a, b, c;
    mixed->run(&libc, &p, &a);
    mixed->run(&libc, &p, &b);
    p.seed = 43;
    mixed->run(&libc, &p, &c);
    check(a.peak_live_bytes > 0 && a.peak_live_bytes == b.peak_live_bytes,
          "mixed: the same seed gives the same trace (same peak live bytes)");
    check(c.peak_live_bytes != a.peak_live_bytes, "mixed: another seed gives another trace");
}

static void check_dl_loading(void)
{
    wl_allocator a;
    char why[512] = "";
    int rc = wl_load_allocator("libc.so.6", "", "libc-dl", &a, why, sizeof why);
    check(rc == 0 && a.malloc_fn != NULL && a.free_fn != NULL && a.realloc_fn != NULL,
          "wl_load_allocator resolves malloc/free/realloc from libc.so.6 with dlsym");
    if (rc == 0) {
        const wl_workload *mixed = wl_find("mixed");
        wl_params p = { 2, 3000, 42 };
        wl_result r;
        check(mixed->run(&a, &p, &r) == 0 && r.errors == 0, "mixed runs clean through the dlsym'd pair");
    }
    rc = wl_load_allocator("libc.so.6", "na_", "x", &a, why, sizeof why);
    check(rc == -1 && strcmp(why, "libc.so.6 lacks na_malloc") == 0,
          "wl_load_allocator says which symbol a library lacks (libc.so.6 lacks na_malloc)");
}

/*
 * numalloc through the same path as run-peers.sh: the library this test is linked against,
 * opened again by its own file name (the handle is the loaded one: one runtime only). Linked
 * statically there is no libnumalloc.so in the process, so that variant skips.
 */
static void check_numalloc(void)
{
    Dl_info info;
    wl_allocator a;
    char why[512] = "", what[640];
    const char *base;
    if (dladdr((void *)na_node_count, &info) == 0 || info.dli_fname == NULL
        || strstr(info.dli_fname, "libnumalloc.so") == NULL) {
        check(na_node_count() >= 1, "numalloc via dlopen: # SKIP linked statically (na_node_count() >= 1)");
        return;
    }
    if (wl_load_allocator(info.dli_fname, "na_", "numalloc", &a, why, sizeof why) == 0) {
        check_all_workloads(&a);
        return;
    }
    base = strrchr(info.dli_fname, '/') != NULL ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
    snprintf(what, sizeof what, "numalloc: not available (%s), as expected until the C ABI exports na_malloc", why);
    check(strcmp(base, "libnumalloc.so") == 0 && strcmp(why, "libnumalloc.so lacks na_malloc") == 0
              && dlsym(RTLD_DEFAULT, "na_malloc") == NULL,
          what);
}

int main(void)
{
    wl_allocator libc = wl_libc_allocator("glibc");
    long rss = wl_status_kib("VmRSS"), hwm = wl_status_kib("VmHWM");
    check(rss > 0 && hwm >= rss, "VmRSS and VmHWM read from /proc/self/status");
    check_all_workloads(&libc);
    check_corruption_is_caught();
    check_determinism();
    check_dl_loading();
    check_numalloc();
    return tap_finish();
}
