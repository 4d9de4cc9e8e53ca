using System.Runtime.InteropServices;
using Numalloc.Topology;

namespace Numalloc.Native;

/// <summary>
/// The C ABI declared in <c>include/numalloc.h</c>. Each export is a thin shim over
/// <see cref="NativeRuntime"/> in the shape <see cref="ExportGuard"/> describes: no exception
/// ever crosses an export (it would take the whole process down), failures set C errno.
/// </summary>
internal static class Exports
{
    /// <summary>
    /// <c>int na_node_count(void)</c>: the number of NUMA nodes, at least 1; -1 with errno ENOMEM
    /// when initialization failed (a bad <c>NUMALLOC_CONFIG</c>: every call then fails the same way).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_node_count")]
    internal static int NodeCount()
    {
        try
        {
            NumaTopology? topology = NativeRuntime.Topology;
            return topology is null ? ExportGuard.MinusOne(Interop.Libc.ENOMEM) : topology.NodeCount;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }
}
