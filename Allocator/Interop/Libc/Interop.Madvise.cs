using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// Drop the pages now; a private anonymous page reads back as zero on its next touch.
        /// Only through <c>madvise</c>: glibc's <c>posix_madvise</c> ignores POSIX_MADV_DONTNEED
        /// because the POSIX meaning (a hint) differs from Linux's (destroy the contents).
        /// </summary>
        internal const int MADV_DONTNEED = 4;

        /// <summary><c>int madvise(void *addr, size_t length, int advice)</c>; 0 or -1 and errno.</summary>
        [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
        internal static unsafe partial int Madvise(void* address, nuint length, int advice);
    }
}
