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
 *     --settle-ms N          after the free-all, wait N ms and read VmRSS again (rss_settled_kib;
 *                            -1 without it): what an allocator that purges on a timer gives back
 *   peers --which            prints the file that provides malloc in this process
 *   peers --list             prints the workloads and their units
 *
 * RSS: VmRSS is read once the allocator is ready (base), VmHWM is reset to it (clear_refs), and
 * the peak is read after the timed part; "frag" = (peak - base) / peak live bytes requested
 * (mixed only). rss_end is VmRSS after every object was freed: what the allocator kept.
 * metadata_bytes: what the allocator itself reports as its metadata, read after the run (every
 * figure below only grows or stays while objects are freed, so it is the peak's): numalloc's
 * memory.metadata_bytes from na_stats_json (committed descriptors, slab tables, caches);
 * jemalloc's stats.metadata (mallctl, after an "epoch" refresh); tcmalloc's
 * "Bytes in malloc metadata" line of MallocExtension_GetStats (gperftools has no numeric
 * property for it); -1 where the allocator reports
 * none (glibc keeps its 8-byte chunk headers inline and has no such counter; mimalloc 2.0 has no
 * API for it). "meta" = metadata_bytes / peak live bytes (mixed only).
 * Exit status: 0, 1 on integrity errors, 2 on bad usage, 3 when the allocator is not available.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT, RTLD_NOLOAD */

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workloads.h"

/* The allocator's own metadata figure in bytes (see the header), or -1. */
static long long metadata_bytes(const char *kind, const char *lib)
{
    if (strcmp(kind, "numalloc") == 0) {
        static char json[1 << 20];
        void *handle = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
        long (*stats)(char *, size_t) = handle != NULL ? (long (*)(char *, size_t))dlsym(handle, "na_stats_json") : NULL;
        const char *at;
        if (stats == NULL || stats(json, sizeof json) <= 0 || (at = strstr(json, "\"metadata_bytes\":")) == NULL) {
            return -1;
        }
        return atoll(at + strlen("\"metadata_bytes\":"));
    } else {
        int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
            (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
        void (*text_stats)(char *, int) = (void (*)(char *, int))dlsym(RTLD_DEFAULT, "MallocExtension_GetStats");
        if (mallctl != NULL) {
            uint64_t epoch = 1;
            size_t value = 0, len = sizeof value;
            if (mallctl("epoch", NULL, NULL, &epoch, sizeof epoch) == 0
                && mallctl("stats.metadata", &value, &len, NULL, 0) == 0) {
                return (long long)value;
            }
        } else if (text_stats != NULL) {
            static char text[1 << 16];
            const char *line;
            text_stats(text, (int)sizeof text);
            line = strstr(text, "Bytes in malloc metadata");
            while (line != NULL && line > text && line[-1] != '\n') {
                --line; /* back to "MALLOC: +  <bytes> (...)" at the line's start */
            }
            if (line != NULL && (line = strchr(line, '+')) != NULL) {
                return atoll(line + 1);
            }
        }
        return -1;
    }
}

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
    long base_kib, peak_kib, end_kib, settled_kib = -1, settle_ms = 0;
    long long meta_bytes;
    double frag = 0, meta = -1;

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
        } else if (strcmp(arg, "--settle-ms") == 0) {
            settle_ms = atol(argv[++i]);
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
    meta_bytes = metadata_bytes(kind, lib);
    if (settle_ms > 0) {
        struct timespec wait = { settle_ms / 1000, (settle_ms % 1000) * 1000000L };
        while (nanosleep(&wait, &wait) != 0) {
        }
        settled_kib = wl_status_kib("VmRSS");
    }
    if (result.peak_live_bytes > 0 && peak_kib >= 0 && base_kib >= 0) {
        frag = (double)(peak_kib - base_kib) * 1024.0 / (double)result.peak_live_bytes;
    }
    if (result.peak_live_bytes > 0 && meta_bytes >= 0) {
        meta = (double)meta_bytes / (double)result.peak_live_bytes;
    }
    printf("{\"workload\":\"%s\",\"allocator\":\"%s\",\"threads\":%d,\"iterations\":%ld,\"seed\":%llu,"
           "\"ops\":%lld,\"seconds\":%.6f,\"ops_per_s\":%.1f,\"errors\":%lld,"
           "\"rss_base_kib\":%ld,\"rss_peak_kib\":%ld,\"rss_end_kib\":%ld,\"rss_settled_kib\":%ld,\"settle_ms\":%ld,\"hwm_reset\":%s,"
           "\"peak_live_bytes\":%lld,\"frag\":%.4f,\"metadata_bytes\":%lld,\"meta\":%.4f,"
           "\"realloc\":\"%s\",\"malloc_from\":\"%s\"}\n",
           workload->name, label, params.threads, params.iterations, (unsigned long long)params.seed,
           result.ops, result.seconds, result.seconds > 0 ? (double)result.ops / result.seconds : 0.0,
           result.errors, base_kib, peak_kib, end_kib, settled_kib, settle_ms, reset ? "true" : "false",
           result.peak_live_bytes, frag, meta_bytes, meta, alloc.realloc_fn != NULL ? "native" : "emulated",
           wl_malloc_provider());
    return result.errors == 0 ? 0 : 1;
}
