namespace Numalloc.Platform;

/// <summary>
/// The mmap family <see cref="LinuxPlatform"/> builds on: <c>mmap</c>, <c>munmap</c>,
/// <c>mprotect</c> and <c>sysconf</c>, behind one narrow seam so the native build can take them
/// straight from libc while the managed library keeps Mono.Posix (DESIGN.md, "Topology and
/// platform"). Shared contract: addresses and sizes are page-aligned and validated by the
/// caller; every member returns 0 on success or the errno of the failed call, and throws nothing.
/// </summary>
internal unsafe interface IMmapFamily
{
    /// <summary>Which implementation this is, for messages and test names.</summary>
    string Name { get; }

    /// <summary><c>sysconf(_SC_PAGESIZE)</c>.</summary>
    int QueryPageSize(out nuint pageSize);

    /// <summary><c>sysconf(_SC_NPROCESSORS_CONF)</c>: the configured CPUs, online or not.</summary>
    int QueryConfiguredCpuCount(out int cpuCount);

    /// <summary>
    /// Reserves <paramref name="sizeBytes"/> of address space, page-aligned and inaccessible:
    /// <c>mmap(NULL, size, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0)</c>.
    /// <paramref name="start"/> is null on failure.
    /// </summary>
    int MapInaccessible(nuint sizeBytes, out void* start);

    /// <summary><c>munmap</c>: returns the range to the OS; unmapped parts are not an error.</summary>
    int Unmap(void* address, nuint sizeBytes);

    /// <summary><c>mprotect</c> to read-write (<paramref name="readWrite"/>) or to no access.</summary>
    int Protect(void* address, nuint sizeBytes, bool readWrite);
}
