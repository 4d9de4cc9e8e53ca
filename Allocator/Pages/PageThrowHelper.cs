using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Numalloc.Pages;

/// <summary>Throws for the page layer, keeping message formatting out of the callers.</summary>
internal static unsafe class PageThrowHelper
{
    /// <summary>Throws for a bad page-level free: "Bad FreePages(0x7f..., order 2): interior page".</summary>
    [DoesNotReturn]
    public static void ThrowBadFree(void* address, int order, string what) =>
        throw new InvalidOperationException(string.Format(CultureInfo.InvariantCulture,
            "Bad FreePages(0x{0:X}, order {1}): {2}; the heap was not changed.", (nuint)address, order, what));

    /// <summary>Throws when the heap would not fit the page index range.</summary>
    [DoesNotReturn]
    public static void ThrowHeapTooLarge(long pages) =>
        throw new ArgumentException(string.Format(CultureInfo.InvariantCulture,
            "The heap would span {0} pages; at most {1} are supported: lower normal_max/movable_max or the node count.", pages, int.MaxValue));
}
