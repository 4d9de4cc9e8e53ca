using System.Runtime.InteropServices;
using System.Text;
using Numalloc.Hotplug;
using Numalloc.Pages;

namespace Numalloc.Native;

internal static unsafe partial class Exports
{
    /*
     * The admin calls: hot-remove and hot-add of blocks, zones and nodes, returning 0 or the negative
     * errno of DESIGN.md's result table (HotplugResult.ErrnoValue), and the statistics as JSON. Targets
     * that cannot name anything (a node or block id out of range, a zone other than 0 or 1) are
     * -EINVAL here, before the admin API sees them, as they are in the table.
     */

    /// <summary><c>int na_offline_zone(int node, int zone, unsigned timeout_ms)</c>: 0, -EBUSY, -EAGAIN, -ECANCELED, -ETIMEDOUT or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_offline_zone")]
    internal static int OfflineZone(int node, int zone, uint timeoutMs)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if (!IsNode(allocator, node) || !IsZone(zone))
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OfflineZone(node, (ZoneType)zone, TimeoutMs(timeoutMs)));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_online_zone(int node, int zone)</c>: 0, -EAGAIN or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_online_zone")]
    internal static int OnlineZone(int node, int zone)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if (!IsNode(allocator, node) || !IsZone(zone))
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OnlineZone(node, (ZoneType)zone));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_offline_node(int node, unsigned timeout_ms)</c>: 0, -EBUSY, -EAGAIN, -ECANCELED, -ETIMEDOUT or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_offline_node")]
    internal static int OfflineNode(int node, uint timeoutMs)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if (!IsNode(allocator, node))
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OfflineNode(node, TimeoutMs(timeoutMs)));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_online_node(int node)</c>: 0, -EAGAIN or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_online_node")]
    internal static int OnlineNode(int node)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if (!IsNode(allocator, node))
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OnlineNode(node));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_block_count(void)</c>: memory blocks of the heap (ids 0..count-1); -1 with ENOMEM when initialization failed.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_block_count")]
    internal static int BlockCount()
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            return allocator is null ? ExportGuard.MinusOne(Interop.Libc.ENOMEM) : allocator.Admin.BlockCount;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_offline_block(int block, unsigned timeout_ms)</c>: 0, -EBUSY, -EAGAIN, -ECANCELED, -ETIMEDOUT or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_offline_block")]
    internal static int OfflineBlock(int block, uint timeoutMs)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if ((uint)block >= (uint)allocator.Admin.BlockCount)
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OfflineBlock(block, TimeoutMs(timeoutMs)));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary><c>int na_online_block(int block, int zone)</c>: onlines the block into <paramref name="zone"/>; 0, -EAGAIN or -EINVAL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_online_block")]
    internal static int OnlineBlock(int block, int zone)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.NegativeErrno(Interop.Libc.ENOMEM);
            if ((uint)block >= (uint)allocator.Admin.BlockCount || !IsZone(zone))
                return ExportGuard.NegativeErrno(Interop.Libc.EINVAL);
            return Result(allocator.Admin.OnlineBlock(block, (ZoneType)zone));
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.NegativeErrno(e, Interop.Libc.ENOMEM);
        }
    }

    /// <summary>
    /// <c>long na_stats_json(char *buf, size_t len)</c>: the statistics as one JSON object (UTF-8). Returns its
    /// length in bytes, not counting the NUL, as <c>snprintf</c> does: when that is &lt; <paramref name="len"/> the
    /// whole text and a NUL are in <paramref name="buffer"/>; else at most len - 1 bytes and a NUL (nothing for
    /// len 0). -1 with ENOMEM on failure.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_stats_json")]
    internal static nint StatsJson(byte* buffer, nuint len)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.MinusOne(Interop.Libc.ENOMEM);
            byte[] json = Encoding.UTF8.GetBytes(allocator.Admin.GetStatsJson());
            if (buffer != null && len != 0)
            {
                int copied = (nuint)json.Length < len ? json.Length : (int)(len - 1);
                json.AsSpan(0, copied).CopyTo(new Span<byte>(buffer, copied));
                buffer[copied] = 0;
            }
            return json.Length;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }

    private static bool IsNode(NumaAllocator allocator, int node) => (uint)node < (uint)allocator.NodeCount;

    private static bool IsZone(int zone) => zone is (int)ZoneType.Normal or (int)ZoneType.Movable;

    // unsigned milliseconds; the admin API takes an int: anything longer is as good as forever.
    private static int TimeoutMs(uint timeoutMs) => timeoutMs > int.MaxValue ? int.MaxValue : (int)timeoutMs;

    // 0, or the table's -errno with errno set to the same error, as the other failing calls do.
    private static int Result(HotplugResult result) =>
        result.ErrnoValue == 0 ? 0 : ExportGuard.NegativeErrno(-result.ErrnoValue);
}
