namespace Numalloc.Caches;

/// <summary>
/// The store a cache refills from and flushes to, in batches: a zone's buddy allocator for page
/// caches, a size class's slabs for object caches. Items are addresses; what they point at is the
/// backend's business.
/// </summary>
/// <remarks>
/// Every method may be called concurrently from any thread, with a <see cref="CpuCache"/> state word
/// or the magazine registry lock held: a backend takes only its own locks and never calls back into
/// the caches.
/// </remarks>
internal interface ICacheBackend
{
    /// <summary>
    /// Fills the start of <paramref name="into"/> with free items for a cache of <paramref name="cpu"/>
    /// (a hint for node-local placement) and returns how many it produced (0 when it has none). Never
    /// produces an item for which <see cref="IsCacheable"/> is false on purpose; if it does, the
    /// caller hands that item straight back through <see cref="FlushBatch"/>.
    /// </summary>
    int RefillBatch(int cpu, Span<nint> into);

    /// <summary>Takes back free items. Items of isolated blocks go to the isolated free lists.</summary>
    void FlushBatch(ReadOnlySpan<nint> items);

    /// <summary>
    /// The one-byte block-state check: false when the item's memory block is isolated (going
    /// offline), in which case the item must never enter or leave a cache; callers route it here.
    /// </summary>
    bool IsCacheable(nint item);
}
