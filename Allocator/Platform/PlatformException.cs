using System.Globalization;

namespace Numalloc.Platform;

/// <summary>
/// An OS call made through <see cref="IPlatform"/> failed. Carries the call's name and the OS
/// error, so a log line says which primitive failed on which range and why.
/// </summary>
internal sealed class PlatformException : Exception
{
    /// <summary>Creates an exception with no OS error (for the standard exception constructors).</summary>
    public PlatformException()
        : this("Platform call failed.")
    {
    }

    /// <summary>Creates an exception with a message and no OS error.</summary>
    public PlatformException(string message)
        : base(message)
    {
        CallName = string.Empty;
    }

    /// <summary>Creates an exception with a message, an inner exception and no OS error.</summary>
    public PlatformException(string message, Exception innerException)
        : base(message, innerException)
    {
        CallName = string.Empty;
    }

    private PlatformException(string message, string callName, int errorCode, bool isWin32Error, bool isInjected)
        : base(message)
    {
        CallName = callName;
        ErrorCode = errorCode;
        IsWin32Error = isWin32Error;
        IsInjected = isInjected;
    }

    /// <summary>The OS call that failed, for example "mbind"; empty when none is known.</summary>
    public string CallName { get; }

    /// <summary>The errno on Linux (for example 22 for EINVAL), the Win32 error on Windows; 0 when none.</summary>
    public int ErrorCode { get; }

    /// <summary>True when <see cref="ErrorCode"/> is a Win32 error rather than an errno.</summary>
    public bool IsWin32Error { get; }

    /// <summary>True when <see cref="FaultInjectingPlatform"/> produced the failure, not the OS.</summary>
    public bool IsInjected { get; }

    /// <summary>
    /// Builds the exception for a failed POSIX call: "mbind(0x7f00001000, 4096, node 5) failed: EINVAL (22)".
    /// </summary>
    /// <param name="callName">The call, for example "mbind".</param>
    /// <param name="arguments">The call's arguments as they should read in the message.</param>
    /// <param name="errno">The errno the call left.</param>
    /// <param name="isInjected">True for a fault injected by a test.</param>
    public static PlatformException FromErrno(string callName, string arguments, int errno, bool isInjected = false)
    {
        string message = string.Create(
            CultureInfo.InvariantCulture,
            $"{callName}({arguments}) failed: {Interop.Libc.ErrnoName(errno)} ({errno}){(isInjected ? " [injected]" : string.Empty)}");
        return new PlatformException(message, callName, errno, isWin32Error: false, isInjected);
    }

    /// <summary>
    /// Builds the exception for a failed Win32 call: "VirtualAlloc(0x10000, 65536, MEM_COMMIT) failed: Win32 error 8".
    /// </summary>
    /// <param name="callName">The call, for example "VirtualAllocExNuma".</param>
    /// <param name="arguments">The call's arguments as they should read in the message.</param>
    /// <param name="win32Error">The GetLastError value the call left.</param>
    public static PlatformException FromWin32Error(string callName, string arguments, int win32Error)
    {
        string message = string.Create(CultureInfo.InvariantCulture, $"{callName}({arguments}) failed: Win32 error {win32Error}");
        return new PlatformException(message, callName, win32Error, isWin32Error: true, isInjected: false);
    }
}
