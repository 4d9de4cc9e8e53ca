using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        internal const uint MEM_COMMIT = 0x00001000;
        internal const uint MEM_RESERVE = 0x00002000;
        internal const uint MEM_DECOMMIT = 0x00004000;
        internal const uint MEM_RELEASE = 0x00008000;
        internal const uint PAGE_NOACCESS = 0x01;
        internal const uint PAGE_READWRITE = 0x04;

        /// <summary><c>LPVOID VirtualAlloc(LPVOID, SIZE_T, DWORD, DWORD)</c>; null and GetLastError on failure.</summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        internal static unsafe partial void* VirtualAlloc(void* address, nuint sizeBytes, uint allocationType, uint protect);

        /// <summary><c>BOOL VirtualFree(LPVOID, SIZE_T, DWORD)</c>; MEM_RELEASE needs the reservation base and size 0.</summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static unsafe partial bool VirtualFree(void* address, nuint sizeBytes, uint freeType);

        /// <summary><c>HANDLE GetCurrentProcess(void)</c>: a pseudo-handle, never closed.</summary>
        [LibraryImport(LibraryName)]
        internal static partial nint GetCurrentProcess();
    }
}
