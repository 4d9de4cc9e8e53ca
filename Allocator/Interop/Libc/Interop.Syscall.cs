using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// glibc's <c>syscall(long number, ...)</c>. Declared with six fixed word-sized arguments:
        /// glibc implements it in assembly that only moves registers (no va_list), and on
        /// x86-64 SysV and arm64 AAPCS64 integer variadic arguments travel in the same registers
        /// as fixed ones, so the fixed signature is call-compatible. Unused arguments pass 0.
        /// </summary>
        [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
        internal static partial nint Syscall(nint number, nint arg1, nint arg2, nint arg3, nint arg4, nint arg5, nint arg6);

        /// <summary>
        /// Raw syscall numbers for the calls glibc does not wrap (libnuma does, but we do not
        /// depend on it). x86-64 from asm/unistd_64.h; arm64 uses asm-generic/unistd.h.
        /// </summary>
        internal static class SyscallNumbers
        {
            // -1 on an unsupported architecture: the kernel answers ENOSYS, which surfaces as a
            // PlatformException naming the call instead of a type-initializer failure.
            internal static readonly nint Mbind = Select(x64: 237, arm64: 235);
            internal static readonly nint GetMempolicy = Select(x64: 239, arm64: 236);
            internal static readonly nint MovePages = Select(x64: 279, arm64: 239);
            internal static readonly nint GetCpu = Select(x64: 309, arm64: 168);

            private static nint Select(nint x64, nint arm64) => RuntimeInformation.ProcessArchitecture switch
            {
                Architecture.X64 => x64,
                Architecture.Arm64 => arm64,
                _ => -1,
            };
        }
    }
}
