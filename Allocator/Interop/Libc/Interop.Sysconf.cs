namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>sysconf name: the page size in bytes (glibc bits/confname.h).</summary>
        internal const int _SC_PAGESIZE = 30;

        /// <summary>sysconf name: the processors configured, online or not (glibc bits/confname.h).</summary>
        internal const int _SC_NPROCESSORS_CONF = 83;

        /// <summary>
        /// <c>long sysconf(int name)</c>; -1 and errno on failure (-1 with errno unchanged for an
        /// unlimited value). C <c>long</c> is pointer-sized on LP64 Linux, hence <c>nint</c>.
        /// </summary>
        [LibraryImport("libc", EntryPoint = "sysconf", SetLastError = true)]
        internal static partial nint Sysconf(int name);
    }
}
