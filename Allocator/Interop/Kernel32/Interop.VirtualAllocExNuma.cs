using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        /// <summary>
        /// <c>LPVOID VirtualAllocExNuma(HANDLE, LPVOID, SIZE_T, DWORD, DWORD, DWORD nndPreferred)</c>:
        /// like VirtualAlloc, with a preferred node for the physical pages committed by this call.
        /// </summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        internal static unsafe partial void* VirtualAllocExNuma(nint process, void* address, nuint sizeBytes, uint allocationType, uint protect, uint preferredNode);
    }
}
