/*
 * peers.c - runs one workload of workloads.h once and prints one JSON line with its throughput,
 * peak RSS and integrity verdict. run-peers.sh runs it per allocator, thread count and repeat.
 *
 *   peers [options] WORKLOAD
 *     --alloc libc|numalloc  libc (default): the process's malloc/free/realloc, i.e. glibc or
 *                            whatever LD_PRELOAD put first (jemalloc, mimalloc, tcmalloc);
 *                            numalloc: na_malloc/na_free (na_realloc if exported) resolved with
 *                            dlopen/dlsym from --lib. numalloc never replaces malloc: the
 *                            NativeAOT runtime inside the library calls malloc itself.
 *     --lib PATH             libnumalloc.so (default artifacts/native/shared/libnumalloc.so)
 *     --label NAME           the allocator's name in the output (default: the --alloc value)
 *     --threads N            worker threads (default 1)
 *     --iterations N         per thread (default: the workload's; --quick: its short one)
 *     --seed N               default 42
 *   peers --which            prints the file that provides malloc in this process
 *   peers --list             prints the workloads and their units
 *
 * RSS: VmRSS is read once the allocator is ready (base), VmHWM is reset to it (clear_refs), and
 * the peak is read after the timed part; "frag" = (peak - base) / peak live bytes requested
 * (mixed only). rss_end is VmRSS after every object was freed: what the allocator kept.
 * Exit status: 0, 1 on integrity errors, 2 on bad usage, 3 when the allocator is not available.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads.h"

static int usage(void)
{
    fprintf(stderr, "usage: peers [--alloc libc|numalloc] [--lib PATH] [--label NAME] [--threads N]\n"
                    "             [--iterations N] [--quick] [--seed N] WORKLOAD\n"
                    "       peers --which | --list\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *kind = "libc", *lib = "artifacts/native/shared/libnumalloc.so", *label = NULL;
    const char *workload_name = NULL;
    wl_params params = { 1, 0, 42 };
    int quick = 0, i, reset;
    const wl_workload *workload;
    wl_allocator alloc;
    wl_result result;
    long base_kib, peak_kib, end_kib;
    double frag = 0;

    for (i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--which") == 0) {
            printf("%s\n", wl_malloc_provider());
            return 0;
        } else if (strcmp(arg, "--list") == 0) {
            for (i = 0; i < wl_workload_count; ++i) {
                printf("%-14s %s\n", wl_workloads[i].name, wl_workloads[i].unit);
            }
            return 0;
        } else if (strcmp(arg, "--quick") == 0) {
            quick = 1;
        } else if (value == NULL && strncmp(arg, "--", 2) == 0) {
            return usage();
        } else if (strcmp(arg, "--alloc") == 0) {
            kind = argv[++i];
        } else if (strcmp(arg, "--lib") == 0) {
            lib = argv[++i];
        } else if (strcmp(arg, "--label") == 0) {
            label = argv[++i];
        } else if (strcmp(arg, "--threads") == 0) {
            params.threads = atoi(argv[++i]);
        } else if (strcmp(arg, "--iterations") == 0) {
            params.iterations = atol(argv[++i]);
        } else if (strcmp(arg, "--seed") == 0) {
            params.seed = strtoull(argv[++i], NULL, 0);
        } else if (arg[0] != '-' && workload_name == NULL) {
            workload_name = arg;
        } else {
            return usage();
        }
    }
    if (workload_name == NULL || (workload = wl_find(workload_name)) == NULL || params.threads < 1
        || params.threads > 1024 || params.iterations < 0) {
        return usage();
    }
    if (params.iterations == 0) {
        params.iterations = quick ? workload->quick_iterations : workload->default_iterations;
    }
    if (label == NULL) {
        label = kind;
    }

    if (strcmp(kind, "libc") == 0) {
        alloc = wl_libc_allocator(label);
    } else if (strcmp(kind, "numalloc") == 0) {
        char why[512];
        if (wl_load_allocator(lib, "na_", label, &alloc, why, sizeof why) != 0) {
            printf("%s: not available (%s)\n", label, why);
            return 3;
        }
    } else {
        return usage();
    }
    /* The first call may start the allocator (the NativeAOT runtime for numalloc): not timed,
       and in the base RSS. */
    alloc.free_fn(alloc.malloc_fn(64));

    base_kib = wl_status_kib("VmRSS");
    reset = wl_reset_peak_rss() == 0;
    if (workload->run(&alloc, &params, &result) != 0) {
        fprintf(stderr, "peers: %s could not start\n", workload->name);
        return 1;
    }
    peak_kib = wl_status_kib("VmHWM");
    end_kib = wl_status_kib("VmRSS");
    if (result.peak_live_bytes > 0 && peak_kib >= 0 && base_kib >= 0) {
        frag = (double)(peak_kib - base_kib) * 1024.0 / (double)result.peak_live_bytes;
    }
    printf("{\"workload\":\"%s\",\"allocator\":\"%s\",\"threads\":%d,\"iterations\":%ld,\"seed\":%llu,"
           "\"ops\":%lld,\"seconds\":%.6f,\"ops_per_s\":%.1f,\"errors\":%lld,"
           "\"rss_base_kib\":%ld,\"rss_peak_kib\":%ld,\"rss_end_kib\":%ld,\"hwm_reset\":%s,"
           "\"peak_live_bytes\":%lld,\"frag\":%.4f,\"realloc\":\"%s\",\"malloc_from\":\"%s\"}\n",
           workload->name, label, params.threads, params.iterations, (unsigned long long)params.seed,
           result.ops, result.seconds, result.seconds > 0 ? (double)result.ops / result.seconds : 0.0,
           result.errors, base_kib, peak_kib, end_kib, reset ? "true" : "false",
           result.peak_live_bytes, frag, alloc.realloc_fn != NULL ? "native" : "emulated",
           wl_malloc_provider());
    return result.errors == 0 ? 0 : 1;
}
