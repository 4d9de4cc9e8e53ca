using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Numalloc.Platform;

/// <summary>
/// The Windows seam: VirtualAlloc / VirtualAllocExNuma / VirtualFree and the kernel32 NUMA
/// queries. CPU ids are flattened as group * 64 + number. Binding is a commit with a preferred
/// node (Windows has no strict per-range policy), so <see cref="BindMode.Strict"/> acts as preferred.
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed unsafe class WindowsPlatform : IPlatform
{
    // A processor group holds at most 64 logical processors (one KAFFINITY).
    private const int ProcessorsPerGroup = 64;

    // Aligned reservation is free-then-reserve-at; another thread can take the hole between.
    private const int AlignedReserveAttempts = 16;

    // Status reported for a page QueryWorkingSetEx says is not resident, as -ENOENT on Linux.
    private const int NotResident = -Interop.Libc.ENOENT;

    private readonly nuint _pageSize;
    private readonly nuint _allocationGranularity;
    private readonly int _possibleCpuCount;

    /// <summary>Reads the page size, allocation granularity and processor groups once.</summary>
    public WindowsPlatform()
    {
        Interop.Kernel32.SYSTEM_INFO info;
        Interop.Kernel32.GetSystemInfo(&info);
        _pageSize = info.PageSize;
        _allocationGranularity = info.AllocationGranularity;

        ushort groups = Interop.Kernel32.GetMaximumProcessorGroupCount();
        int lastGroup = Math.Max(groups - 1, 0);
        _possibleCpuCount = (lastGroup * ProcessorsPerGroup) + (int)Interop.Kernel32.GetMaximumProcessorCount((ushort)lastGroup);
    }

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
        if (alignmentBytes != 0 && (alignmentBytes < _pageSize || !nuint.IsPow2(alignmentBytes)))
        {
            throw new ArgumentOutOfRangeException(nameof(alignmentBytes), alignmentBytes, "Alignment must be a power of two and at least the page size.");
        }

        // Reservations are always granularity-aligned (64 KiB); beyond that, reserve a padded
        // range to learn a suitable address, free it and reserve exactly there. VirtualFree
        // cannot trim a reservation the way munmap can.
        if (alignmentBytes <= _allocationGranularity)
        {
            return ReserveAt(null, sizeBytes);
        }

        if (sizeBytes > nuint.MaxValue - alignmentBytes)
        {
            // The padded size would wrap and reserve something far smaller than asked for.
            PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualAlloc", null, sizeBytes, ", MEM_RESERVE (aligned)", Interop.Kernel32.ERROR_NOT_ENOUGH_MEMORY);
        }

        for (int attempt = 0; attempt < AlignedReserveAttempts; attempt++)
        {
            void* padded = ReserveAt(null, sizeBytes + alignmentBytes);
            nuint aligned = ((nuint)padded + alignmentBytes - 1) & ~(alignmentBytes - 1);
            FreeReservation(padded);
            void* exact = Interop.Kernel32.VirtualAlloc((void*)aligned, sizeBytes, Interop.Kernel32.MEM_RESERVE, Interop.Kernel32.PAGE_NOACCESS);
            if (exact != null)
            {
                return exact;
            }
        }

        PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualAlloc", null, sizeBytes, ", MEM_RESERVE (aligned)", Interop.Kernel32.ERROR_INVALID_ADDRESS);
        return null;
    }

    /// <inheritdoc/>
    public void Commit(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        if (Interop.Kernel32.VirtualAlloc(address, sizeBytes, Interop.Kernel32.MEM_COMMIT, Interop.Kernel32.PAGE_READWRITE) == null)
        {
            PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualAlloc", address, sizeBytes, ", MEM_COMMIT", Marshal.GetLastPInvokeError());
        }
    }

    /// <inheritdoc/>
    public void Decommit(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        if (!Interop.Kernel32.VirtualFree(address, sizeBytes, Interop.Kernel32.MEM_DECOMMIT))
        {
            PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualFree", address, sizeBytes, ", MEM_DECOMMIT", Marshal.GetLastPInvokeError());
        }
    }

    /// <inheritdoc/>
    public void Purge(void* address, nuint sizeBytes)
    {
        // MEM_RESET keeps the old contents until the pages are reused, which breaks the
        // reads-as-zero contract; decommit + recommit keeps it.
        Decommit(address, sizeBytes);
        Commit(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Release(void* address, nuint sizeBytes)
    {
        CheckRange(address, sizeBytes);
        FreeReservation(address);
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

        // VirtualAllocExNuma accepts some nodes that do not exist; refuse them as mbind would.
        Interop.Kernel32.GROUP_AFFINITY affinity;
        uint highest;
        if (!Interop.Kernel32.GetNumaHighestNodeNumber(&highest) || (uint)node > highest
            || !Interop.Kernel32.GetNumaNodeProcessorMaskEx((ushort)node, &affinity))
        {
            PlatformThrowHelper.ThrowWin32(
                "VirtualAllocExNuma",
                PlatformThrowHelper.FormatBind(address, sizeBytes, node, mode) + ": no such node",
                Interop.Kernel32.ERROR_INVALID_PARAMETER);
        }

        void* committed = Interop.Kernel32.VirtualAllocExNuma(
            Interop.Kernel32.GetCurrentProcess(), address, sizeBytes, Interop.Kernel32.MEM_COMMIT, Interop.Kernel32.PAGE_READWRITE, (uint)node);
        if (committed == null)
        {
            PlatformThrowHelper.ThrowWin32("VirtualAllocExNuma", PlatformThrowHelper.FormatBind(address, sizeBytes, node, mode), Marshal.GetLastPInvokeError());
        }
    }

    /// <inheritdoc/>
    public bool TryQueryBinding(void* address, out BindMode mode, out int node)
    {
        // Windows keeps no per-range policy to read back: the preferred node applied to the commit only.
        mode = default;
        node = -1;
        return false;
    }

    /// <inheritdoc/>
    public void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes)
    {
        if (nodes.Length < pages.Length)
        {
            PlatformThrowHelper.ThrowOutputTooShort(nameof(nodes), pages.Length, nodes.Length);
        }

        const int Batch = 64;
        Interop.Kernel32.PSAPI_WORKING_SET_EX_INFORMATION* entries = stackalloc Interop.Kernel32.PSAPI_WORKING_SET_EX_INFORMATION[Batch];
        nint process = Interop.Kernel32.GetCurrentProcess();
        for (int start = 0; start < pages.Length; start += Batch)
        {
            int count = Math.Min(Batch, pages.Length - start);
            for (int i = 0; i < count; i++)
            {
                entries[i].VirtualAddress = (void*)pages[start + i];
                entries[i].VirtualAttributes = 0;
            }

            if (!Interop.Kernel32.K32QueryWorkingSetEx(process, entries, (uint)(count * sizeof(Interop.Kernel32.PSAPI_WORKING_SET_EX_INFORMATION))))
            {
                PlatformThrowHelper.ThrowWin32(
                    "QueryWorkingSetEx",
                    string.Create(CultureInfo.InvariantCulture, $"{count} pages"),
                    Marshal.GetLastPInvokeError());
            }

            for (int i = 0; i < count; i++)
            {
                nuint attributes = entries[i].VirtualAttributes;
                bool valid = (attributes & 1) != 0;
                nodes[start + i] = valid ? (int)((attributes >> 16) & 0x3F) : NotResident;
            }
        }
    }

    /// <inheritdoc/>
    public int QueryCurrentCpu(out int node)
    {
        Interop.Kernel32.PROCESSOR_NUMBER processor;
        Interop.Kernel32.GetCurrentProcessorNumberEx(&processor);
        ushort nodeNumber;
        if (!Interop.Kernel32.GetNumaProcessorNodeEx(&processor, &nodeNumber))
        {
            PlatformThrowHelper.ThrowWin32("GetNumaProcessorNodeEx", "current processor", Marshal.GetLastPInvokeError());
        }

        node = nodeNumber;
        return (processor.Group * ProcessorsPerGroup) + processor.Number;
    }

    private static void* ReserveAt(void* address, nuint sizeBytes)
    {
        void* start = Interop.Kernel32.VirtualAlloc(address, sizeBytes, Interop.Kernel32.MEM_RESERVE, Interop.Kernel32.PAGE_NOACCESS);
        if (start == null)
        {
            PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualAlloc", address, sizeBytes, ", MEM_RESERVE", Marshal.GetLastPInvokeError());
        }

        return start;
    }

    private static void FreeReservation(void* address)
    {
        // MEM_RELEASE frees the whole reservation and requires size 0.
        if (!Interop.Kernel32.VirtualFree(address, 0, Interop.Kernel32.MEM_RELEASE))
        {
            PlatformThrowHelper.ThrowWin32RangeCallFailed("VirtualFree", address, 0, ", MEM_RELEASE", Marshal.GetLastPInvokeError());
        }
    }

    private void CheckSize(nuint sizeBytes)
    {
        if (sizeBytes == 0 || (sizeBytes & (_pageSize - 1)) != 0)
        {
            PlatformThrowHelper.ThrowNotPageAligned(nameof(sizeBytes), sizeBytes, _pageSize);
        }
    }

    private void CheckRange(void* address, nuint sizeBytes)
    {
        if (address == null || ((nuint)address & (_pageSize - 1)) != 0)
        {
            PlatformThrowHelper.ThrowNotPageAligned(nameof(address), (nuint)address, _pageSize);
        }

        CheckSize(sizeBytes);
    }
}
