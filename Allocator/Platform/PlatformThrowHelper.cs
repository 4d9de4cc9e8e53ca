using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Numalloc.Platform;

/// <summary>
/// Throws for the platform implementations, so the formatting of the message stays out of the
/// calling methods and they stay small.
/// </summary>
internal static unsafe class PlatformThrowHelper
{
    /// <summary>Throws for a failed call on a range: "mprotect(0x7f0000000000, 4096) failed: ENOMEM (12)".</summary>
    [DoesNotReturn]
    internal static void ThrowRangeCallFailed(string callName, void* address, nuint sizeBytes, int errno, bool isInjected = false) =>
        throw PlatformException.FromErrno(callName, FormatRange(address, sizeBytes), errno, isInjected);

    /// <summary>Throws for a failed mbind: "mbind(0x7f0000000000, 4096, node 5, Preferred) failed: EINVAL (22)".</summary>
    [DoesNotReturn]
    internal static void ThrowBindFailed(void* address, nuint sizeBytes, int node, BindMode mode, int errno, bool isInjected = false) =>
        throw PlatformException.FromErrno("mbind", FormatBind(address, sizeBytes, node, mode), errno, isInjected);

    /// <summary>Throws for a failed POSIX call whose arguments are already formatted.</summary>
    [DoesNotReturn]
    internal static void ThrowErrno(string callName, string arguments, int errno, bool isInjected = false) =>
        throw PlatformException.FromErrno(callName, arguments, errno, isInjected);

    /// <summary>Throws for a failed Win32 call on a range.</summary>
    [DoesNotReturn]
    internal static void ThrowWin32RangeCallFailed(string callName, void* address, nuint sizeBytes, string detail, int win32Error) =>
        throw PlatformException.FromWin32Error(callName, FormatRange(address, sizeBytes) + detail, win32Error);

    /// <summary>Throws for a failed Win32 call whose arguments are already formatted.</summary>
    [DoesNotReturn]
    internal static void ThrowWin32(string callName, string arguments, int win32Error) =>
        throw PlatformException.FromWin32Error(callName, arguments, win32Error);

    /// <summary>Throws when an address or size is not a multiple of the page size.</summary>
    [DoesNotReturn]
    internal static void ThrowNotPageAligned(string parameterName, nuint value, nuint pageSize) =>
        throw new ArgumentException(
            string.Create(CultureInfo.InvariantCulture, $"0x{value:x} is not a non-zero multiple of the page size {pageSize}."),
            parameterName);

    /// <summary>Throws when the output span of a query is shorter than its input.</summary>
    [DoesNotReturn]
    internal static void ThrowOutputTooShort(string parameterName, int needed, int actual) =>
        throw new ArgumentException(
            string.Create(CultureInfo.InvariantCulture, $"Needs room for {needed} entries, has {actual}."),
            parameterName);

    /// <summary>"0x7f0000000000, 4096".</summary>
    internal static string FormatRange(void* address, nuint sizeBytes) =>
        string.Create(CultureInfo.InvariantCulture, $"0x{(nuint)address:x}, {sizeBytes}");

    /// <summary>"0x7f0000000000, 4096, node 5, Preferred".</summary>
    internal static string FormatBind(void* address, nuint sizeBytes, int node, BindMode mode) =>
        string.Create(CultureInfo.InvariantCulture, $"0x{(nuint)address:x}, {sizeBytes}, node {node}, {mode}");
}
