using System.Runtime.Versioning;
using Mono.Unix.Native;

namespace Numalloc.Platform;

/// <summary>
/// The mmap family through Mono.Posix.NETStandard (<c>Mono.Unix.Native.Syscall</c>), the managed
/// library's default (DESIGN.md: the user's choice). Mono.Posix reaches libc through its helper
/// <c>libMonoPosixHelper.so</c>, loaded on the first call.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed unsafe class MonoPosixMmapFamily : IMmapFamily
{
    /// <summary>The one instance; the type holds no state.</summary>
    internal static readonly MonoPosixMmapFamily Instance = new();

    private MonoPosixMmapFamily()
    {
    }

    /// <inheritdoc/>
    public string Name => "Mono.Posix";

    /// <inheritdoc/>
    public int QueryPageSize(out nuint pageSize)
    {
        long value = Syscall.sysconf(SysconfName._SC_PAGESIZE);
        pageSize = value > 0 ? (nuint)value : 0;
        return value > 0 ? 0 : ErrnoOrInvalid();
    }

    /// <inheritdoc/>
    public int QueryConfiguredCpuCount(out int cpuCount)
    {
        long value = Syscall.sysconf(SysconfName._SC_NPROCESSORS_CONF);
        cpuCount = value > 0 ? (int)Math.Min(value, int.MaxValue) : 0;
        return value > 0 ? 0 : ErrnoOrInvalid();
    }

    /// <inheritdoc/>
    public int MapInaccessible(nuint sizeBytes, out void* start)
    {
        nint mapped = Syscall.mmap(
            IntPtr.Zero,
            sizeBytes,
            MmapProts.PROT_NONE,
            MmapFlags.MAP_PRIVATE | MmapFlags.MAP_ANONYMOUS | MmapFlags.MAP_NORESERVE,
            -1,
            0);
        if (mapped == Syscall.MAP_FAILED)
        {
            start = null;
            return ErrnoOrInvalid();
        }

        start = (void*)mapped;
        return 0;
    }

    /// <inheritdoc/>
    public int Unmap(void* address, nuint sizeBytes) =>
        Syscall.munmap((nint)address, sizeBytes) == 0 ? 0 : ErrnoOrInvalid();

    /// <inheritdoc/>
    public int Protect(void* address, nuint sizeBytes, bool readWrite) =>
        Syscall.mprotect((nint)address, sizeBytes, readWrite ? MmapProts.PROT_READ | MmapProts.PROT_WRITE : MmapProts.PROT_NONE) == 0
            ? 0
            : ErrnoOrInvalid();

    // Mono.Posix's Errno values are the Linux numbers; 0 after a failure still reads as one.
    private static int ErrnoOrInvalid()
    {
        int errno = (int)Stdlib.GetLastError();
        return errno != 0 ? errno : Interop.Libc.EINVAL;
    }
}
