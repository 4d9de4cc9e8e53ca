using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        /// <summary>SYSTEM_INFO, as laid out by winbase.h.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct SYSTEM_INFO
        {
            internal ushort ProcessorArchitecture;
            internal ushort Reserved;
            internal uint PageSize;
            internal void* MinimumApplicationAddress;
            internal void* MaximumApplicationAddress;
            internal nuint ActiveProcessorMask;
            internal uint NumberOfProcessors;
            internal uint ProcessorType;
            internal uint AllocationGranularity;
            internal ushort ProcessorLevel;
            internal ushort ProcessorRevision;
        }

        /// <summary><c>void GetSystemInfo(LPSYSTEM_INFO)</c>.</summary>
        [LibraryImport(LibraryName)]
        internal static unsafe partial void GetSystemInfo(SYSTEM_INFO* systemInfo);
    }
}
