namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        /// <summary>The library every Kernel32 declaration binds to.</summary>
        internal const string LibraryName = "kernel32";

        // Win32 error codes the platform seam maps or reports.
        internal const int ERROR_NOT_ENOUGH_MEMORY = 8;
        internal const int ERROR_INVALID_PARAMETER = 87;
        internal const int ERROR_INVALID_ADDRESS = 487;
    }
}
