/*
 * test_config.c - NUMALLOC_CONFIG is read once, at the first call: a simulated topology is
 * honoured, and a bad value gives one clear line on stderr and a failed init (-1), no crash.
 * Each case runs in a forked child before the runtime starts, so each sees its own first call.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "numalloc.h"
#include "tap.h"

/* Runs na_node_count() in a child with NUMALLOC_CONFIG=config; returns its result (+1 so -1
 * fits an exit status), or -1000 if the child crashed. stderr of the child goes to err_path. */
static int node_count_with(const char *config, const char *err_path)
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *err = freopen(err_path, "w", stderr);
        if (err == NULL || setenv("NUMALLOC_CONFIG", config, 1) != 0) {
            _exit(255);
        }
        _exit(na_node_count() + 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1000;
    }
    return WEXITSTATUS(status) - 1;
}

static int file_contains(const char *path, const char *needle)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

int main(void)
{
    char err_path[] = "/tmp/numalloc-test-config-XXXXXX";
    int fd = mkstemp(err_path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);

    check(node_count_with("topology=sim:4", err_path) == 4, "topology=sim:4 gives 4 nodes");
    check(node_count_with("topology=sim:3x2;distance=10,30", err_path) == 3, "topology=sim:3x2 gives 3 nodes");
    check(node_count_with("topology=sim:0", err_path) == -1, "topology=sim:0 fails init with -1");
    check(file_contains(err_path, "topology"), "the failure names the bad key on stderr");
    check(node_count_with("block=3M", err_path) == -1, "block=3M fails init with -1");
    check(file_contains(err_path, "block"), "the block failure names the key on stderr");
    check(node_count_with("no_such_key=1", err_path) == -1, "an unknown key fails init with -1");

    remove(err_path);
    return tap_finish();
}
