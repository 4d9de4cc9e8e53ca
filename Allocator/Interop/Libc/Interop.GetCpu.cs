namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// <c>long getcpu(unsigned *cpu, unsigned *node, struct getcpu_cache *unused)</c>;
        /// through syscall() because glibc only added a wrapper in 2.29 and musl differs.
        /// </summary>
        internal static unsafe nint GetCpu(uint* cpu, uint* node) =>
            Syscall(SyscallNumbers.GetCpu, (nint)cpu, (nint)node, 0, 0, 0, 0);
    }
}
