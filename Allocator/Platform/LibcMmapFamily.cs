using System.Runtime.Versioning;

namespace Numalloc.Platform;

/// <summary>
/// The mmap family straight from libc through <c>LibraryImport</c>: nothing to load beyond the
/// C library, so a statically linked <c>libnumalloc.a</c> needs no extra shared object. The
/// native build selects it (<see cref="MmapFamily"/>); tests use it directly.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed unsafe class LibcMmapFamily : IMmapFamily
{
    /// <summary>The one instance; the type holds no state.</summary>
    internal static readonly LibcMmapFamily Instance = new();

    private LibcMmapFamily()
    {
    }

    /// <inheritdoc/>
    public string Name => "libc";

    /// <inheritdoc/>
    public int QueryPageSize(out nuint pageSize)
    {
        nint value = Interop.Libc.Sysconf(Interop.Libc._SC_PAGESIZE);
        pageSize = value > 0 ? (nuint)value : 0;
        return value > 0 ? 0 : ErrnoOrInvalid();
    }

    /// <inheritdoc/>
    public int QueryConfiguredCpuCount(out int cpuCount)
    {
        nint value = Interop.Libc.Sysconf(Interop.Libc._SC_NPROCESSORS_CONF);
        cpuCount = value > 0 ? (int)Math.Min(value, int.MaxValue) : 0;
        return value > 0 ? 0 : ErrnoOrInvalid();
    }

    /// <inheritdoc/>
    public int MapInaccessible(nuint sizeBytes, out void* start)
    {
        void* mapped = Interop.Libc.Mmap(
            null,
            sizeBytes,
            Interop.Libc.PROT_NONE,
            Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_ANONYMOUS | Interop.Libc.MAP_NORESERVE,
            -1,
            0);
        if ((nint)mapped == Interop.Libc.MAP_FAILED)
        {
            start = null;
            return ErrnoOrInvalid();
        }

        start = mapped;
        return 0;
    }

    /// <inheritdoc/>
    public int Unmap(void* address, nuint sizeBytes) =>
        Interop.Libc.Munmap(address, sizeBytes) == 0 ? 0 : ErrnoOrInvalid();

    /// <inheritdoc/>
    public int Protect(void* address, nuint sizeBytes, bool readWrite) =>
        Interop.Libc.Mprotect(address, sizeBytes, readWrite ? Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE : Interop.Libc.PROT_NONE) == 0
            ? 0
            : ErrnoOrInvalid();

    // A failed call with errno 0 (sysconf of an unsupported name) must still read as a failure.
    private static int ErrnoOrInvalid()
    {
        int errno = Marshal.GetLastPInvokeError();
        return errno != 0 ? errno : Interop.Libc.EINVAL;
    }
}
