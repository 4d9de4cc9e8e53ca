using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Numalloc.Caches;
using Numalloc.Objects;

namespace Numalloc.Native;

/// <summary>
/// The C ABI declared in <c>include/numalloc.h</c>, over <see cref="NumaAllocator.Shared"/>. Each export
/// is a thin shim in the shape <see cref="ExportGuard"/> describes: no exception ever crosses an export
/// (it would take the whole process down), failures set C errno. This part: the malloc family.
/// </summary>
/// <remarks>
/// <c>na_malloc</c> and <c>na_free</c> (and the bulk calls) read the object heap from <see cref="FastPath"/>
/// and try the object heap's magazine fast path inline, so a pair costs the two crossings plus the
/// magazine pop and push; everything else (first call, misses, errors) goes through small slow helpers.
/// </remarks>
internal static unsafe partial class Exports
{
    // PTRDIFF_MAX: C says no object may be larger, and glibc fails such requests with ENOMEM.
    private static nuint MaxRequestBytes => (nuint)nint.MaxValue;

    /// <summary><c>void *na_malloc(size_t size)</c>: at least <paramref name="size"/> bytes (0: a unique pointer); NULL and ENOMEM on failure.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_malloc")]
    [SkipLocalsInit] // nothing to zero: no stackalloc, and the runtime's transition frame is filled by the runtime
    internal static void* Malloc(nuint size)
    {
        try
        {
            // The thread's set first: see ObjectHeap.TryAllocateSmallFast.
            MagazineSet* set = ThreadSetSlot.Current;
            ObjectHeap? heap = FastPath.Heap;
            if (heap is not null && size <= SizeClasses.MaxSmallSize)
            {
                void* p = heap.TryAllocateSmallFast(set, size);
                if (p != null)
                    return p;
            }
            return MallocSlow(size);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.Null(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>void na_free(void *p)</c>: frees; NULL does nothing; a bad pointer is reported on stderr (or aborts, <c>on_bad_free=abort</c>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_free")]
    [SkipLocalsInit] // as na_malloc
    internal static void Free(void* p)
    {
        try
        {
            MagazineSet* set = ThreadSetSlot.Current; // first, as in na_malloc
            ObjectHeap? heap = FastPath.Heap;
            if (heap is not null && heap.TryFreeFast(set, p))
                return;
            if (p != null)
                FreeSlow(p);
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_free", e);
        }
    }

    /// <summary><c>void na_free_sized(void *p, size_t size)</c>: as <c>na_free</c>; the size is a hint the allocator does not need.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_free_sized")]
    [SkipLocalsInit] // as na_malloc
    internal static void FreeSized(void* p, nuint size)
    {
        try
        {
            _ = size; // every allocation knows its size class from its page descriptor
            MagazineSet* set = ThreadSetSlot.Current; // first, as in na_malloc
            ObjectHeap? heap = FastPath.Heap;
            if (heap is not null && heap.TryFreeFast(set, p))
                return;
            if (p != null)
                FreeSlow(p);
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_free_sized", e);
        }
    }

    /// <summary><c>void *na_calloc(size_t n, size_t size)</c>: <paramref name="n"/> * <paramref name="size"/> zeroed bytes; NULL and ENOMEM on overflow or failure.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_calloc")]
    internal static void* Calloc(nuint n, nuint size)
    {
        try
        {
            ulong high = Math.BigMul((ulong)n, (ulong)size, out ulong bytes);
            if (high != 0 || bytes > MaxRequestBytes)
                return ExportGuard.Null(Interop.Libc.ENOMEM);
            void* p = AllocateOrNull((nuint)bytes, 0, -1);
            if (p == null)
                return ExportGuard.Null(Interop.Libc.ENOMEM);
            NativeMemory.Clear(p, (nuint)bytes); // recycled objects and pages hold old contents
            return p;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.Null(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary>
    /// <c>void *na_realloc(void *p, size_t size)</c>: resizes, keeping the contents; NULL <paramref name="p"/>
    /// allocates; size 0 gives a minimum allocation (like <c>na_malloc(0)</c>, the old one is gone). NULL with
    /// ENOMEM when it could not (<paramref name="p"/> still valid), or EINVAL for a pointer that is not a live allocation (reported on stderr).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_realloc")]
    internal static void* Realloc(void* p, nuint size)
    {
        try
        {
            if (size > MaxRequestBytes)
                return ExportGuard.Null(Interop.Libc.ENOMEM);
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.Null(Interop.Libc.ENOMEM);
            void* moved;
            try
            {
                moved = allocator.Heap.Reallocate(p, size);
            }
            catch (InvalidOperationException e)
            {
                ReportBadCall("na_realloc", e);
                return ExportGuard.Null(Interop.Libc.EINVAL);
            }
            return moved != null ? moved : ExportGuard.Null(Interop.Libc.ENOMEM);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.Null(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>void *na_aligned_alloc(size_t alignment, size_t size)</c>: NULL with EINVAL for an alignment that is not a power of two &gt;= sizeof(void*), ENOMEM when it cannot be served.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_aligned_alloc")]
    internal static void* AlignedAlloc(nuint alignment, nuint size)
    {
        try
        {
            int error = AllocateAligned(alignment, size, out void* p);
            return error == 0 ? p : ExportGuard.Null(error);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.Null(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary>
    /// <c>int na_posix_memalign(void **out, size_t alignment, size_t size)</c>: 0 and the memory in *out; else
    /// EINVAL (bad alignment, or out NULL) or ENOMEM, returned (errno untouched, as POSIX says) with *out untouched.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_posix_memalign")]
    internal static int PosixMemalign(void** result, nuint alignment, nuint size)
    {
        try
        {
            if (result == null)
                return Interop.Libc.EINVAL;
            int error = AllocateAligned(alignment, size, out void* p);
            if (error == 0)
                *result = p;
            return error;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes its error number.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return -ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>size_t na_malloc_usable_size(const void *p)</c>: usable bytes at <paramref name="p"/> (&gt;= the size asked); 0 for NULL, or with EINVAL for a pointer that is not a live allocation.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_malloc_usable_size")]
    internal static nuint MallocUsableSize(void* p)
    {
        try
        {
            if (p == null)
                return 0;
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
            {
                Interop.Libc.SetErrno(Interop.Libc.EINVAL);
                return 0;
            }
            return allocator.UsableSize(p);
        }
#pragma warning disable CA1031 // The C ABI boundary: a pointer that is not ours gives 0 and EINVAL.
        catch (Exception e)
#pragma warning restore CA1031
        {
            // Not a live allocation is the caller's error (EINVAL); anything else is reported as a bug.
            _ = e is InvalidOperationException ? ExportGuard.MinusOne(Interop.Libc.EINVAL) : ExportGuard.MinusOne(e, Interop.Libc.EINVAL);
            return 0;
        }
    }

    /// <summary><c>void *na_malloc_onnode(size_t size, int node)</c>: memory of <paramref name="node"/> only; NULL with EINVAL for a node that does not exist, ENOMEM when that node cannot serve.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_malloc_onnode")]
    internal static void* MallocOnNode(nuint size, int node)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null || size > MaxRequestBytes)
                return ExportGuard.Null(Interop.Libc.ENOMEM);
            if ((uint)node >= (uint)allocator.NodeCount)
                return ExportGuard.Null(Interop.Libc.EINVAL);
            void* p = allocator.TryAllocateOnNode(size, node);
            return p != null ? p : ExportGuard.Null(Interop.Libc.ENOMEM);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.Null(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_node_of(const void *p)</c>: the node of the memory at <paramref name="p"/>; -1 when it is not numalloc's (or NULL).</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_node_of")]
    internal static int NodeOf(void* p)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            return allocator is null ? -1 : allocator.NodeOf(p);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.EINVAL);
        }
    }

    /// <summary>
    /// <c>int na_node_count(void)</c>: the number of NUMA nodes, at least 1; -1 with errno ENOMEM
    /// when initialization failed (a bad <c>NUMALLOC_CONFIG</c>: every call then fails the same way).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_node_count")]
    internal static int NodeCount()
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            return allocator is null ? ExportGuard.MinusOne(Interop.Libc.ENOMEM) : allocator.NodeCount;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary>
    /// <c>size_t na_malloc_bulk(size_t size, void **out, size_t n)</c>: fills <paramref name="result"/>[0..] with up to
    /// <paramref name="n"/> allocations of <paramref name="size"/> bytes in one crossing; returns how many (fewer than
    /// <paramref name="n"/> only on failure, with errno ENOMEM, or EINVAL for out NULL).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_malloc_bulk")]
    internal static nuint MallocBulk(nuint size, void** result, nuint n)
    {
        try
        {
            if (n == 0)
                return 0;
            if (result == null)
            {
                Interop.Libc.SetErrno(Interop.Libc.EINVAL);
                return 0;
            }
            ObjectHeap? heap = FastPath.Heap;
            if (heap is null || size > SizeClasses.MaxSmallSize)
                return MallocBulkSlow(size, result, 0, n);
            nuint filled = heap.AllocateSmallBulk(size, result, n);
            if (filled < n)
                Interop.Libc.SetErrno(Interop.Libc.ENOMEM);
            return filled;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes a short count and errno.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _ = ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
            return 0;
        }
    }

    /// <summary><c>void na_free_bulk(void **ptrs, size_t n)</c>: frees each of <paramref name="ptrs"/>[0..n) as <c>na_free</c> does (NULLs skipped, bad pointers reported).</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_free_bulk")]
    internal static void FreeBulk(void** ptrs, nuint n)
    {
        try
        {
            if (ptrs == null)
                return;
            ObjectHeap? heap = FastPath.Heap;
            nuint i = 0;
            while (true)
            {
                // Magazine pushes in one protocol entry (none before the allocator exists); whatever
                // stops them (a full magazine, another node's object, a bad pointer) is freed alone
                // through the slow path, then the rest.
                if (heap is not null)
                    i += heap.TryFreeBulkFast(ptrs + i, n - i);
                if (i == n)
                    return;
                FreeOneOfBulk(ptrs[i++]);
            }
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_free_bulk", e);
        }
    }

    /// <summary><c>void na_trim(void)</c>: gives free memory back to the OS now (see <see cref="NumaAllocator.Trim"/>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_trim")]
    internal static void Trim()
    {
        try
        {
            NativeRuntime.Allocator?.Trim();
        }
#pragma warning disable CA1031 // The C ABI boundary: a double free found on the way is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_trim", e);
        }
    }

    /// <summary><c>void na_thread_flush(void)</c>: flushes the calling thread's caches (call it before a thread exits).</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_thread_flush")]
    internal static void ThreadFlush()
    {
        try
        {
            FastPath.Allocator?.FlushCurrentThread();
            ThreadSetSlot.Refresh(); // the flush freed the set the slot may name
        }
#pragma warning disable CA1031 // The C ABI boundary: a double free found on the way is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ThreadSetSlot.Refresh(); // as above, whatever the flush got to
            ReportBadCall("na_thread_flush", e);
        }
    }

    // The allocation slow path: first call (builds the allocator), a magazine miss, sizes above the
    // small classes. Null (the caller sets ENOMEM) when initialization failed or there is no memory.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void* MallocSlow(nuint size)
    {
        void* p = size <= MaxRequestBytes ? AllocateOrNull(size, 0, -1) : null;
        ThreadSetSlot.Refresh(); // the thread's first allocation made its set
        return p != null ? p : ExportGuard.Null(Interop.Libc.ENOMEM);
    }

    // Null when initialization failed or there is no memory; the size is <= PTRDIFF_MAX and the
    // alignment 0 or a power of two, so the allocator has nothing to throw about but a bug.
    private static void* AllocateOrNull(nuint size, nuint alignment, int node)
    {
        NumaAllocator? allocator = NativeRuntime.Allocator;
        return allocator is null ? null : allocator.Heap.AllocateSlow(size, alignment, node);
    }

    // aligned_alloc and posix_memalign: 0 and the memory, or the error number.
    private static int AllocateAligned(nuint alignment, nuint size, out void* p)
    {
        p = null;
        if (alignment < (nuint)sizeof(void*) || (alignment & (alignment - 1)) != 0)
            return Interop.Libc.EINVAL;
        // Beyond these the request cannot be described (the allocator's own limits): no memory.
        if (size > MaxRequestBytes || alignment > MaxRequestBytes / 2 || size > MaxRequestBytes - alignment)
            return Interop.Libc.ENOMEM;
        p = AllocateOrNull(size, alignment, -1);
        return p != null ? 0 : Interop.Libc.ENOMEM;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FreeSlow(void* p)
    {
        NumaAllocator? allocator = NativeRuntime.Allocator;
        if (allocator is null)
        {
            // Nothing was ever allocated: whatever p is, it is not ours.
            ReportBadFree("na_free", p, "not a pointer numalloc handed out (the library failed to initialize)");
            return;
        }
        allocator.Heap.FreeSlow(p);
        ThreadSetSlot.Refresh(); // a thread that only frees makes its set here
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint MallocBulkSlow(nuint size, void** result, nuint filled, nuint n)
    {
        for (; filled < n; filled++)
        {
            void* p = size <= MaxRequestBytes ? AllocateOrNull(size, 0, -1) : null;
            if (p == null)
            {
                Interop.Libc.SetErrno(Interop.Libc.ENOMEM);
                break;
            }
            result[filled] = p;
        }
        return filled;
    }

    // One pointer of na_free_bulk that its fast loop declined (so no second fast attempt): a bad one is
    // reported here, and the caller goes on with the rest.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FreeOneOfBulk(void* p)
    {
        if (p == null)
            return;
        try
        {
            FreeSlow(p);
        }
        catch (InvalidOperationException e)
        {
            ReportBadCall("na_free_bulk", e);
        }
    }

    /// <summary>
    /// Reports what a call found wrong (a bad free: the message names the address and what was wrong)
    /// in one line on stderr, once per bad call; any other exception goes to the export guard's report.
    /// </summary>
    private static void ReportBadCall(string export, Exception e)
    {
        if (e is not InvalidOperationException and not ObjectDisposedException and not ArgumentException)
        {
            _ = ExportGuard.MinusOne(e, Interop.Libc.EINVAL);
            return;
        }
        WriteLine($"numalloc: {export}: {e.Message.ReplaceLineEndings(" ")}");
        Interop.Libc.SetErrno(Interop.Libc.EINVAL);
    }

    private static void ReportBadFree(string export, void* p, string what) =>
        WriteLine($"numalloc: {export}: Bad free of 0x{(nuint)p:X}: {what}; nothing was changed.");

    private static void WriteLine(string line)
    {
        try
        {
            Console.Error.WriteLine(line);
        }
#pragma warning disable CA1031 // stderr closed or full: the report is best effort.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
