using System.Runtime.InteropServices;
using Numalloc.Movable;

namespace Numalloc.Native;

internal static unsafe partial class Exports
{
    /*
     * Movable buffers by handle (na_handle_t = uint64_t, 0 never valid): the C side holds the handle
     * value of a MovableBuffer; the exports pin, unpin and free through MovableHeap by that value, so
     * no managed object has to stay reachable for C (the handle table in native memory is the state).
     */

    /// <summary>
    /// <c>na_handle_t na_movable_alloc(size_t size, int node)</c>: a movable buffer of <paramref name="size"/> bytes
    /// (0: the minimum, up to 4 MiB) on <paramref name="node"/> first (-1: the calling thread's); 0 with
    /// EINVAL for a node that does not exist, ENOMEM when too large or no zone could serve it.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_movable_alloc")]
    internal static ulong MovableAlloc(nuint size, int node)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null || size > MovableHeap.MaxSizeBytes)
                return NoHandle(Interop.Libc.ENOMEM);
            if (node < -1 || node >= allocator.NodeCount)
                return NoHandle(Interop.Libc.EINVAL);
            MovableBuffer? buffer = allocator.TryAllocateMovable(size == 0 ? 1 : (int)size, node);
            return buffer is null ? NoHandle(Interop.Libc.ENOMEM) : buffer.Handle;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes 0 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            _ = ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
            return 0;
        }
    }

    /// <summary>
    /// <c>void *na_pin(na_handle_t h)</c>: pins the buffer and returns its address, valid until the matching
    /// <c>na_unpin</c>; waits briefly while a migration of it runs. NULL with EINVAL for a freed or unknown handle.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_pin")]
    internal static void* Pin(ulong handle)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            return allocator is null ? ExportGuard.Null(Interop.Libc.EINVAL) : allocator.Movable.Pin(handle);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL and errno.
        catch (Exception e)
#pragma warning restore CA1031
        {
            // A stale handle or too many pins is the caller's error; anything else is reported as a bug.
            return e is ArgumentException or ObjectDisposedException or InvalidOperationException
                ? ExportGuard.Null(e is InvalidOperationException and not ObjectDisposedException ? Interop.Libc.EBUSY : Interop.Libc.EINVAL)
                : ExportGuard.Null(e, Interop.Libc.EINVAL);
        }
    }

    /// <summary><c>void na_unpin(na_handle_t h)</c>: releases one pin; an unknown or unpinned handle is reported on stderr (errno EINVAL) and changes nothing.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_unpin")]
    internal static void Unpin(ulong handle)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                Interop.Libc.SetErrno(Interop.Libc.EINVAL);
            else
                allocator.Movable.Unpin(handle);
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad unpin is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_unpin", e);
        }
    }

    /// <summary>
    /// <c>void na_movable_free(na_handle_t h)</c>: frees the buffer; 0 does nothing; a freed, unknown or pinned
    /// handle is reported on stderr (errno EINVAL) and changes nothing.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_movable_free")]
    internal static void MovableFree(ulong handle)
    {
        try
        {
            if (handle == 0)
                return;
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                Interop.Libc.SetErrno(Interop.Libc.EINVAL);
            else
                allocator.Movable.Free(handle);
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free is reported, never thrown into C.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportBadCall("na_movable_free", e);
        }
    }

    private static ulong NoHandle(int errno)
    {
        Interop.Libc.SetErrno(errno);
        return 0;
    }
}
