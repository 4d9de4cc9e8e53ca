using System.Runtime.InteropServices;

namespace Numalloc.Native;

/// <summary>
/// Benchmark-only exports, used by <c>bench/crossing.c</c> to time the C → NativeAOT crossing.
/// Not part of the numalloc ABI: they are declared in <c>bench/na_bench.h</c>, never in
/// <c>include/numalloc.h</c>, and may change or vanish without notice.
/// </summary>
internal static class BenchExports
{
    // One counter per thread: what a per-thread magazine lookup costs inside an export.
    [ThreadStatic]
    private static int t_counter;

    /// <summary><c>void na_bench_noop(void)</c>: does nothing; times the bare crossing.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_noop")]
    internal static void Noop()
    {
    }

    /// <summary><c>int na_bench_tls(void)</c>: increments this thread's counter and returns it; times a thread-static access inside an export.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_tls")]
    internal static int ThreadStatic()
    {
        return unchecked(++t_counter); // wraps after 2^31 calls, also in Debug
    }
}
