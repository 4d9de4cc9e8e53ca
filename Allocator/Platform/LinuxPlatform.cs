using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Numalloc.Platform;

/// <summary>
/// The Linux seam: the mmap family through an <see cref="IMmapFamily"/> (Mono.Posix in the
/// managed library, libc in the native build: <see cref="MmapFamily"/>), the NUMA calls glibc
/// does not wrap (mbind, get_mempolicy, move_pages, getcpu) through syscall(2),
/// and madvise(MADV_DONTNEED) directly because posix_madvise ignores it.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed unsafe class LinuxPlatform : IPlatform
{
    /// <summary>Where the kernel lists the CPU ids that may ever come online.</summary>
    internal const string PossibleCpusPath = "/sys/devices/system/cpu/possible";

    // Bits in the nodemask we pass to mbind/get_mempolicy: 1024 nodes, the kernel's largest
    // configured MAX_NUMNODES (CONFIG_NODES_SHIFT=10). A node beyond it is EINVAL, as for the kernel.
    private const int NodeMaskBits = 1024;
    private const int NodeMaskWords = NodeMaskBits / 64;

    private readonly IMmapFamily _mmap;
    private readonly nuint _pageSize;
    private readonly int _possibleCpuCount;

    /// <summary>
    /// Reads the page size (sysconf) and the possible CPUs (sysfs) once; the mmap family is the
    /// build's default (<see cref="MmapFamily.Default"/>).
    /// </summary>
    /// <exception cref="PlatformException">sysconf failed.</exception>
    public LinuxPlatform()
        : this(MmapFamily.Default)
    {
    }

    /// <summary>A platform on an explicit mmap family, so tests can run both implementations.</summary>
    /// <exception cref="PlatformException">sysconf failed.</exception>
    internal LinuxPlatform(IMmapFamily mmap)
    {
        ArgumentNullException.ThrowIfNull(mmap);
        _mmap = mmap;
        int errno = mmap.QueryPageSize(out _pageSize);
        if (errno != 0)
        {
            PlatformThrowHelper.ThrowErrno("sysconf", "_SC_PAGESIZE", errno);
        }

        _possibleCpuCount = ReadPossibleCpuCount(mmap);
    }

    /// <summary>The mmap family this platform maps memory with.</summary>
    internal IMmapFamily Mmap => _mmap;

    /// <inheritdoc/>
    public nuint PageSize => _pageSize;

    /// <inheritdoc/>
    public int PossibleCpuCount => _possibleCpuCount;

    /// <inheritdoc/>
    public int CurrentCpu => PlatformCpu.Current();

    /// <inheritdoc/>
    public void* Reserve(nuint sizeBytes, nuint alignmentBytes)
    {
        CheckSize(sizeBytes);
        nuint alignment = CheckAlignment(alignmentBytes);
        if (sizeBytes > nuint.MaxValue - alignment)
        {
            // The padded size would wrap and map something far smaller than asked for.
            PlatformThrowHelper.ThrowErrno("mmap", string.Create(System.Globalization.CultureInfo.InvariantCulture, $"NULL, {sizeBytes}, align {alignment}"), Interop.Libc.ENOMEM);
        }

        // Over-reserve by alignment - page, then trim both ends: mmap only promises page alignment.
        nuint paddedBytes = sizeBytes + alignment - _pageSize;
        void* start = Map(paddedBytes);
        nuint aligned = ((nuint)start + alignment - 1) & ~(alignment - 1);
        nuint head = aligned - (nuint)start;
        nuint tail = paddedBytes - head - sizeBytes;
        if (head != 0)
        {
            Unmap(start, head);
        }

        if (tail != 0)
        {
            Unmap((void*)(aligned + sizeBytes), tail);
        }

        return (void*)aligned;
    }

    /// <inheritdoc/>
    public void Commit(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        Protect(address, sizeBytes, readWrite: true);
    }

    /// <inheritdoc/>
    public void Decommit(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);

        // Drop the pages first so they are gone even if mprotect fails; PROT_NONE then makes a
        // touch fault instead of silently faulting in a fresh zero page.
        DontNeed(address, sizeBytes);
        Protect(address, sizeBytes, readWrite: false);
    }

    /// <inheritdoc/>
    public void Purge(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        DontNeed(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Release(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        Unmap(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Bind(void* address, nuint sizeBytes, int node, BindMode mode)
    {
        CheckRange(address, sizeBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        if (mode is not (BindMode.Preferred or BindMode.Strict))
        {
            throw new ArgumentOutOfRangeException(nameof(mode));
        }

        if (node >= NodeMaskBits)
        {
            // The kernel would say EINVAL too; say it without building an oversized mask.
            PlatformThrowHelper.ThrowBindFailed(address, sizeBytes, node, mode, Interop.Libc.EINVAL);
        }

        ulong* mask = stackalloc ulong[NodeMaskWords];
        new Span<ulong>(mask, NodeMaskWords).Clear();
        mask[node / 64] = 1UL << (node % 64);

        // maxnode is bits + 1: the kernel's get_nodes() reads maxnode - 1 bits (a historical off-by-one).
        if (Interop.Libc.Mbind(address, sizeBytes, (int)mode, mask, NodeMaskBits + 1, 0) != 0)
        {
            PlatformThrowHelper.ThrowBindFailed(address, sizeBytes, node, mode, Marshal.GetLastPInvokeError());
        }
    }

    /// <inheritdoc/>
    public bool TryQueryBinding(void* address, out BindMode mode, out int node)
    {
        int policy;
        ulong* mask = stackalloc ulong[NodeMaskWords];
        new Span<ulong>(mask, NodeMaskWords).Clear();
        if (Interop.Libc.GetMempolicy(&policy, mask, NodeMaskBits + 1, address, Interop.Libc.MPOL_F_ADDR) != 0)
        {
            PlatformThrowHelper.ThrowErrno("get_mempolicy", PlatformThrowHelper.FormatRange(address, _pageSize), Marshal.GetLastPInvokeError());
        }

        node = -1;
        mode = default;
        if (policy is not (Interop.Libc.MPOL_PREFERRED or Interop.Libc.MPOL_BIND))
        {
            return false;
        }

        for (int word = 0; word < NodeMaskWords; word++)
        {
            if (mask[word] != 0)
            {
                node = (word * 64) + System.Numerics.BitOperations.TrailingZeroCount(mask[word]);
                break;
            }
        }

        // MPOL_PREFERRED with an empty mask means "local" (MPOL_F_LOCAL): not something Bind sets.
        if (node < 0)
        {
            return false;
        }

        mode = (BindMode)policy;
        return true;
    }

    /// <inheritdoc/>
    public void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes)
    {
        if (nodes.Length < pages.Length)
        {
            PlatformThrowHelper.ThrowOutputTooShort(nameof(nodes), pages.Length, nodes.Length);
        }

        if (pages.IsEmpty)
        {
            return;
        }

        fixed (nint* pagePointers = pages)
        fixed (int* status = nodes)
        {
            // nodes = NULL: move nothing, only report where each page lives (or -errno per page).
            if (Interop.Libc.MovePages(0, (nuint)pages.Length, (void**)pagePointers, null, status, 0) < 0)
            {
                PlatformThrowHelper.ThrowErrno(
                    "move_pages",
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"0, {pages.Length} pages, NULL"),
                    Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <inheritdoc/>
    public int QueryCurrentCpu(out int node)
    {
        uint cpu;
        uint currentNode;
        if (Interop.Libc.GetCpu(&cpu, &currentNode) != 0)
        {
            PlatformThrowHelper.ThrowErrno("getcpu", "&cpu, &node, NULL", Marshal.GetLastPInvokeError());
        }

        node = (int)currentNode;
        return (int)cpu;
    }

    /// <summary>
    /// Reads <see cref="PossibleCpusPath"/>: highest id + 1. Falls back to sysconf(_SC_NPROCESSORS_CONF)
    /// only when sysfs is not mounted (some sandboxes), since a table sized from it could be too small.
    /// </summary>
    private static int ReadPossibleCpuCount(IMmapFamily mmap)
    {
        if (File.Exists(PossibleCpusPath))
        {
            int count = CpuList.HighestIdPlusOne(File.ReadAllText(PossibleCpusPath));
            if (count > 0)
            {
                return count;
            }
        }

        return mmap.QueryConfiguredCpuCount(out int configured) == 0 ? configured : Environment.ProcessorCount;
    }

    private void* Map(nuint sizeBytes)
    {
        // NORESERVE: a large reservation must not count against overcommit until committed.
        int errno = _mmap.MapInaccessible(sizeBytes, out void* start);
        if (errno != 0)
        {
            PlatformThrowHelper.ThrowErrno(
                "mmap",
                string.Create(System.Globalization.CultureInfo.InvariantCulture, $"NULL, {sizeBytes}, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE"),
                errno);
        }

        return start;
    }

    private void Unmap(void* address, nuint sizeBytes)
    {
        int errno = _mmap.Unmap(address, sizeBytes);
        if (errno != 0)
        {
            PlatformThrowHelper.ThrowRangeCallFailed("munmap", address, sizeBytes, errno);
        }
    }

    private void Protect(void* address, nuint sizeBytes, bool readWrite)
    {
        int errno = _mmap.Protect(address, sizeBytes, readWrite);
        if (errno != 0)
        {
            PlatformThrowHelper.ThrowRangeCallFailed("mprotect", address, sizeBytes, errno);
        }
    }

    private static void DontNeed(void* address, nuint sizeBytes)
    {
        if (Interop.Libc.Madvise(address, sizeBytes, Interop.Libc.MADV_DONTNEED) != 0)
        {
            PlatformThrowHelper.ThrowRangeCallFailed("madvise", address, sizeBytes, Marshal.GetLastPInvokeError());
        }
    }

    private void CheckSize(nuint sizeBytes)
    {
        if (sizeBytes == 0 || (sizeBytes & (_pageSize - 1)) != 0)
        {
            PlatformThrowHelper.ThrowNotPageAligned(nameof(sizeBytes), sizeBytes, _pageSize);
        }
    }

    private nuint CheckAlignment(nuint alignmentBytes)
    {
        if (alignmentBytes == 0)
        {
            return _pageSize;
        }

        if (alignmentBytes < _pageSize || !nuint.IsPow2(alignmentBytes))
        {
            throw new ArgumentOutOfRangeException(nameof(alignmentBytes), alignmentBytes, "Alignment must be a power of two and at least the page size.");
        }

        return alignmentBytes;
    }

    private void CheckRange(void* address, nuint sizeBytes)
    {
        if (((nuint)address & (_pageSize - 1)) != 0 || address == null)
        {
            PlatformThrowHelper.ThrowNotPageAligned(nameof(address), (nuint)address, _pageSize);
        }

        CheckSize(sizeBytes);
    }
}
