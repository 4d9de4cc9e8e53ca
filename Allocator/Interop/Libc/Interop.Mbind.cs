namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>Default policy: allocate on the node of the faulting CPU.</summary>
        internal const int MPOL_DEFAULT = 0;

        /// <summary>Prefer the one node in the mask, fall back to others when it is full.</summary>
        internal const int MPOL_PREFERRED = 1;

        /// <summary>Allocate only from the nodes in the mask; OOM rather than fall back.</summary>
        internal const int MPOL_BIND = 2;

        /// <summary>get_mempolicy: report the policy of the range containing the address.</summary>
        internal const int MPOL_F_ADDR = 1 << 1;

        /// <summary>
        /// <c>long mbind(void *addr, unsigned long len, int mode, const unsigned long *nodemask,
        /// unsigned long maxnode, unsigned int flags)</c>; 0 on success, -1 and errno on failure.
        /// </summary>
        internal static unsafe nint Mbind(void* address, nuint length, int mode, ulong* nodemask, nuint maxNode, uint flags) =>
            Syscall(SyscallNumbers.Mbind, (nint)address, (nint)length, mode, (nint)nodemask, (nint)maxNode, (nint)flags);

        /// <summary>
        /// <c>long get_mempolicy(int *mode, unsigned long *nodemask, unsigned long maxnode,
        /// void *addr, unsigned long flags)</c>; 0 on success, -1 and errno on failure.
        /// </summary>
        internal static unsafe nint GetMempolicy(int* mode, ulong* nodemask, nuint maxNode, void* address, nuint flags) =>
            Syscall(SyscallNumbers.GetMempolicy, (nint)mode, (nint)nodemask, (nint)maxNode, (nint)address, (nint)flags, 0);
    }
}
