using System.Runtime.InteropServices;

namespace Numalloc.Native;

/// <summary>
/// The C ABI declared in <c>include/numalloc.h</c>. Each export is a thin shim over
/// <see cref="NativeRuntime"/>; no exception ever crosses an export (an unhandled exception in
/// an <see cref="UnmanagedCallersOnlyAttribute"/> method would take the whole process down).
/// </summary>
internal static class Exports
{
    /// <summary><c>int na_node_count(void)</c>: the number of NUMA nodes, at least 1; -1 if initialization failed.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_node_count")]
    internal static int NodeCount()
    {
        try
        {
            return NativeRuntime.NodeCount();
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes the documented -1.
        catch (Exception)
#pragma warning restore CA1031
        {
            return -1;
        }
    }
}
