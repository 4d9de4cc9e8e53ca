/*
 * test_hotplug.c - movable handles and the admin calls from C, on a simulated two-node heap
 * (NUMALLOC_CONFIG set here, before the first call): alloc, pin, write, unpin, then an offline of
 * the buffer's Movable zone while other threads keep allocating migrates it (contents intact, on
 * another node); an offline of a Normal zone with live memory is -EBUSY and changes nothing; a
 * second offline while one runs is -EAGAIN (the first, held up by a pin, ends -ETIMEDOUT); a
 * vetoing listener (na_bench_veto_offline) gives -ECANCELED; bad targets give -EINVAL; block calls
 * offline and online one block; na_stats_json is valid JSON listing every block and reports the
 * size it needs when the buffer is too small.
 * Prints "ok N - ..." lines and "c-tests: P passed, F failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "na_bench.h"
#include "numalloc.h"
#include "tap.h"

/* ---- a tiny JSON checker: 1 when text is exactly one valid JSON value ---------------------- */

static const char *json_value(const char *s, int depth);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        ++s;
    }
    return s;
}

static const char *json_string(const char *s)
{
    if (*s++ != '"') {
        return NULL;
    }
    while (*s != '"') {
        if ((unsigned char)*s < 0x20) {
            return NULL;
        }
        if (*s == '\\') {
            ++s;
            if (*s == 'u') {
                int i;
                for (i = 1; i <= 4; ++i) {
                    if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0') {
                        return NULL;
                    }
                }
                s += 4;
            } else if (strchr("\"\\/bfnrt", *s) == NULL || *s == '\0') {
                return NULL;
            }
        }
        ++s;
    }
    return s + 1;
}

static const char *json_number(const char *s)
{
    const char *start;
    if (*s == '-') {
        ++s;
    }
    start = s;
    while (*s >= '0' && *s <= '9') {
        ++s;
    }
    if (s == start) {
        return NULL;
    }
    if (*s == '.') {
        start = ++s;
        while (*s >= '0' && *s <= '9') {
            ++s;
        }
        if (s == start) {
            return NULL;
        }
    }
    if (*s == 'e' || *s == 'E') {
        ++s;
        if (*s == '+' || *s == '-') {
            ++s;
        }
        start = s;
        while (*s >= '0' && *s <= '9') {
            ++s;
        }
        if (s == start) {
            return NULL;
        }
    }
    return s;
}

static const char *json_value(const char *s, int depth)
{
    s = json_ws(s);
    if (depth > 64) {
        return NULL;
    }
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        int object = *s == '{';
        s = json_ws(s + 1);
        if (*s == close) {
            return s + 1;
        }
        for (;;) {
            if (object) {
                s = json_string(json_ws(s));
                if (s == NULL) {
                    return NULL;
                }
                s = json_ws(s);
                if (*s++ != ':') {
                    return NULL;
                }
            }
            s = json_value(s, depth + 1);
            if (s == NULL) {
                return NULL;
            }
            s = json_ws(s);
            if (*s == close) {
                return s + 1;
            }
            if (*s++ != ',') {
                return NULL;
            }
        }
    }
    if (*s == '"') {
        return json_string(s);
    }
    if (strncmp(s, "true", 4) == 0) {
        return s + 4;
    }
    if (strncmp(s, "false", 5) == 0) {
        return s + 5;
    }
    if (strncmp(s, "null", 4) == 0) {
        return s + 4;
    }
    return json_number(s);
}

