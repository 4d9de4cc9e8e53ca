using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Numalloc.Objects;

/// <summary>Throws (or aborts) for the object layer, keeping message formatting out of the hot methods.</summary>
internal static unsafe class ObjectThrowHelper
{
    /// <summary>
    /// Reports a bad free as <paramref name="action"/> says: <see cref="BadFreeAction.Abort"/> ends the
    /// process with the message (Environment.FailFast); report and check throw it.
    /// </summary>
    /// <exception cref="InvalidOperationException">Always, unless the process was ended.</exception>
    [DoesNotReturn]
    public static void ReportBadFree(void* address, string what, BadFreeAction action)
    {
        string message = string.Format(CultureInfo.InvariantCulture,
            "Bad free of 0x{0:X}: {1}; the heap was not changed.", (nuint)address, what);
        if (action == BadFreeAction.Abort)
            Environment.FailFast("numalloc: " + message);
        throw new InvalidOperationException(message);
    }

    /// <summary>Throws for a pointer that is not a live allocation where one is needed (UsableSize, Reallocate).</summary>
    [DoesNotReturn]
    public static void ThrowNotAnAllocation(void* address, string what) =>
        throw new InvalidOperationException(string.Format(CultureInfo.InvariantCulture,
            "0x{0:X} is not a live allocation of this allocator: {1}.", (nuint)address, what));

    /// <summary>Throws when an allocation that must succeed could not be served.</summary>
    [DoesNotReturn]
    [SuppressMessage("Usage", "CA2201:Do not raise reserved exception types", Justification = "An allocator out of memory throws what NativeMemory.Alloc throws.")]
    public static void ThrowOutOfMemory(nuint size, int node) =>
        throw new OutOfMemoryException(node < 0
            ? string.Format(CultureInfo.InvariantCulture, "numalloc could not allocate {0} bytes.", size)
            : string.Format(CultureInfo.InvariantCulture, "numalloc could not allocate {0} bytes on node {1}.", size, node));

    /// <summary>Throws for an alignment that is not zero or a power of two.</summary>
    [DoesNotReturn]
    public static void ThrowBadAlignment(nuint alignment) =>
        throw new ArgumentException(string.Format(CultureInfo.InvariantCulture,
            "The alignment {0} is not a power of two (or 0 for the default).", alignment), nameof(alignment));

    /// <summary>Throws for a size that overflows when it is computed or rounded.</summary>
    [DoesNotReturn]
    public static void ThrowSizeOverflow(string parameterName) =>
        throw new ArgumentException("The size overflows: it exceeds the largest allocation this allocator can describe.", parameterName);
}
