using Numalloc.Caches;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Tests.Pages;
using Numalloc.Tests.Zonelists;
using Numalloc.Zonelists;

namespace Numalloc.Tests.Hotplug;

/// <summary>The page-level core with caches, movable heap and hotplug controller, over 4 MiB blocks.</summary>
internal sealed unsafe class HotplugRig : IDisposable
{
    public HotplugRig(int nodes = 2, long normalMiB = 8, long normalMaxMiB = 16, long movableMiB = 8, long movableMaxMiB = 16, bool useMagazines = true)
    {
        Pages = ZonelistTestSupport.Allocator(nodes, TestHeaps.Options(normalMiB, normalMaxMiB, movableMiB, movableMaxMiB));
        Cache = new CachedPageAllocator(Pages, useMagazines);
        Movable = new MovableHeap(Pages);
        Hotplug = new HotplugController(Pages, Movable, new PageCacheDrainParticipant(Cache));
    }

    public PageAllocator Pages { get; }

    public CachedPageAllocator Cache { get; }

    public MovableHeap Movable { get; }

    public HotplugController Hotplug { get; }

    public PageHeap Heap => Pages.Heap;

    public Zone Zone(int node, ZoneType type) => Heap.ZoneOf(node, type);

    public int CpuOf(int node) => ZonelistTestSupport.CpuOf(Heap.Topology, node);

    /// <summary>Whether any zonelist of any node names <paramref name="zone"/>.</summary>
    public bool ListsName(Zone zone)
    {
        for (int n = 0; n < Heap.Nodes.Length; n++)
        {
            foreach (PageAllocFlags flags in new[] { PageAllocFlags.None, PageAllocFlags.Movable, PageAllocFlags.ThisNodeOnly, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly })
            {
                foreach (Zone? z in Pages.Zonelists.ListFor(n, flags))
                {
                    if (z is null)
                        break;
                    if (z == zone)
                        return true;
                }
            }
        }
        return false;
    }

    /// <summary>Every zonelist, as zone indices (to compare before and after).</summary>
    public string ZonelistsText()
    {
        var parts = new List<string>();
        for (int n = 0; n < Heap.Nodes.Length; n++)
        {
            foreach (PageAllocFlags flags in new[] { PageAllocFlags.None, PageAllocFlags.Movable, PageAllocFlags.ThisNodeOnly, PageAllocFlags.Movable | PageAllocFlags.ThisNodeOnly })
                parts.Add(string.Join(',', Pages.Zonelists.ListFor(n, flags).TakeWhile(z => z is not null).Select(z => z!.Index)));
        }
        return string.Join(';', parts);
    }

    /// <summary>Per zone: free, isolated free, managed, online and isolated blocks, admin-down.</summary>
    public string ZoneCounts() => string.Join(';', Heap.Zones.ToArray().Select(z =>
    {
        ZoneStats s = z.Snapshot();
        return $"{s.Node}/{s.Type}:{s.FreePages}/{s.IsolatedFreePages}/{s.ManagedPages}/{s.OnlineBlocks}/{s.IsolatedBlocks}/{s.AdminDown}/{s.GoingOffline}";
    }));

    public int[] BlocksOf(int node, ZoneType type, BlockState state) =>
        Heap.Snapshot().Blocks.Where(b => b.Node == node && b.Zone == type && b.State == state).Select(b => b.Id).ToArray();

    /// <summary>Fills a buffer with a pattern derived from <paramref name="seed"/>.</summary>
    public static void Fill(MovableBuffer buffer, int seed)
    {
        using MovablePin pin = buffer.Pin();
        Span<byte> span = pin.Span;
        for (int i = 0; i < span.Length; i++)
            span[i] = (byte)(seed + i * 7);
    }

    /// <summary>Whether a buffer still holds its pattern.</summary>
    public static bool Holds(MovableBuffer buffer, int seed)
    {
        using MovablePin pin = buffer.Pin();
        Span<byte> span = pin.Span;
        for (int i = 0; i < span.Length; i++)
        {
            if (span[i] != (byte)(seed + i * 7))
                return false;
        }
        return true;
    }

    /// <summary>Drains the caches, then checks free == managed everywhere (nothing allocated, nothing lost).</summary>
    public void AssertReconciled()
    {
        Cache.DrainAll();
        TestHeaps.AssertReconciled(Heap);
        Assert.That(Movable.LiveCount, Is.Zero, "every movable buffer was freed");
    }

    public void Dispose()
    {
        Movable.Dispose();
        Cache.Dispose();
    }
}

/// <summary>Records every notification, in order.</summary>
internal sealed class RecordingListener(bool veto = false) : HotplugListener
{
    public List<HotplugEvent> Events { get; } = [];

    public override bool OnGoingOffline(HotplugNotification notification)
    {
        Events.Add(notification.Event);
        return !veto;
    }

    public override void OnOffline(HotplugNotification notification) => Events.Add(notification.Event);

    public override void OnCancelOffline(HotplugNotification notification) => Events.Add(notification.Event);

    public override void OnOnline(HotplugNotification notification) => Events.Add(notification.Event);
}
