using Numalloc.Caches;

namespace Numalloc.Hotplug;

/// <summary>
/// The page caches as an offline drain participant: every per-CPU cache drained remotely under its
/// state word, every thread's magazines through the deferred-work protocol (exactly once per request;
/// idle and exited threads included).
/// </summary>
internal sealed class PageCacheDrainParticipant(CachedPageAllocator caches) : IOfflineDrainParticipant
{
    /// <inheritdoc/>
    public void DrainForOffline(ReadOnlySpan<int> isolatedBlocks) =>
        // The page caches are per zone, not per block: drain them all (as the kernel drains every pcp
        // list on offline). Items of other blocks go back to their zones' ordinary lists.
        caches.DrainAll();
}
