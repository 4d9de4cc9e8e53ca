using System.Runtime.InteropServices;

namespace Numalloc.VmProbe;

/// <summary>The libc calls the probe needs and the allocator does not make.</summary>
internal static unsafe partial class Native
{
    /// <summary><c>int sched_setaffinity(pid_t pid, size_t cpusetsize, const cpu_set_t *mask)</c>; 0 or -1 and errno.</summary>
    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    internal static partial int SchedSetAffinity(int pid, nuint cpuSetSize, ulong* mask);

    /// <summary>Pins the calling thread to one CPU; the kernel moves it there before returning.</summary>
    /// <exception cref="InvalidOperationException">The kernel refused.</exception>
    public static void PinCurrentThread(int cpu)
    {
        // A 1024-CPU cpu_set_t, glibc's default size.
        const int Words = 1024 / 64;
        ulong* mask = stackalloc ulong[Words];
        new Span<ulong>(mask, Words).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        if (SchedSetAffinity(0, Words * sizeof(ulong), mask) != 0)
            throw new InvalidOperationException($"sched_setaffinity(0, cpu {cpu}) failed: errno {Marshal.GetLastPInvokeError()}");
    }
}
