/*
 * floor.c - what the work of one numalloc small-object pair costs when written in C: a model of
 * the fast paths na_malloc and na_free run (ObjectHeap.TryAllocateSmallFast / TryFreeFast), with
 * the same data layout and every check they make, compiled by gcc -O2, no runtime around it.
 *   allocation: thread's magazine set (initial-exec TLS), its registry id, size -> magazine offset
 *               table, InAllocator = 1, Pending load, home countdown, pop, free key cleared,
 *               InAllocator = 0, Pending load;
 *   free:       set and registry id, heap range, page descriptor (class from its flags), head
 *               descriptor (slab state, same class), interior check by multiply, home node,
 *               block state, free key (double free), magazine room, push, the protocol as above.
 * Both are noinline functions called like exports; "work" is the pair minus two empty noinline
 * calls, measured in the same run, next to a glibc malloc(64)+free pair, and once more with the
 * free's bad-pointer checks (head descriptor, interior pointer, free key) left out. It answers
 * whether the C ABI target (work inside a pair <= 5 ns) is reachable on this machine with these
 * checks at all, and what the checks cost.
 * Usage: floor [iterations]   (default 50,000,000; best of 11, the loops interleaved)
 */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { PAGE_SHIFT = 12, CLASSES = 80, MAGAZINE_CAPACITY = 64, REPEATS = 11, OBJECT = 64 };

/* PageDescriptor: 16 bytes; the fields the free path reads. */
struct descriptor {
    int32_t next, prev;
    uint8_t order, state, pad, flags;
    uint32_t owner;
};
enum { STATE_SLAB = 4, BLOCK_ONLINE = 2 };

struct class_info {
    int32_t size;
    uint32_t magic;
    int32_t magazine_offset, pad;
};

struct magazine {
    int32_t count, capacity;
    void *items[MAGAZINE_CAPACITY];
};

struct magazine_set {
    volatile int32_t in_allocator;
    int32_t depth;
    volatile int64_t pending;
    int32_t bypass, kinds, capacity, stride;
    int64_t registry_id;
    int64_t handle;
    int32_t owner, home_plus_one, ops_until_home_check, pad;
    struct magazine magazines[CLASSES];
};

struct heap {
    uint8_t *base;
    size_t size_bytes;
    struct descriptor *descriptors;
    uint8_t *block_states;
    int node_shift, block_shift;
    int64_t registry_id;
    uint64_t free_key;
};

static __thread struct magazine_set *t_set;
static struct heap s_heap;
static struct class_info s_classes[CLASSES];
static uint16_t s_offset_of_size8[32 * 1024 / 8 + 1];

#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

__attribute__((noinline)) static void slow(void) { abort(); }

__attribute__((noinline)) static void *model_malloc(size_t size)
{
    struct magazine_set *set = t_set;
    struct magazine *m;
    void *p = NULL;
    if (set == NULL || set->registry_id != s_heap.registry_id || size > 32 * 1024) {
        return NULL;
    }
    m = (struct magazine *)((uint8_t *)set + s_offset_of_size8[(size + 7) >> 3]);
    set->in_allocator = 1;
    COMPILER_BARRIER();
    if ((int32_t)set->pending == 0) {
        int ops = --set->ops_until_home_check;
        int count = m->count;
        if (count != 0 && ops >= 0) {
            p = m->items[--count];
            m->count = count;
            *(uint64_t *)p = 0;
        }
    }
    COMPILER_BARRIER();
    set->in_allocator = 0;
    if (((int32_t)set->pending & 0x7fffffff) != 0) {
        slow();
    }
    return p;
}

/* checked = 0 leaves out the bad-pointer checks (head descriptor, interior pointer, free key), to
 * show what they cost; everything else is the same. */
static inline __attribute__((always_inline)) int model_free_with(void *p, int checked)
{
    struct magazine_set *set = t_set;
    size_t offset;
    const struct descriptor *d, *h;
    uint32_t flags, size_class, head;
    const struct class_info *info;
    size_t relative;
    struct magazine *m;
    int pushed = 0;
    if (set == NULL || set->registry_id != s_heap.registry_id) {
        return 0;
    }
    offset = (size_t)((uint8_t *)p - s_heap.base);
    if (offset >= s_heap.size_bytes) {
        return 0;
    }
    d = s_heap.descriptors + (offset >> PAGE_SHIFT);
    flags = d->flags;
    size_class = flags - 1;
    if (size_class >= CLASSES) {
        return 0;
    }
    if (checked) {
        head = d->owner;
        h = s_heap.descriptors + head;
        if (h->state != STATE_SLAB || h->flags != flags) {
            return 0;
        }
        info = s_classes + size_class;
        relative = offset - ((size_t)head << PAGE_SHIFT);
        if ((size_t)(uint32_t)((relative * info->magic) >> 32) * (size_t)(uint32_t)info->size != relative) {
            return 0;
        }
    }
    m = &set->magazines[size_class];
    set->in_allocator = 1;
    COMPILER_BARRIER();
    if ((int32_t)set->pending == 0) {
        int ops = --set->ops_until_home_check;
        int count = m->count;
        if (ops >= 0 && (int)(offset >> s_heap.node_shift) + 1 == set->home_plus_one
            && s_heap.block_states[offset >> s_heap.block_shift] == BLOCK_ONLINE
            && count != m->capacity && (!checked || *(uint64_t *)p != s_heap.free_key)) {
            *(uint64_t *)p = s_heap.free_key;
            m->items[count] = p;
            m->count = count + 1;
            pushed = 1;
        }
    }
    COMPILER_BARRIER();
    set->in_allocator = 0;
    if (((int32_t)set->pending & 0x7fffffff) != 0) {
        slow();
    }
    return pushed;
}

