using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>uid_t geteuid(void)</c>: never fails. The control socket serves peers of this uid only.</summary>
        [LibraryImport("libc", EntryPoint = "geteuid")]
        internal static partial uint Geteuid();
    }
}
