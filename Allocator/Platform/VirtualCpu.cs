using System.Runtime.CompilerServices;

namespace Numalloc.Platform;

/// <summary>
/// A per-thread CPU id that overrides the real one, so tests, the drill and benchmarks can say
/// "this thread runs on CPU 5" (and so on node N of a simulated topology) deterministically,
/// even on a two-core machine. Unset by default; each thread sets its own.
/// </summary>
internal static class VirtualCpu
{
    // CPU id plus one, so the default 0 means "unset" and no thread needs initialization.
    [ThreadStatic]
    private static int t_cpuPlusOne;

    /// <summary>Makes <paramref name="cpu"/> the calling thread's CPU until <see cref="Clear"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is negative or int.MaxValue.</exception>
    public static void Set(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfEqual(cpu, int.MaxValue);
        t_cpuPlusOne = cpu + 1;
        PlatformCpu.Forget();
    }

    /// <summary>Removes the calling thread's virtual CPU; the real processor id is used again.</summary>
    public static void Clear()
    {
        t_cpuPlusOne = 0;
        PlatformCpu.Forget();
    }

    /// <summary>Gets the calling thread's virtual CPU, if one is set.</summary>
    /// <param name="cpu">The virtual CPU, or -1 when none is set.</param>
    /// <returns>True when a virtual CPU is set on this thread.</returns>
    // Read by PlatformCpu when it re-derives its cached hint.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryGet(out int cpu)
    {
        cpu = t_cpuPlusOne - 1;
        return cpu >= 0;
    }
}
