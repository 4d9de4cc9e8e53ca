using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // The errno values the platform seam reports or injects. Linux numbers; identical on
        // x86-64 and arm64 (both use asm-generic/errno-base.h and errno.h).
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int EINTR = 4;
        internal const int EIO = 5;
        internal const int EBADF = 9;
        internal const int EAGAIN = 11;
        internal const int ENOMEM = 12;
        internal const int EACCES = 13;
        internal const int EFAULT = 14;
        internal const int EBUSY = 16;
        internal const int EEXIST = 17;
        internal const int ENODEV = 19;
        internal const int EINVAL = 22;
        internal const int ENOSPC = 28;
        internal const int ERANGE = 34;
        internal const int ENOSYS = 38;
        internal const int EOPNOTSUPP = 95;

        /// <summary>The symbolic name of <paramref name="errno"/>, or "errno" when it is not one we name.</summary>
        internal static string ErrnoName(int errno) => errno switch
        {
            EPERM => nameof(EPERM),
            ENOENT => nameof(ENOENT),
            EINTR => nameof(EINTR),
            EIO => nameof(EIO),
            EBADF => nameof(EBADF),
            EAGAIN => nameof(EAGAIN),
            ENOMEM => nameof(ENOMEM),
            EACCES => nameof(EACCES),
            EFAULT => nameof(EFAULT),
            EBUSY => nameof(EBUSY),
            EEXIST => nameof(EEXIST),
            ENODEV => nameof(ENODEV),
            EINVAL => nameof(EINVAL),
            ENOSPC => nameof(ENOSPC),
            ERANGE => nameof(ERANGE),
            ENOSYS => nameof(ENOSYS),
            EOPNOTSUPP => nameof(EOPNOTSUPP),
            _ => "errno",
        };

        /// <summary>
        /// glibc's <c>int *__errno_location(void)</c>: the address of the calling thread's errno
        /// (what the C macro <c>errno</c> expands to). The C exports set errno through it, as
        /// POSIX says a failing malloc-family call does; no SetLastError: it cannot fail.
        /// </summary>
        [LibraryImport("libc", EntryPoint = "__errno_location")]
        internal static unsafe partial int* ErrnoLocation();

        /// <summary>
        /// Sets the calling thread's C errno. Call it last before returning to C: any later
        /// P/Invoke (or the runtime's own calls) may overwrite errno again.
        /// </summary>
        internal static unsafe void SetErrno(int value) => *ErrnoLocation() = value;
    }
}
