using System.Text.Json;
using Numalloc.Admin;
using Numalloc.Pages;
using Numalloc.Tests.Pages;
using static Numalloc.Tests.Objects.ObjectTestSupport;

namespace Numalloc.Tests.Admin;

/// <summary>The memory section of the stats: where the heap's bytes are, and what its metadata costs.</summary>
[NonParallelizable]
public sealed unsafe class MemoryStatsTests
{
    [Test]
    public void Memory_CountsObjectsLargeRunsAndMetadata_AndFallsBackAfterTheFreeAndTrim()
    {
        using NumaAllocator allocator = Create(nodes: 1, normalMiB: 16, normalMaxMiB: 64);
        var small = new List<nint>();
        for (int i = 0; i < 1000; i++)
            small.Add((nint)allocator.Allocate(100)); // class 104
        void* large = allocator.Allocate(100_000); // 25 pages

        MemoryStatsInfo held = allocator.Admin.GetStats().Memory!;

        int onlinedBlocks = allocator.Admin.GetBlocks().Count(b => b.State != BlockState.Absent);
        long descriptorBytes = (long)onlinedBlocks * TestHeaps.PagesPerBlock * sizeof(PageDescriptor);
        Assert.Multiple(() =>
        {
            Assert.That(held.ObjectBytesInUse, Is.EqualTo(1000 * 104), "every object at its class size");
            Assert.That(held.SlabBytes, Is.GreaterThanOrEqualTo(held.ObjectBytesInUse + held.SlabFreeBytes + held.CachedObjectBytes));
            Assert.That(held.LargeBytes, Is.EqualTo(25 * HeapLayout.PageSize));
            Assert.That(held.PageMetadataBytes, Is.EqualTo(descriptorBytes + allocator.Admin.BlockCount), "descriptors of every onlined block");
            Assert.That(held.ObjectMetadataBytes, Is.GreaterThan(0), "slab table, caches and this thread's magazines");
            Assert.That(held.PageCacheMetadataBytes, Is.GreaterThan(0));
            Assert.That(held.MetadataBytes, Is.EqualTo(held.PageMetadataBytes + held.ObjectMetadataBytes + held.PageCacheMetadataBytes));
        });

        foreach (nint p in small)
            allocator.Free((void*)p);
        allocator.Free(large);
        Assert.That(allocator.Heap.DrainCaches(10_000), Is.True, "every magazine drained");
        allocator.Admin.Trim();
        MemoryStatsInfo after = allocator.Admin.GetStats().Memory!;

        Assert.Multiple(() =>
        {
            Assert.That(after.ObjectBytesInUse + after.LargeBytes + after.SlabBytes + after.CachedObjectBytes, Is.Zero, "nothing held");
            Assert.That(after.DirtyBytes, Is.Zero, "trim purged every free page");
            Assert.That(after.PurgedBytes, Is.GreaterThan(0));
        });
        using JsonDocument doc = JsonDocument.Parse(allocator.Admin.GetStatsJson());
        Assert.That(doc.RootElement.GetProperty("memory").GetProperty("metadata_bytes").GetInt64(), Is.GreaterThan(0),
            "the C harness reads memory.metadata_bytes from na_stats_json");
    }
}
