using System.Runtime.Versioning;
using Numalloc.Caches;
using Numalloc.Pages;
using Numalloc.Tests.Pages;
using Numalloc.Tests.Platform;
using Numalloc.Tests.Zonelists;

namespace Numalloc.Tests.Caches;

/// <summary>CachedPageAllocator.Trim: the caches are drained first, then every free page is purged.</summary>
[Platform("Linux")]
[SupportedOSPlatform("linux")]
[NonParallelizable]
public sealed unsafe class CachedTrimTests
{
    [Test]
    public void Trim_DrainsTheCachesAndPurgesTheirPages()
    {
        var options = new AllocatorOptions
        {
            BlockBytes = TestHeaps.BlockBytes,
            NormalBytes = 16 * TestHeaps.MiB,
            NormalMaxBytes = 16 * TestHeaps.MiB,
            MovableBytes = 0,
            MovableMaxBytes = 0,
            DecayMs = -1,
        };
        using var cache = new CachedPageAllocator(ZonelistTestSupport.Allocator(1, options));
        var pages = new List<nint>();
        for (int i = 0; i < 256; i++)
        {
            byte* p = (byte*)cache.AllocPages(0);
            Assert.That(p != null);
            new Span<byte>(p, HeapLayout.PageSize).Fill(0x5C);
            pages.Add((nint)p);
        }
        foreach (nint p in pages)
            cache.FreePages((void*)p, 0);
        Assert.That(cache.CachedPages(), Is.GreaterThan(0), "some pages sit in the caches");

        long purged = cache.Trim();

        Assert.Multiple(() =>
        {
            Assert.That(cache.CachedPages(), Is.Zero);
            Assert.That(purged, Is.GreaterThanOrEqualTo(pages.Count * (long)HeapLayout.PageSize));
            Assert.That(cache.Pages.Snapshot().Heap.PurgedBytes, Is.EqualTo(purged));
            Assert.That(pages.Sum(p => ProcessMemory.ResidentPageCount((void*)p, HeapLayout.PageSize, HeapLayout.PageSize)), Is.Zero);
        });
        TestHeaps.AssertReconciled(cache.Pages.Heap);
    }
}