static int is_json(const char *text)
{
    const char *end = json_value(text, 0);
    return end != NULL && *json_ws(end) == '\0';
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* The stats as a malloc'd string (free with free()), or NULL. */
static char *stats(void)
{
    long n = na_stats_json(NULL, 0);
    char *buf;
    long again;
    if (n < 0) {
        return NULL;
    }
    /* Room for growth between the two calls (a new history entry, a longer time stamp). */
    buf = malloc((size_t)n + 4096);
    if (buf == NULL) {
        return NULL;
    }
    again = na_stats_json(buf, (size_t)n + 4096);
    if (again < 0 || again >= n + 4096) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    const char *p = text;
    while (text != NULL && (p = strstr(p, needle)) != NULL) {
        ++n;
        p += strlen(needle);
    }
    return n;
}

/* The "blocks" array of a stats document, as a malloc'd string (for before/after comparisons). */
static char *blocks_of(const char *json)
{
    const char *start = json != NULL ? strstr(json, "\"blocks\":[") : NULL;
    const char *end = start != NULL ? strchr(start, ']') : NULL;
    char *copy;
    if (end == NULL) {
        return NULL;
    }
    copy = malloc((size_t)(end - start) + 2);
    if (copy != NULL) {
        memcpy(copy, start, (size_t)(end - start) + 1);
        copy[end - start + 1] = '\0';
    }
    return copy;
}

/* The first block of node in zone ("Normal"/"Movable") whose state is state; -1 if none. */
static int find_block(const char *json, int node, const char *zone, const char *state)
{
    char want[128];
    const char *p = json;
    int id;
    snprintf(want, sizeof want, ",\"node\":%d,\"zone\":\"%s\",\"state\":\"%s\"}", node, zone, state);
    while (p != NULL && (p = strstr(p, "{\"id\":")) != NULL) {
        p += 6;
        id = atoi(p);
        while (*p >= '0' && *p <= '9') {
            ++p;
        }
        if (strncmp(p, want, strlen(want)) == 0) {
            return id;
        }
    }
    return -1;
}

/* The state of block id in a stats document, copied into state (at most size - 1 chars). */
static void block_state(const char *json, int id, char *state, size_t size)
{
    char want[32];
    const char *p;
    size_t n = 0;
    state[0] = '\0';
    snprintf(want, sizeof want, "{\"id\":%d,", id);
    p = json != NULL ? strstr(json, want) : NULL;
    p = p != NULL ? strstr(p, "\"state\":\"") : NULL;
    if (p == NULL) {
        return;
    }
    p += 9;
    while (p[n] != '"' && p[n] != '\0' && n + 1 < size) {
        state[n] = p[n];
        ++n;
    }
    state[n] = '\0';
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* ---- load: threads that keep allocating while the hotplug calls run ------------------------ */

static volatile int s_stop;

static void *load_thread(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    void *slots[64] = { 0 };
    long errors = 0;
    while (!__atomic_load_n(&s_stop, __ATOMIC_ACQUIRE)) {
        int i = (int)(rand_r(&seed) % 64);
        size_t size = 16 + rand_r(&seed) % 3000;
        if (slots[i] != NULL) {
            errors += *(unsigned char *)slots[i] != (unsigned char)i;
            na_free(slots[i]);
        }
        slots[i] = na_malloc(size);
        if (slots[i] != NULL) {
            memset(slots[i], i, size);
        }
    }
    {
        int i;
        for (i = 0; i < 64; ++i) {
            if (slots[i] != NULL) {
                errors += *(unsigned char *)slots[i] != (unsigned char)i;
            }
            na_free(slots[i]);
        }
    }
    na_thread_flush();
    return (void *)errors;
}

/* ---- the checks -------------------------------------------------------------------------- */

static void check_movable_offline(void)
{
    enum { SIZE = 64 * 1024 };
    na_handle_t h = na_movable_alloc(SIZE, 1);
    unsigned char *p;
    int i, intact = 1, rc, node_before, node_after;
    pthread_t load[2];
    long errors = 0;
    char what[160];

    check(h != 0, "na_movable_alloc(64 KiB, node 1) returns a handle (never 0)");
    p = na_pin(h);
    node_before = na_node_of(p);
    check(p != NULL && node_before == 1, "na_pin gives an address on node 1");
    for (i = 0; i < SIZE; ++i) {
        p[i] = (unsigned char)(i * 7);
    }
    na_unpin(h);

    s_stop = 0;
    for (i = 0; i < 2; ++i) {
        pthread_create(&load[i], NULL, load_thread, (void *)(size_t)(i + 1));
    }
    sleep_ms(50);
    rc = na_offline_zone(1, NA_ZONE_MOVABLE, 5000);
    snprintf(what, sizeof what, "na_offline_zone(1, NA_ZONE_MOVABLE) under load returns 0 (got %d)", rc);
    check(rc == 0, what);
    __atomic_store_n(&s_stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 2; ++i) {
        void *e;
        pthread_join(load[i], &e);
        errors += (long)e;
    }
    check(errors == 0, "the load threads' objects stayed intact through the offline");

    p = na_pin(h);
    node_after = na_node_of(p);
    for (i = 0; p != NULL && i < SIZE; ++i) {
        intact &= p[i] == (unsigned char)(i * 7);
    }
    check(p != NULL && intact, "after the offline, pin again: the contents are intact");
    snprintf(what, sizeof what, "the buffer moved to another node (node %d -> %d)", node_before, node_after);
    check(node_after >= 0 && node_after != 1, what);
    na_unpin(h);
    na_movable_free(h);
    errno = 0;
    check(na_pin(h) == NULL && errno == EINVAL, "na_pin of a freed handle: NULL, errno EINVAL");
    check(na_pin(0) == NULL, "na_pin(0): NULL (0 is never a handle)");
    na_movable_free(0);
    check(1, "na_movable_free(0) is a no-op");

    rc = na_online_zone(1, NA_ZONE_MOVABLE);
    check(rc == 0, "na_online_zone(1, NA_ZONE_MOVABLE) brings it back: 0");
    h = na_movable_alloc(4096, 1);
    p = h != 0 ? na_pin(h) : NULL;
    check(p != NULL && na_node_of(p) == 1, "a new movable buffer lands on node 1 again");
    if (p != NULL) {
        na_unpin(h);
    }
    na_movable_free(h);
    errno = 0;
    check(na_movable_alloc(64, 2) == 0 && errno == EINVAL, "na_movable_alloc on a node that does not exist: 0, errno EINVAL");
    errno = 0;
    check(na_movable_alloc((size_t)8 << 20, -1) == 0 && errno == ENOMEM, "na_movable_alloc(8 MiB): 0, errno ENOMEM");
}

static void check_busy(void)
{
    char *p = na_malloc_onnode(1000, 1);
    char *before, *after, *blocks_before, *blocks_after;
    int rc;
    char what[160];
    memset(p, 0x5A, 1000);
    before = stats();
    errno = 0;
    rc = na_offline_zone(1, NA_ZONE_NORMAL, 1000);
    after = stats();
    snprintf(what, sizeof what, "na_offline_zone(1, NA_ZONE_NORMAL) with live memory: -EBUSY (got %d), errno EBUSY", rc);
    check(rc == -EBUSY && errno == EBUSY, what);
    blocks_before = blocks_of(before);
    blocks_after = blocks_of(after);
    check(blocks_before != NULL && blocks_after != NULL && strcmp(blocks_before, blocks_after) == 0,
          "after -EBUSY every block is as before (na_stats_json)");
    check(p[0] == 0x5A && p[999] == 0x5A && na_node_of(p) == 1, "the live memory is intact and still on node 1");
    na_free(p);
    free(before);
    free(after);
    free(blocks_before);
    free(blocks_after);
}

static int s_first_rc;

static void *offline_pinned(void *arg)
{
    (void)arg;
    s_first_rc = na_offline_zone(1, NA_ZONE_MOVABLE, 2000);
    return NULL;
}

static void check_in_progress_and_timeout(void)
{
    na_handle_t h = na_movable_alloc(4096, 1);
    void *p = na_pin(h);
    pthread_t t;
    int rc;
    char what[160];
    check(p != NULL && na_node_of(p) == 1, "a pinned movable buffer on node 1");
    pthread_create(&t, NULL, offline_pinned, NULL);
    sleep_ms(400); /* the first offline is now retrying the pinned buffer */
    rc = na_offline_zone(0, NA_ZONE_MOVABLE, 0);
    snprintf(what, sizeof what, "a second offline while one runs: -EAGAIN (got %d)", rc);
    check(rc == -EAGAIN, what);
    pthread_join(t, NULL);
    snprintf(what, sizeof what, "the first, held up by the pin: -ETIMEDOUT (got %d)", s_first_rc);
    check(s_first_rc == -ETIMEDOUT, what);
    check(na_pin(h) == p, "the pinned buffer did not move");
    na_unpin(h);
    na_unpin(h);
    na_movable_free(h);
}

static void check_cancelled_and_invalid(void)
{
    int blocks = na_block_count();
    int rc;
    char what[160];
    check(na_bench_veto_offline(1) == 0, "a vetoing listener registered (na_bench_veto_offline)");
    rc = na_offline_zone(1, NA_ZONE_MOVABLE, 100);
    snprintf(what, sizeof what, "offline with a vetoing listener: -ECANCELED (got %d)", rc);
    check(rc == -ECANCELED, what);
    na_bench_veto_offline(0);

    check(na_offline_zone(2, NA_ZONE_NORMAL, 0) == -EINVAL, "na_offline_zone of node 2 (of 2): -EINVAL");
    check(na_offline_zone(-1, NA_ZONE_NORMAL, 0) == -EINVAL, "na_offline_zone of node -1: -EINVAL");
    errno = 0;
    check(na_offline_zone(0, 2, 0) == -EINVAL && errno == EINVAL, "na_offline_zone of zone 2: -EINVAL, errno EINVAL");
    check(na_online_zone(0, 5) == -EINVAL, "na_online_zone of zone 5: -EINVAL");
    check(na_offline_node(7, 0) == -EINVAL, "na_offline_node(7): -EINVAL");
    check(na_online_node(-3) == -EINVAL, "na_online_node(-3): -EINVAL");
    check(na_offline_block(-1, 0) == -EINVAL, "na_offline_block(-1): -EINVAL");
    check(na_offline_block(blocks, 0) == -EINVAL, "na_offline_block(block count): -EINVAL");
    check(na_online_block(0, 9) == -EINVAL, "na_online_block into zone 9: -EINVAL");
}

static void check_blocks_and_stats(void)
{
    char *json = stats();
    char small[16];
    char state[32];
    long needed;
    int blocks = na_block_count();
    int block, rc;
    char what[160];

    check(json != NULL && is_json(json), "na_stats_json returns valid JSON (tiny checker)");
    check(json != NULL && json[0] == '{' && strstr(json, "\"nodes\":[") != NULL && strstr(json, "\"blocks\":[") != NULL
              && strstr(json, "\"hotplug\":[") != NULL && strstr(json, "\"movable\":{") != NULL,
          "the JSON names nodes, blocks, movable and hotplug");
    snprintf(what, sizeof what, "na_stats_json lists every block: %d \"state\" entries for na_block_count() = %d",
             count(json, "\"state\":"), blocks);
    check(blocks > 0 && count(json, "\"state\":") == blocks, what);
    check(!is_json("{\"a\":[1,2,}") && !is_json("{\"a\":1} x") && is_json("{\"a\":[1,-2.5e3,\"x\\n\"],\"b\":null}"),
          "the tiny JSON checker rejects broken documents and accepts a good one");

    memset(small, 'x', sizeof small);
    needed = na_stats_json(small, 10);
    check(needed > 10 && json != NULL && needed >= (long)strlen(json) - 64 && small[9] == '\0' && strlen(small) == 9
              && small[10] == 'x' && small[0] == '{',
          "too small a buffer: returns the size needed, writes 9 bytes and a NUL, nothing beyond len");
    check(na_stats_json(NULL, 0) > 0, "na_stats_json(NULL, 0) returns the size needed");

    block = find_block(json, 1, "Movable", "Online");
    check(block >= 0, "a Movable block of node 1 is Online in the stats");
    rc = na_offline_block(block, 2000);
    free(json);
    json = stats();
    block_state(json, block, state, sizeof state);
    snprintf(what, sizeof what, "na_offline_block(%d): 0 (got %d), the stats say Offline (%s)", block, rc, state);
    check(rc == 0 && strcmp(state, "Offline") == 0, what);
    rc = na_online_block(block, NA_ZONE_MOVABLE);
    free(json);
    json = stats();
    block_state(json, block, state, sizeof state);
    snprintf(what, sizeof what, "na_online_block(%d, NA_ZONE_MOVABLE): 0 (got %d), Online again (%s)", block, rc, state);
    check(rc == 0 && strcmp(state, "Online") == 0, what);
    free(json);
}

int main(void)
{
    /* Read at the first call: two simulated nodes, 4 MiB blocks, 16 MiB per zone to start. */
    if (setenv("NUMALLOC_CONFIG", "topology=sim:2;block=4M;normal=16M;movable=16M", 1) != 0) {
        perror("setenv");
        return 1;
    }
    check(na_node_count() == 2, "NUMALLOC_CONFIG=topology=sim:2: two nodes");
    check(na_block_count() > 0, "na_block_count() > 0");
    check_movable_offline();
    check_busy();
    check_in_progress_and_timeout();
    check_cancelled_and_invalid();
    check_blocks_and_stats();
    return tap_finish();
}
