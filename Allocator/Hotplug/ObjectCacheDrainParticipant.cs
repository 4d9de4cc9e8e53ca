using Numalloc.Objects;

namespace Numalloc.Hotplug;

/// <summary>
/// The object layer's part of an offline: every magazine and per-CPU object cache goes back to the
/// slabs (the deferred-work protocol for magazines of running threads), then every empty slab in
/// the isolated blocks goes back to its zone, where its pages land on the isolated lists.
/// </summary>
internal sealed class ObjectCacheDrainParticipant(ObjectHeap objects) : IOfflineDrainParticipant
{
    // An owner inside the allocator finishes its call in microseconds; a drain that still misses one
    // after this long leaves its objects to the next round (the offline repeats the drain).
    private const int MagazineDrainTimeoutMs = 2000;

    public void DrainForOffline(ReadOnlySpan<int> isolatedBlocks)
    {
        objects.DrainCaches(MagazineDrainTimeoutMs);
        var blocks = new HashSet<int>(isolatedBlocks.ToArray());
        objects.ReleaseEmptySlabs(blocks.Contains);
    }
}
