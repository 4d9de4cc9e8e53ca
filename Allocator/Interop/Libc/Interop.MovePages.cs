namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// <c>long move_pages(int pid, unsigned long count, void **pages, const int *nodes,
        /// int *status, int flags)</c>. With <paramref name="nodes"/> null nothing moves and
        /// <paramref name="status"/> receives each page's node or a negative errno.
        /// </summary>
        internal static unsafe nint MovePages(int pid, nuint count, void** pages, int* nodes, int* status, int flags) =>
            Syscall(SyscallNumbers.MovePages, pid, (nint)count, (nint)pages, (nint)nodes, (nint)status, flags);
    }
}
