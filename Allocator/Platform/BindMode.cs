namespace Numalloc.Platform;

/// <summary>How strictly <see cref="IPlatform.Bind"/> keeps pages on their node.</summary>
internal enum BindMode
{
    /// <summary>
    /// Prefer the node; when it is physically full, fall back to others rather than invoke the
    /// OOM killer. Linux MPOL_PREFERRED (1). The default.
    /// </summary>
    Preferred = 1,

    /// <summary>Only the node; allocation fails (Linux OOM) rather than fall back. Linux MPOL_BIND (2).</summary>
    Strict = 2,
}
