/*
 * tap.h - the few lines every C test shares: TAP-like "ok N - ..." / "not ok N - ..." lines and
 * the closing "c-tests: P passed, F failed" that tests/run.sh adds up. Header-only; one test
 * program per translation unit.
 */
#ifndef NUMALLOC_TESTS_TAP_H
#define NUMALLOC_TESTS_TAP_H

#include <stdio.h>

static int s_test_number;
static int s_passed;
static int s_failed;

static void check(int condition, const char *description)
{
    ++s_test_number;
    if (condition) {
        ++s_passed;
        printf("ok %d - %s\n", s_test_number, description);
    } else {
        ++s_failed;
        printf("not ok %d - %s\n", s_test_number, description);
    }
    /* A child may be forked next, or LeakSanitizer may end the process with _exit: flush now. */
    fflush(stdout);
}

/* Prints the closing line; returns the process exit status. */
static int tap_finish(void)
{
    printf("c-tests: %d passed, %d failed\n", s_passed, s_failed);
    fflush(stdout);
    return s_failed == 0 ? 0 : 1;
}

#endif
