using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// <c>int mincore(void *addr, size_t length, unsigned char *vec)</c>: bit 0 of each byte
        /// of <paramref name="residency"/> says whether that page is resident. Used by
        /// diagnostics and tests to see that a decommit or purge really dropped the pages.
        /// </summary>
        [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
        internal static unsafe partial int Mincore(void* address, nuint length, byte* residency);
    }
}
