/*
 * test_errno.c - errno and the export guard, from C. A bad NUMALLOC_CONFIG is reported in one
 * line on stderr, once per process, and every later call fails with -1 and errno ENOMEM, on any
 * thread; an exception inside an export (na_bench_throw) comes back as -1 and errno ENOMEM with
 * the process alive and one report on stderr. Each case runs in a forked child before the
 * runtime starts, so each sees its own first call.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "na_bench.h"
#include "numalloc.h"
#include "tap.h"

/* Bits a child sets in its exit status, one per property it saw hold. */
enum {
    ALL_MINUS_ONE = 1,      /* every call returned -1 */
    ALL_ENOMEM = 2,         /* errno was ENOMEM after every call (it was cleared before each) */
    OTHER_THREAD_OK = 4,    /* a pthread's call failed the same way, with its own errno */
    ERRNO_PER_THREAD = 8    /* that thread's failure left the main thread's errno alone */
};

static void *other_thread(void *arg)
{
    int *result = arg;
    errno = 0;
    result[0] = na_node_count();
    result[1] = errno;
    return NULL;
}

/* Child body: three na_node_count calls with NUMALLOC_CONFIG=config, then one on a pthread. */
static int bad_config_child(void)
{
    int bits = ALL_MINUS_ONE | ALL_ENOMEM;
    int i;
    int result[2] = { 0, 0 };
    pthread_t thread;
    for (i = 0; i < 3; ++i) {
        int count;
        errno = 0;
        count = na_node_count();
        if (count != -1) {
            bits &= ~ALL_MINUS_ONE;
        }
        if (errno != ENOMEM) {
            bits &= ~ALL_ENOMEM;
        }
    }
    errno = EDOM;
    if (pthread_create(&thread, NULL, other_thread, result) == 0 && pthread_join(thread, NULL) == 0) {
        if (result[0] == -1 && result[1] == ENOMEM) {
            bits |= OTHER_THREAD_OK;
        }
        if (errno == EDOM) {
            bits |= ERRNO_PER_THREAD;
        }
    }
    return bits;
}

/* Child body: na_bench_throw twice; bits as above (no thread part). */
static int throw_child(void)
{
    int bits = ALL_MINUS_ONE | ALL_ENOMEM;
    int i;
    for (i = 0; i < 2; ++i) {
        int rc;
        errno = 0;
        rc = na_bench_throw();
        if (rc != -1) {
            bits &= ~ALL_MINUS_ONE;
        }
        if (errno != ENOMEM) {
            bits &= ~ALL_ENOMEM;
        }
    }
    /* Still usable after the exception: the runtime was not torn down. */
    return na_node_count() >= 1 ? bits | OTHER_THREAD_OK : bits;
}

/* Runs body in a child with NUMALLOC_CONFIG=config (NULL: unset) and stderr in err_path;
 * returns the child's exit status, or -1 if it crashed or hung past 60 s (alarm). */
static int run_child(int (*body)(void), const char *config, const char *err_path)
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *err = freopen(err_path, "w", stderr);
        if (err == NULL) {
            _exit(255);
        }
        if (config != NULL ? setenv("NUMALLOC_CONFIG", config, 1) != 0 : unsetenv("NUMALLOC_CONFIG") != 0) {
            _exit(255);
        }
        alarm(60); /* a hang becomes SIGALRM, a crash the harness sees */
        _exit(body());
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

/* Number of lines in path, and the first line in first (at most size - 1 characters). */
static int read_lines(const char *path, char *first, size_t size)
{
    char line[1024];
    int lines = 0;
    FILE *f = fopen(path, "r");
    first[0] = '\0';
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (lines == 0) {
            strncpy(first, line, size - 1);
            first[size - 1] = '\0';
        }
        if (strchr(line, '\n') != NULL) {
            ++lines;
        }
    }
    fclose(f);
    return lines;
}

int main(void)
{
    char err_path[] = "/tmp/numalloc-test-errno-XXXXXX";
    char first[1024];
    char description[1200];
    int bits;
    int lines;
    int fd = mkstemp(err_path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);

    bits = run_child(bad_config_child, "block=3M", err_path);
    check(bits >= 0, "bad NUMALLOC_CONFIG: the process neither crashes nor hangs");
    check(bits >= 0 && (bits & ALL_MINUS_ONE), "bad NUMALLOC_CONFIG: every na_node_count() returns -1");
    check(bits >= 0 && (bits & ALL_ENOMEM), "bad NUMALLOC_CONFIG: errno is ENOMEM after every call");
    check(bits >= 0 && (bits & OTHER_THREAD_OK), "bad NUMALLOC_CONFIG: a pthread's call fails the same way, errno ENOMEM");
    check(bits >= 0 && (bits & ERRNO_PER_THREAD), "errno is per thread: the pthread's failure leaves main's errno alone");
    lines = read_lines(err_path, first, sizeof first);
    snprintf(description, sizeof description, "bad NUMALLOC_CONFIG: exactly one line on stderr for 4 calls (got %d)", lines);
    check(lines == 1, description);
    first[strcspn(first, "\n")] = '\0';
    snprintf(description, sizeof description, "the line says numalloc, failed and the key: \"%s\"", first);
    check(strncmp(first, "numalloc: ", 10) == 0 && strstr(first, "failed") != NULL && strstr(first, "block") != NULL,
          description);

    bits = run_child(bad_config_child, NULL, err_path);
    check(bits >= 0 && (bits & ALL_MINUS_ONE) == 0, "control: with no NUMALLOC_CONFIG, na_node_count() succeeds");
    check(read_lines(err_path, first, sizeof first) == 0, "control: with no NUMALLOC_CONFIG, nothing on stderr");

    bits = run_child(throw_child, NULL, err_path);
    check(bits >= 0, "an exception inside an export neither crashes nor hangs the process");
    check(bits >= 0 && (bits & ALL_MINUS_ONE), "an exception inside an export becomes -1");
    check(bits >= 0 && (bits & ALL_ENOMEM), "an exception inside an export sets errno ENOMEM");
    check(bits >= 0 && (bits & OTHER_THREAD_OK), "the library still works after an exception in an export");
    lines = read_lines(err_path, first, sizeof first);
    first[strcspn(first, "\n")] = '\0';
    snprintf(description, sizeof description, "two exceptions, one report on stderr naming it: \"%s\" (%d lines)", first, lines);
    check(lines == 1 && strstr(first, "InvalidOperationException") != NULL, description);

    remove(err_path);
    return tap_finish();
}
