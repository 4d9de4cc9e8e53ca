namespace Numalloc.Caches;

/// <summary>
/// Whether <see cref="Interlocked.MemoryBarrierProcessWide"/> really fences every other running
/// thread of the process, decided once at start-up. The magazine protocol (<see cref="MagazineSet"/>)
/// leaves the owner's fast path without a fence only when it does.
/// </summary>
/// <remarks>
/// <para>On Linux .NET implements the process-wide barrier with
/// <c>membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)</c> when the kernel offers it (registering at
/// start-up), else with an <c>mprotect</c> trick whose TLB shootdown interrupts other cores on x86-64
/// but not on arm64, where the hardware broadcasts invalidations without interrupting anyone. Only
/// the private expedited command counts here: the global command alone is never what .NET calls.</para>
/// <para>On Windows <c>FlushProcessWriteBuffers</c> always interrupts the other processors. Elsewhere
/// the answer is "no" and owners fence.</para>
/// </remarks>
internal static class MembarrierSupport
{
    /// <summary>The environment variable that forces the owner-fence fallback (tests; "1" forces).</summary>
    internal const string ForceOwnerFenceVariable = "NUMALLOC_FORCE_OWNER_FENCE";

    /// <summary>True when the process-wide barrier fences every running thread of this process.</summary>
    internal static readonly bool IsAvailable = Query();

    /// <summary>
    /// True when owners must fence between their <c>InAllocator</c> store and their <c>Pending</c> load:
    /// membarrier is unavailable, or <see cref="ForceOwnerFenceVariable"/> is "1". Static readonly, so
    /// the tier-1 JIT folds the test away on the owner's fast path.
    /// </summary>
    internal static readonly bool OwnerNeedsFence =
        !IsAvailable || Environment.GetEnvironmentVariable(ForceOwnerFenceVariable) == "1";

    /// <summary>The kernel's answer to <c>MEMBARRIER_CMD_QUERY</c>, or -1 where not Linux or it failed.</summary>
    internal static int QueryMask() =>
        OperatingSystem.IsLinux() ? Interop.Libc.Membarrier(Interop.Libc.MembarrierCmdQuery, 0) : -1;

    private static bool Query()
    {
        if (OperatingSystem.IsWindows())
        {
            return true;
        }

        int mask = QueryMask();
        return mask > 0 && (mask & Interop.Libc.MembarrierCmdPrivateExpedited) != 0;
    }
}
