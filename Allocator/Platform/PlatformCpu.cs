using System.Runtime.CompilerServices;

namespace Numalloc.Platform;

/// <summary>The current-CPU hint shared by every platform: the virtual CPU, else the runtime's.</summary>
internal static class PlatformCpu
{
    /// <summary>
    /// The calling thread's <see cref="VirtualCpu"/> when set, else <see cref="Thread.GetCurrentProcessorId"/>
    /// (cached by the runtime, possibly stale). A hint only: callers index per-CPU tables with it
    /// modulo their size and never depend on it for correctness.
    /// </summary>
    // On the allocation fast path: a thread-static read and a branch, inlined into callers.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Current() => VirtualCpu.TryGet(out int cpu) ? cpu : Thread.GetCurrentProcessorId();
}
