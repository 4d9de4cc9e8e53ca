using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

/// <summary>A registry over <c>kinds</c> kinds, each a <see cref="CpuCacheSet"/> over its own <see cref="TestBackend"/>.</summary>
internal sealed class CacheRig : IDisposable
{
    public CacheRig(int kinds = 1, int itemsPerKind = 1024, int magazineCapacity = 8, int[]? cpuToNode = null, int high = 16, int batch = 8)
    {
        cpuToNode ??= [0, 0, 1, 1];
        Backends = new TestBackend[kinds];
        Caches = new CpuCacheSet[kinds];
        for (int kind = 0; kind < kinds; kind++)
        {
            Backends[kind] = new TestBackend(itemsPerKind, firstId: kind * itemsPerKind);
            Caches[kind] = new CpuCacheSet(Backends[kind], cpuToNode, high, batch);
        }

        Registry = new MagazineRegistry(Caches, magazineCapacity);
    }

    public TestBackend[] Backends { get; }

    public CpuCacheSet[] Caches { get; }

    public MagazineRegistry Registry { get; }

    /// <summary>Every item of every kind is back in its backend, and no backend saw a misuse.</summary>
    public void AssertEverythingInBackends()
    {
        for (int kind = 0; kind < Backends.Length; kind++)
        {
            Assert.That(Backends[kind].Errors, Is.Zero, $"kind {kind}: double or foreign frees");
            Assert.That(Backends[kind].FreeCount, Is.EqualTo(Backends[kind].ItemCount), $"kind {kind}: items missing");
            Assert.That(Caches[kind].TotalCount, Is.Zero, $"kind {kind}: CPU caches not empty");
            Assert.That(Registry.CountMagazineItems(kind), Is.Zero, $"kind {kind}: magazines not empty");
        }
    }

    /// <summary>requests == doneRemotely + doneByOwner + coalesced, exactly.</summary>
    public MagazineCounters AssertCounterIdentity()
    {
        MagazineCounters c = Registry.Counters;
        Assert.That(c.DoneRemotely + c.DoneByOwner + c.Coalesced, Is.EqualTo(c.Requests), c.ToString());
        return c;
    }

    public void Dispose()
    {
        Registry.Dispose();
        foreach (CpuCacheSet caches in Caches)
        {
            caches.Dispose();
        }
    }
}
