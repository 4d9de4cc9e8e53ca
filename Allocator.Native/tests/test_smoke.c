/*
 * test_smoke.c - smoke test of libnumalloc through numalloc.h: the library loads, its
 * runtime starts, and na_node_count() agrees with sysfs.
 * Prints TAP-like "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "numalloc.h"
#include "tap.h"

/* "node" followed by one or more decimal digits, nothing else. */
static int is_node_name(const char *name)
{
    const char *p;
    if (strncmp(name, "node", 4) != 0 || name[4] == '\0') {
        return 0;
    }
    for (p = name + 4; *p != '\0'; ++p) {
        if (!isdigit((unsigned char)*p)) {
            return 0;
        }
    }
    return 1;
}

/* The node directories under /sys/devices/system/node, or 1 where there are none. */
static int sysfs_node_count(void)
{
    const char *root = "/sys/devices/system/node";
    char path[512];
    struct stat st;
    struct dirent *entry;
    int count = 0;
    DIR *dir = opendir(root);
    if (dir == NULL) {
        return 1;
    }
    while ((entry = readdir(dir)) != NULL) {
        if (!is_node_name(entry->d_name)) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", root, entry->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            ++count;
        }
    }
    closedir(dir);
    return count > 0 ? count : 1;
}

int main(void)
{
    int expected = sysfs_node_count();
    int nodes = na_node_count();
    char description[128];

    check(nodes >= 1, "na_node_count() >= 1");
    snprintf(description, sizeof description,
             "na_node_count() == sysfs node directories (got %d, expected %d)", nodes, expected);
    check(nodes == expected, description);
    check(na_node_count() == nodes, "na_node_count() is stable across calls");

    return tap_finish();
}
