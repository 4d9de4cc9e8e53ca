/*
 * linkage.c - the program tests/run.sh links against each library in an unusual place (the
 * .so in another directory, found through the program's rpath; the .a with the LINK.txt line)
 * and runs with no or an empty LD_LIBRARY_PATH. It starts the runtime and maps memory through
 * the platform layer (a page from na_bench_page_alloc), which is where a missing run-time
 * dependency such as libMonoPosixHelper.so would show.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#include <string.h>

#include "na_bench.h"
#include "numalloc.h"
#include "tap.h"

int main(void)
{
    unsigned char *page;

    check(na_node_count() >= 1, "the runtime starts: na_node_count() >= 1");
    page = na_bench_page_alloc();
    check(page != NULL, "the platform layer maps memory: na_bench_page_alloc() != NULL");
    if (page != NULL) {
        memset(page, 0xA5, 4096);
        check(page[0] == 0xA5 && page[4095] == 0xA5, "the page is writable end to end");
        na_bench_page_free(page);
    }
    return tap_finish();
}