__attribute__((noinline)) static int model_free(void *p) { return model_free_with(p, 1); }
__attribute__((noinline)) static int model_free_unchecked(void *p) { return model_free_with(p, 0); }

__attribute__((noinline)) static void empty_call(void *p) { __asm__ __volatile__("" : : "r"(p) : "memory"); }

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void setup(void)
{
    size_t heap_bytes = (size_t)64 << 20, pages = heap_bytes >> PAGE_SHIFT, i;
    int c, object_class = OBJECT / 8 - 1; /* 8, 16, .. 64: class 7 */
    s_heap.base = mmap(NULL, heap_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    s_heap.descriptors = calloc(pages, sizeof *s_heap.descriptors);
    s_heap.block_states = calloc(64, 1);
    t_set = calloc(1, sizeof *t_set);
    if (s_heap.base == MAP_FAILED || s_heap.descriptors == NULL || s_heap.block_states == NULL || t_set == NULL) {
        perror("floor: setup");
        exit(1);
    }
    s_heap.size_bytes = heap_bytes;
    s_heap.block_shift = 22;
    s_heap.node_shift = 30;
    s_heap.registry_id = 7;
    s_heap.free_key = 0x5eed0000f00d0001ULL;
    memset(s_heap.block_states, BLOCK_ONLINE, 64);
    for (c = 0; c < CLASSES; ++c) {
        s_classes[c].size = (c + 1) * 8;
        s_classes[c].magic = (uint32_t)((((uint64_t)1 << 32) + (uint64_t)s_classes[c].size - 1) / (uint64_t)s_classes[c].size);
        t_set->magazines[c].capacity = MAGAZINE_CAPACITY;
    }
    for (i = 0; i <= 32 * 1024 / 8; ++i) {
        size_t size8 = i == 0 ? 1 : i;
        size_t cls = size8 <= CLASSES ? size8 - 1 : CLASSES - 1;
        s_offset_of_size8[i] = (uint16_t)((uint8_t *)&t_set->magazines[cls] - (uint8_t *)t_set);
    }
    t_set->registry_id = 7;
    t_set->home_plus_one = 1;
    t_set->ops_until_home_check = 1 << 30;
    /* One slab of 64 B objects on page 0, its objects in the magazine. */
    s_heap.descriptors[0].state = STATE_SLAB;
    s_heap.descriptors[0].flags = (uint8_t)(object_class + 1);
    s_heap.descriptors[0].owner = 0;
    for (i = 0; i < 32; ++i) {
        void *p = s_heap.base + i * OBJECT;
        *(uint64_t *)p = s_heap.free_key;
        t_set->magazines[object_class].items[i] = p;
    }
    t_set->magazines[object_class].count = 32;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000000L, i;
    double best_call = 1e30, best_model = 1e30, best_unchecked = 1e30, best_glibc = 1e30;
    int r;
    void *volatile sink;
    setup();
    for (r = 0; r < REPEATS; ++r) {
        double t = now_ns();
        for (i = 0; i < n; ++i) {
            empty_call((void *)i);
            empty_call((void *)i);
        }
        t = (now_ns() - t) / (double)n;
        best_call = t < best_call ? t : best_call;
        t = now_ns();
        for (i = 0; i < n; ++i) {
            void *p = model_malloc(OBJECT);
            if (!model_free(p)) {
                slow();
            }
        }
        t = (now_ns() - t) / (double)n;
        best_model = t < best_model ? t : best_model;
        t = now_ns();
        for (i = 0; i < n; ++i) {
            void *p = model_malloc(OBJECT);
            if (!model_free_unchecked(p)) {
                slow();
            }
        }
        t = (now_ns() - t) / (double)n;
        best_unchecked = t < best_unchecked ? t : best_unchecked;
        t = now_ns();
        for (i = 0; i < n; ++i) {
            void *p = malloc(OBJECT);
            sink = p;
            free(p);
        }
        t = (now_ns() - t) / (double)n;
        best_glibc = t < best_glibc ? t : best_glibc;
    }
    (void)sink;
    printf("floor (C model of the object fast path, gcc -O2), best of %d x %ld:\n", REPEATS, n);
    printf("  two empty noinline calls   %6.2f ns\n", best_call);
    printf("  model pair (64 B)          %6.2f ns\n", best_model);
    printf("  work (pair - 2 calls)      %6.2f ns\n", best_model - best_call);
    printf("  work without the bad-pointer checks %6.2f ns\n", best_unchecked - best_call);
    printf("  glibc malloc(64) + free    %6.2f ns\n", best_glibc);
    return 0;
}
