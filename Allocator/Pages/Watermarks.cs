namespace Numalloc.Pages;

/// <summary>A zone's min/low/high free-page watermarks.</summary>
/// <param name="Min">Below this, ordinary allocations fail over to the next zone.</param>
/// <param name="Low">Below this, the zone grows by onlining one of its node's absent blocks.</param>
/// <param name="High">Purging and cache drains aim to keep at least this much free.</param>
public readonly record struct Watermarks(long Min, long Low, long High)
{
    /// <summary>
    /// Kernel-like watermarks for a zone of <paramref name="managedPages"/> 4 KiB pages: min from
    /// <c>min_free_kbytes = sqrt(16 * kbytes)</c> (clamped to 128 KiB..64 MiB, as
    /// <c>init_per_zone_wmark_min</c> does), low and high one and two steps above it, a step being
    /// the larger of min/4 and 0.1% of the zone (<c>watermark_scale_factor</c> = 10).
    /// </summary>
    public static Watermarks ForZone(long managedPages)
    {
        if (managedPages <= 0)
            return default;
        long kbytes = managedPages * 4;
        long minKbytes = Math.Clamp((long)Math.Sqrt(16.0 * kbytes), 128, 65536);
        long min = Math.Min(minKbytes / 4, managedPages / 8);
        long step = Math.Max(min / 4, managedPages / 1000);
        return new Watermarks(min, min + step, min + 2 * step);
    }
}
