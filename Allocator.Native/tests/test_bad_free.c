/*
 * test_bad_free.c - bad pointers to na_free (not numalloc's, interior, double free) are reported
 * once on stderr, naming the address and what was wrong, and leave the heap consistent; with
 * NUMALLOC_CONFIG=on_bad_free=abort the process aborts (SIGABRT) instead. Each case runs in a
 * forked child before the runtime starts, with its stderr in a file.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "numalloc.h"
#include "tap.h"

static char s_err_path[] = "/tmp/numalloc-test-bad-free-XXXXXX";
static char s_addr_path[] = "/tmp/numalloc-test-bad-free-addr-XXXXXX";

/* The address the child reports as bad, written where the parent can read it. */
static void save_address(const void *p)
{
    FILE *f = fopen(s_addr_path, "w");
    if (f != NULL) {
        fprintf(f, "0x%lX", (unsigned long)(uintptr_t)p);
        fclose(f);
    }
}

/* After the bad free: the heap still hands out distinct, writable objects that keep their bytes. */
static int heap_consistent(void)
{
    void *p[200];
    int i, ok = 1;
    for (i = 0; i < 200; ++i) {
        p[i] = na_malloc(64);
        if (p[i] == NULL) {
            return 0;
        }
        memset(p[i], i, 64);
    }
    for (i = 0; i < 200; ++i) {
        ok &= *(unsigned char *)p[i] == (unsigned char)i && ((unsigned char *)p[i])[63] == (unsigned char)i;
        na_free(p[i]);
    }
    return ok;
}

static int not_ours(void)
{
    int local;
    void *warm = na_malloc(64);
    na_free(warm);
    save_address(&local);
    na_free(&local);
    return heap_consistent() ? 0 : 1;
}

static int interior(void)
{
    char *p = na_malloc(64);
    save_address(p + 16);
    na_free(p + 16);
    p[0] = 1; /* still live: the bad free did not free it */
    na_free(p);
    return heap_consistent() ? 0 : 1;
}

static int double_free(void)
{
    void *p = na_malloc(64);
    void *q;
    save_address(p);
    na_free(p);
    na_free(p);
    /* The object is handed out once more, not twice. */
    q = na_malloc(64);
    if (q != p && q != NULL) {
        /* Another object came first; still fine as long as p is not handed out twice. */
        void *r = na_malloc(64);
        int twice = r == p && q == p;
        na_free(r);
        na_free(q);
        return twice ? 1 : (heap_consistent() ? 0 : 1);
    }
    {
        void *r = na_malloc(64);
        int twice = r == q;
        na_free(r);
        na_free(q);
        return twice ? 1 : (heap_consistent() ? 0 : 1);
    }
}

static int large_double_free(void)
{
    void *p = na_malloc(100000);
    save_address(p);
    na_free(p);
    na_free(p);
    return heap_consistent() ? 0 : 1;
}

/* After a bulk free: the next n 64 B allocations are exactly objs (the magazine hands back what the
 * bulk free put in it, hottest first), so every good pointer of the call was freed once. */
static int freed_by_bulk(void *const *objs, size_t n)
{
    void *again[16];
    size_t i, j;
    int ok = n <= 16 && na_malloc_bulk(64, again, n) == n;
    for (i = 0; ok && i < n; ++i) {
        int found = 0;
        for (j = 0; j < n; ++j) {
            found |= again[i] == objs[j];
        }
        ok &= found;
    }
    na_free_bulk(again, ok ? n : 0);
    return ok;
}

/* One na_free_bulk call names an object twice: the second is the double free. */
static int bulk_double_free(void)
{
    void *objs[8], *ptrs[9];
    if (na_malloc_bulk(64, objs, 8) != 8) {
        return 1;
    }
    memcpy(ptrs, objs, sizeof objs);
    ptrs[8] = objs[3];
    save_address(objs[3]);
    na_free_bulk(ptrs, 9);
    return freed_by_bulk(objs, 8) && heap_consistent() ? 0 : 1;
}

/* An interior pointer amid a bulk free: reported, and the objects on both sides of it are freed. */
static int bulk_interior(void)
{
    void *objs[8], *ptrs[9];
    char *live = na_malloc(64);
    if (live == NULL || na_malloc_bulk(64, objs, 8) != 8) {
        return 1;
    }
    memcpy(ptrs, objs, 4 * sizeof objs[0]);
    ptrs[4] = live + 16;
    memcpy(ptrs + 5, objs + 4, 4 * sizeof objs[0]);
    save_address(live + 16);
    na_free_bulk(ptrs, 9);
    if (!freed_by_bulk(objs, 8)) {
        return 1;
    }
    live[0] = 1; /* still live: the bad pointer freed nothing */
    na_free(live);
    return heap_consistent() ? 0 : 1;
}

/* Runs body in a child with NUMALLOC_CONFIG=config (NULL: unset); returns its wait status, or -1. */
static int run_child(int (*body)(void), const char *config)
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen(s_err_path, "w", stderr) == NULL) {
            _exit(255);
        }
        if (config != NULL ? setenv("NUMALLOC_CONFIG", config, 1) != 0 : unsetenv("NUMALLOC_CONFIG") != 0) {
            _exit(255);
        }
        alarm(60);
        _exit(body());
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return status;
}

static int read_file(const char *path, char *buf, size_t size)
{
    size_t n;
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 1;
}

static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    const char *line = text;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char copy[1024];
        if (len >= sizeof copy) {
            len = sizeof copy - 1;
        }
        memcpy(copy, line, len);
        copy[len] = '\0';
        n += strstr(copy, needle) != NULL;
        line += len + (end != NULL);
        if (end == NULL) {
            break;
        }
    }
    return n;
}

static void reported_case(const char *name, int (*body)(void), const char *keyword)
{
    char err[8192], addr[64], what[512];
    int ok;
    int status = run_child(body, NULL);
    read_file(s_err_path, err, sizeof err);
    read_file(s_addr_path, addr, sizeof addr);
    snprintf(what, sizeof what, "%s: reported, the process carries on and the heap is consistent (status %d)", name, status);
    check(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, what);
    ok = addr[0] != '\0' && lines_with(err, addr) == 1 && lines_with(err, keyword) == 1 && lines_with(err, "numalloc") == 1;
    err[strcspn(err, "\n")] = '\0'; /* the description shows the first line */
    snprintf(what, sizeof what, "%s: exactly one stderr line naming %s and \"%s\": %.300s", name, addr, keyword, err);
    check(ok, what);
}

int main(void)
{
    char what[256];
    int status, fd;
    fd = mkstemp(s_err_path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    fd = mkstemp(s_addr_path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);

    reported_case("not ours (a stack address)", not_ours, "not a pointer");
    reported_case("interior pointer", interior, "interior");
    reported_case("double free of a small object", double_free, "double free");
    reported_case("double free of a page run", large_double_free, "double free");
    reported_case("double free inside one na_free_bulk", bulk_double_free, "double free");
    reported_case("interior pointer inside na_free_bulk", bulk_interior, "interior");

    status = run_child(double_free, "on_bad_free=abort");
    snprintf(what, sizeof what, "on_bad_free=abort: a double free aborts the process with SIGABRT (status 0x%x)", (unsigned)status);
    check(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, what);
    status = run_child(not_ours, "on_bad_free=abort");
    check(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "on_bad_free=abort: freeing a pointer not ours aborts (SIGABRT)");

    remove(s_err_path);
    remove(s_addr_path);
    return tap_finish();
}
