using Numalloc.Pages;
using Numalloc.Platform;

namespace Numalloc.Objects;

/// <summary>
/// A native table with one fixed-size entry per page of the heap, in its own reservation (never in
/// the heap's blocks, so metadata never pins a block), committed one memory block's worth at a time
/// the first time a slab is carved in that block, and never decommitted. The slab layer keeps a
/// slab's metadata in the entry of its head page, so finding it is a shift and an add.
/// </summary>
/// <remarks>
/// Committing makes the range accessible; the OS backs only the entries that are touched (slab heads),
/// so a block of one-page slabs costs one entry per page and a block of 256 KiB slabs one per 64 pages.
/// Race: two carvers in the same fresh block. Rule: commits run under <c>_lock</c> and publish the
/// block's flag with a release store after the commit; readers of an entry reach it only through a
/// slab they were handed under a lock or a cache word, so the flag is only read by carvers.
/// </remarks>
internal sealed unsafe class SlabSideTable : IDisposable
{
    private readonly IPlatform _platform;
    private readonly int _entryShift;
    private readonly int _pagesPerBlockShift;
    private readonly nuint _bytes;
    private readonly Lock _lock = new();
    private byte* _entries;
    private byte* _committed; // one flag per memory block
    private readonly int _blockCount;

    /// <summary>Reserves <paramref name="entryBytes"/> (a power of two) per page of <paramref name="layout"/>.</summary>
    /// <exception cref="PlatformException">The reservation failed.</exception>
    public SlabSideTable(IPlatform platform, HeapLayout layout, int entryBytes)
    {
        Debug.Assert(System.Numerics.BitOperations.IsPow2(entryBytes));
        _platform = platform;
        _entryShift = System.Numerics.BitOperations.Log2((uint)entryBytes);
        _pagesPerBlockShift = layout.PagesPerBlockShift;
        _bytes = (nuint)layout.PageCount << _entryShift;
        _blockCount = layout.BlockCount;
        _committed = (byte*)NativeMemory.AllocZeroed((nuint)layout.BlockCount);
        _entries = (byte*)platform.Reserve(_bytes, 0);
    }

    /// <summary>The entry of <paramref name="page"/> (committed only once <see cref="EnsureCommitted"/> ran for its block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* EntryOf(int page) => _entries + ((nuint)(uint)page << _entryShift);

    /// <summary>Commits the entries of <paramref name="page"/>'s memory block if that has not happened yet.</summary>
    /// <exception cref="PlatformException">The commit failed (nothing changed).</exception>
    public void EnsureCommitted(int page)
    {
        int block = page >> _pagesPerBlockShift;
        // Acquire: pairs with the release store below; a set flag means the commit is complete.
        if (Volatile.Read(ref _committed[block]) != 0)
            return;
        lock (_lock)
        {
            if (_committed[block] != 0)
                return;
            int firstPage = block << _pagesPerBlockShift;
            _platform.Commit(EntryOf(firstPage), (nuint)1 << (_pagesPerBlockShift + _entryShift));
            // Release: the commit is complete before another carver skips it.
            Volatile.Write(ref _committed[block], 1);
        }
    }

    /// <summary>Bytes committed for entries (whole memory blocks' worth), plus the per-block flags; racy.</summary>
    public long CommittedBytes
    {
        get
        {
            long blocks = 0;
            for (int b = 0; b < _blockCount; b++)
                blocks += Volatile.Read(ref _committed[b]); // Acquire: pairs with the commit's release store.
            return (blocks << (_pagesPerBlockShift + _entryShift)) + _blockCount;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_entries != null)
            _platform.Release(_entries, _bytes);
        _entries = null;
        NativeMemory.Free(_committed);
        _committed = null;
    }
}
