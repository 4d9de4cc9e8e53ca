using System.Runtime.CompilerServices;

namespace Numalloc.Platform;

/// <summary>The current-CPU hint shared by every platform: the virtual CPU, else the runtime's.</summary>
internal static class PlatformCpu
{
    /// <summary>Calls served from a thread's cached hint before it is re-derived (the design's "every few dozen").</summary>
    internal const int HintUses = 64;

    // One unit of "uses left" in t_hint.
    private const long UseUnit = 1L << 32;

    // The calling thread's hint: bits 0..31 the CPU id, bits 32..62 the uses left; 0 = none yet.
    // One thread-static for the whole fast path (each access is a call into the TLS resolver).
    [ThreadStatic]
    private static long t_hint;

    /// <summary>
    /// The calling thread's <see cref="VirtualCpu"/> when set, else <see cref="Thread.GetCurrentProcessorId"/>
    /// (cached by the runtime, possibly stale). A hint only: callers index per-CPU tables with it
    /// modulo their size and never depend on it for correctness.
    /// </summary>
    /// <remarks>
    /// The answer is cached per thread and re-derived every <see cref="HintUses"/> calls, so the
    /// fast path costs one thread-static access; <see cref="VirtualCpu.Set"/> and
    /// <see cref="VirtualCpu.Clear"/> drop the cached answer, so a virtual CPU is always exact.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Current()
    {
        ref long hint = ref t_hint;
        long value = hint;
        if (value >= UseUnit)
        {
            hint = value - UseUnit;
            return (int)value;
        }

        return Refresh();
    }

    /// <summary>Drops the calling thread's cached hint (its virtual CPU changed).</summary>
    internal static void Forget() => t_hint = 0;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Refresh()
    {
        int cpu = VirtualCpu.TryGet(out int virtualCpu) ? virtualCpu : Thread.GetCurrentProcessorId();
        t_hint = ((HintUses - 1) * UseUnit) | (uint)cpu;
        return cpu;
    }
}
