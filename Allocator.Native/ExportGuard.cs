using System.Runtime.InteropServices;
using Numalloc.Platform;

namespace Numalloc.Native;

/// <summary>
/// The export guard: how a C export fails without letting an exception escape. An exception
/// that reaches the end of an <see cref="UnmanagedCallersOnlyAttribute"/> method ends the whole
/// process, so every export that can throw has this shape:
/// <code>
/// [UnmanagedCallersOnly(EntryPoint = "na_something")]
/// internal static int Something(...)
/// {
///     try
///     {
///         ... checks that fail with  return ExportGuard.MinusOne(Interop.Libc.EINVAL);
///     }
///     catch (Exception e)
///     {
///         return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
///     }
/// }
/// </code>
/// The whole body sits in the <c>try</c>; the <c>catch</c> turns any exception into the export's
/// documented failure value (-1, NULL, or -errno) and sets C <c>errno</c> through libc's
/// <c>__errno_location</c>, as POSIX says a failing malloc-family call does. The errno is set
/// last, after every other call that could change it. An exception that is not an expected
/// failure (out of memory, a failed OS call) is a bug: it is reported on stderr, once per process.
/// An export with no <c>try</c> must not be able to throw (a field read, an empty body).
/// </summary>
internal static unsafe class ExportGuard
{
    // 0 until the first unexpected exception has been reported; one line per process at most.
    private static int s_reported;

    /// <summary>Sets errno to <paramref name="errno"/> and returns -1.</summary>
    internal static int MinusOne(int errno)
    {
        Interop.Libc.SetErrno(errno);
        return -1;
    }

    /// <summary>Reports <paramref name="exception"/> if unexpected, sets errno and returns -1.</summary>
    internal static int MinusOne(Exception exception, int errno)
    {
        Report(exception);
        return MinusOne(errno);
    }

    /// <summary>Sets errno to <paramref name="errno"/> and returns NULL.</summary>
    internal static void* Null(int errno)
    {
        Interop.Libc.SetErrno(errno);
        return null;
    }

    /// <summary>Reports <paramref name="exception"/> if unexpected, sets errno and returns NULL.</summary>
    internal static void* Null(Exception exception, int errno)
    {
        Report(exception);
        return Null(errno);
    }

    /// <summary>Sets errno to <paramref name="errno"/> and returns -errno (the admin calls' convention).</summary>
    internal static int NegativeErrno(int errno)
    {
        Interop.Libc.SetErrno(errno);
        return -errno;
    }

    /// <summary>Reports <paramref name="exception"/> if unexpected, sets errno and returns -errno.</summary>
    internal static int NegativeErrno(Exception exception, int errno)
    {
        Report(exception);
        return NegativeErrno(errno);
    }

    /// <summary>Out of memory and failed OS calls are failures the caller hears about through errno; anything else is a bug.</summary>
    private static bool IsExpected(Exception exception) =>
        exception is OutOfMemoryException or PlatformException or InsufficientExecutionStackException;

    private static void Report(Exception exception)
    {
        if (IsExpected(exception) || Interlocked.Exchange(ref s_reported, 1) != 0) // one report per process, whichever thread is first
        {
            return;
        }

        try
        {
            string message = exception.Message.ReplaceLineEndings(" ");
            Console.Error.WriteLine($"numalloc: internal error ({exception.GetType().Name}): {message}");
        }
#pragma warning disable CA1031 // stderr closed or full: the report is best effort, the failure value still goes back.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
