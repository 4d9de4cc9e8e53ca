namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// <c>int membarrier(int cmd, unsigned flags, int cpu_id)</c> through <see cref="Syscall"/>:
        /// glibc has no wrapper. Returns the command's result, or -1 with errno set.
        /// </summary>
        internal static int Membarrier(int cmd, uint flags) =>
            (int)Syscall(MembarrierSyscallNumber, cmd, (nint)flags, 0, 0, 0, 0);

        /// <summary>Asks which membarrier commands the kernel supports (a bit mask of commands).</summary>
        internal const int MembarrierCmdQuery = 0;

        /// <summary>The legacy process-wide barrier (MEMBARRIER_CMD_SHARED); not what .NET calls.</summary>
        internal const int MembarrierCmdGlobal = 1;

        /// <summary>The barrier .NET's FlushProcessWriteBuffers issues after registering for it at start-up.</summary>
        internal const int MembarrierCmdPrivateExpedited = 8;

        // x86-64 asm/unistd_64.h: 324; arm64 asm-generic/unistd.h: 283; -1 elsewhere (ENOSYS).
        private static readonly nint MembarrierSyscallNumber = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 324,
            Architecture.Arm64 => 283,
            _ => -1,
        };
    }
}
