namespace Numalloc.Pages;

/// <summary>What a page allocation asks for, like the kernel's GFP flags.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "The page allocator's name for its request bits, as the kernel's gfp flags.")]
public enum PageAllocFlags
{
    /// <summary>Unmovable pages: served only from Normal zones.</summary>
    None = 0,

    /// <summary>Movable pages: Movable zones preferred, Normal zones as fallback (GFP_MOVABLE).</summary>
    Movable = 1,

    /// <summary>Only the target node's zones, never another node (__GFP_THISNODE).</summary>
    ThisNodeOnly = 2,
}
