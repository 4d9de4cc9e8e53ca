using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        /// <summary>PSAPI_WORKING_SET_EX_INFORMATION: an address in, its attribute bits out.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct PSAPI_WORKING_SET_EX_INFORMATION
        {
            internal void* VirtualAddress;

            // Bit 0 Valid (resident), bits 16..21 Node (PSAPI_WORKING_SET_EX_BLOCK).
            internal nuint VirtualAttributes;
        }

        /// <summary>
        /// <c>BOOL K32QueryWorkingSetEx(HANDLE, PVOID, DWORD cb)</c>: the kernel32 export of
        /// psapi's QueryWorkingSetEx, so no psapi.dll dependency.
        /// </summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static unsafe partial bool K32QueryWorkingSetEx(nint process, PSAPI_WORKING_SET_EX_INFORMATION* information, uint sizeBytes);
    }
}
