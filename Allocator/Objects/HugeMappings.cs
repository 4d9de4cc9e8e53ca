using Numalloc.Platform;

namespace Numalloc.Objects;

/// <summary>
/// Allocations above the largest buddy block: each its own node-bound mapping (reserve, commit, bind
/// through the platform seam), outside the page heap, tracked in a side table so that a free, a
/// <c>NodeOf</c> and a <c>UsableSize</c> can find it. A second free of a mapping is caught at once:
/// it is no longer in the table.
/// </summary>
/// <remarks>Thread-safe: the table is guarded by one lock; the platform calls run outside it.</remarks>
internal sealed unsafe class HugeMappings : IDisposable
{
    private readonly IPlatform _platform;
    private readonly Lock _lock = new();
    private readonly Dictionary<nuint, Mapping> _mappings = [];
    private long _bytes;
    private bool _disposed;

    /// <summary>Creates an empty table over <paramref name="platform"/>.</summary>
    public HugeMappings(IPlatform platform) => _platform = platform;

    /// <summary>Live mappings.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _mappings.Count;
            }
        }
    }

    /// <summary>Bytes mapped by live mappings.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>
    /// Maps <paramref name="sizeBytes"/> (a multiple of the page size) aligned to
    /// <paramref name="alignmentBytes"/>, bound to <paramref name="physicalNode"/>, recorded as logical
    /// <paramref name="node"/>.
    /// </summary>
    /// <returns>The mapping, or null when the platform refused (nothing is kept).</returns>
    public void* TryMap(nuint sizeBytes, nuint alignmentBytes, int node, int physicalNode, BindMode mode)
    {
        void* p;
        try
        {
            p = _platform.Reserve(sizeBytes, alignmentBytes);
        }
        catch (PlatformException)
        {
            return null;
        }
        try
        {
            _platform.Commit(p, sizeBytes);
            _platform.Bind(p, sizeBytes, physicalNode, mode);
        }
        catch (PlatformException)
        {
            _platform.Release(p, sizeBytes);
            return null;
        }
        lock (_lock)
        {
            _mappings.Add((nuint)p, new Mapping(sizeBytes, node));
        }
        Interlocked.Add(ref _bytes, (long)sizeBytes); // Atomic only: a statistic.
        return p;
    }

    /// <summary>Finds the mapping that starts at <paramref name="p"/>.</summary>
    public bool TryFind(void* p, out nuint sizeBytes, out int node)
    {
        lock (_lock)
        {
            if (_mappings.TryGetValue((nuint)p, out Mapping mapping))
            {
                sizeBytes = mapping.SizeBytes;
                node = mapping.Node;
                return true;
            }
        }
        sizeBytes = 0;
        node = -1;
        return false;
    }

    /// <summary>Unmaps the mapping that starts at <paramref name="p"/>.</summary>
    /// <returns>False when no live mapping starts there; nothing changed.</returns>
    public bool TryUnmap(void* p)
    {
        Mapping mapping;
        lock (_lock)
        {
            if (!_mappings.Remove((nuint)p, out mapping))
                return false;
        }
        Interlocked.Add(ref _bytes, -(long)mapping.SizeBytes); // Atomic only: a statistic.
        _platform.Release(p, mapping.SizeBytes);
        return true;
    }

    /// <summary>Unmaps every live mapping.</summary>
    public void Dispose()
    {
        KeyValuePair<nuint, Mapping>[] all;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            all = [.. _mappings];
            _mappings.Clear();
        }
        foreach ((nuint address, Mapping mapping) in all)
            _platform.Release((void*)address, mapping.SizeBytes);
        Interlocked.Exchange(ref _bytes, 0); // Atomic only: a statistic.
    }

    private readonly record struct Mapping(nuint SizeBytes, int Node);
}
