using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        /// <summary>GROUP_AFFINITY: a processor group and a mask of processors within it.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct GROUP_AFFINITY
        {
            internal nuint Mask;
            internal ushort Group;
            internal ushort Reserved0;
            internal ushort Reserved1;
            internal ushort Reserved2;
        }

        /// <summary>PROCESSOR_NUMBER: group and number within the group.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PROCESSOR_NUMBER
        {
            internal ushort Group;
            internal byte Number;
            internal byte Reserved;
        }

        /// <summary><c>BOOL GetNumaHighestNodeNumber(PULONG)</c>.</summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static unsafe partial bool GetNumaHighestNodeNumber(uint* highestNodeNumber);

        /// <summary><c>BOOL GetNumaNodeProcessorMaskEx(USHORT, PGROUP_AFFINITY)</c>; fails for a node that does not exist.</summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static unsafe partial bool GetNumaNodeProcessorMaskEx(ushort node, GROUP_AFFINITY* processorMask);

        /// <summary><c>void GetCurrentProcessorNumberEx(PPROCESSOR_NUMBER)</c>.</summary>
        [LibraryImport(LibraryName)]
        internal static unsafe partial void GetCurrentProcessorNumberEx(PROCESSOR_NUMBER* processorNumber);

        /// <summary><c>BOOL GetNumaProcessorNodeEx(PPROCESSOR_NUMBER, PUSHORT)</c>.</summary>
        [LibraryImport(LibraryName, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static unsafe partial bool GetNumaProcessorNodeEx(PROCESSOR_NUMBER* processorNumber, ushort* nodeNumber);

        /// <summary><c>WORD GetMaximumProcessorGroupCount(void)</c>.</summary>
        [LibraryImport(LibraryName)]
        internal static partial ushort GetMaximumProcessorGroupCount();

        /// <summary><c>DWORD GetMaximumProcessorCount(WORD GroupNumber)</c>.</summary>
        [LibraryImport(LibraryName)]
        internal static partial uint GetMaximumProcessorCount(ushort groupNumber);
    }
}
