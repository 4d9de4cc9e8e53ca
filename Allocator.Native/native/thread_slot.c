/* The calling thread's magazine-set pointer for the shared library's object fast paths, in an
 * initial-exec TLS slot (a copy of the managed thread-static: Allocator.Native/ThreadSetSlot.cs).
 *
 * ILC compiles a managed [ThreadStatic] in a shared library to the general-dynamic model: every
 * access calls __tls_get_addr (.NET 9 has no switch for initial-exec, dotnet/runtime#87642).
 * na_malloc and na_free read the set once per call, so the shared build reads it here instead: a
 * %fs-relative load behind a direct call (managed code reaches it through DirectPInvoke with
 * SuppressGCTransition, no transition). Initial-exec in a shared object takes 8 bytes of glibc's
 * static TLS surplus when the library is dlopen()ed; jemalloc's libjemalloc.so does the same.
 * The static library does not link this file: there the linker relaxes the thread-static to a
 * %fs-relative load already. */

static __thread void *thread_magazine_set __attribute__((tls_model("initial-exec")));

__attribute__((visibility("hidden"))) void **numalloc_thread_set_slot(void)
{
    return &thread_magazine_set;
}

