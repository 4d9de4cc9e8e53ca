namespace Numalloc.Objects;

/// <summary>Which list of its <see cref="SlabCacheNode"/> a slab is on.</summary>
internal enum SlabList : byte
{
    /// <summary>On no list: every object is out (in caches or with users). Found again through its objects.</summary>
    Full = 0,

    /// <summary>Some objects free, some out: refills take from these first.</summary>
    Partial = 1,

    /// <summary>Every object free; kept for reuse (hysteresis) until a trim or a release.</summary>
    Empty = 2,

    /// <summary>Taken off every list by a release that will give its pages back.</summary>
    Releasing = 3,
}

/// <summary>
/// One slab's metadata, in the <see cref="SlabSideTable"/> entry of its head page (the kernel keeps
/// the same in <c>struct slab</c>, overlaid on the page descriptor). The descriptors of the slab's
/// pages say which class it serves (<c>Flags</c> = class + 1) and where its head is (<c>Owner</c>).
/// </summary>
/// <remarks>
/// Everything here is read and written only under the lock of the slab's <see cref="SlabCacheNode"/>:
/// objects move between a slab and the caches in batches, so the lock is taken once per batch.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Bytes)]
internal unsafe struct SlabMeta
{
    /// <summary>Size of one entry.</summary>
    public const int Bytes = 128;

    /// <summary>Words in <see cref="Free"/>.</summary>
    public const int BitmapWords = ObjectClassTable.MaxObjectsPerSlab / 64;

    /// <summary>Next slab (head page index) on the same list, or -1.</summary>
    [FieldOffset(0)] public int Next;

    /// <summary>Previous slab on the same list, or -1.</summary>
    [FieldOffset(4)] public int Prev;

    /// <summary>Objects free in the slab (bits set in <see cref="Free"/>).</summary>
    [FieldOffset(8)] public int FreeCount;

    /// <summary>Objects the slab holds.</summary>
    [FieldOffset(12)] public ushort Capacity;

    /// <summary>The size class.</summary>
    [FieldOffset(14)] public byte Class;

    /// <summary>The list it is on.</summary>
    [FieldOffset(15)] public SlabList List;

    /// <summary>Lowest bitmap word that may have a bit set (a scan hint).</summary>
    [FieldOffset(16)] public int FirstFreeWord;

    /// <summary>Bit i set: object i is free in the slab (not in a cache, not with a user).</summary>
    [FieldOffset(64)] public fixed ulong Free[BitmapWords];
}
