using System.Numerics;
using Numalloc.Caches;
using Numalloc.Pages;

namespace Numalloc.Objects;

/// <summary>What the object paths need to know about one size class, in one 16-byte native record.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct ObjectClassInfo
{
    /// <summary>The object size in bytes.</summary>
    [FieldOffset(0)] public int Size;

    /// <summary>ceil(2^32 / Size): <c>(offset * Magic) &gt;&gt; 32</c> is offset / Size for every offset that is a multiple of Size inside a slab.</summary>
    [FieldOffset(4)] public uint Magic;

    /// <summary>Byte offset of this class's magazine inside a thread's <see cref="MagazineSet"/>.</summary>
    [FieldOffset(8)] public int MagazineOffset;

    /// <summary>Buddy order of this class's slabs.</summary>
    [FieldOffset(12)] public byte SlabOrder;

    /// <summary>Objects in one slab (at most <see cref="ObjectClassTable.MaxObjectsPerSlab"/>).</summary>
    [FieldOffset(14)] public ushort ObjectsPerSlab;
}

/// <summary>
/// The object layer's per-class constants: slab geometry, cache sizes, and two native tables for the
/// fast paths (size → magazine offset, class → <see cref="ObjectClassInfo"/>). Built once per process
/// from <see cref="SizeClasses"/>; static readonly pointers, so tier-1 code embeds their addresses.
/// </summary>
/// <remarks>
/// Slabs: the smallest order (at most <see cref="MaxSlabOrder"/>, 256 KiB) whose tail waste is at most
/// 1/8 of the slab and that holds at least <see cref="MinObjectsPerSlab"/> objects, with at most
/// <see cref="MaxObjectsPerSlab"/> objects, so one 512-bit bitmap covers every slab. Caches move
/// <c>64 KiB / size</c> objects per batch (1..32, as tcmalloc's num_objects_to_move); a magazine
/// holds two batches (2..64), a per-CPU cache four. Every thread's magazine
/// set has one magazine per class at a fixed stride (room for the largest capacity), so a class's
/// magazine offset is a constant.
/// </remarks>
internal static unsafe class ObjectClassTable
{
    /// <summary>Objects a slab holds at most: one 512-bit bitmap.</summary>
    public const int MaxObjectsPerSlab = 512;

    /// <summary>
    /// Objects a slab holds at least. Two, not four: a slab of a large class is pinned by any one live
    /// object, so its size is what a sparse class wastes. On the peer harness's mixed trace, where the
    /// 4..32 KiB classes have a dozen live objects each, four objects per slab (slabs of 64..128 KiB)
    /// gave a fragmentation ratio of 1.56 on 1 thread and 1.37 on 2, two objects 1.51 and 1.29.
    /// </summary>
    public const int MinObjectsPerSlab = 2;

    /// <summary>The largest slab order (4 KiB &lt;&lt; 6 = 256 KiB).</summary>
    public const int MaxSlabOrder = 6;

    /// <summary>The largest magazine capacity (classes of 2 KiB and below).</summary>
    public const int MaxMagazineCapacity = 64;

    /// <summary>
    /// Bytes from one class's magazine to the next in a thread's set: <c>MagazineSet.StrideBytes(64)</c>
    /// (a test checks it), a constant so a free computes its magazine with a multiply instead of a load.
    /// </summary>
    public const int MagazineStrideBytes = 640;

    /// <summary>Number of classes.</summary>
    public const int Count = SizeClasses.Count;

    /// <summary>Class → record; <see cref="Count"/> entries.</summary>
    public static readonly ObjectClassInfo* Info = BuildInfo();

    /// <summary>
    /// Magazine offset of the class serving <c>size</c>, indexed by <c>(size + 7) &gt;&gt; 3</c> for sizes
    /// 0..<see cref="SizeClasses.MaxSmallSize"/> (size 0 shares size 1's class): one load on the fast path.
    /// </summary>
    public static readonly ushort* MagazineOffsetOfSize8 = BuildOffsets();

    /// <summary>The class of a magazine offset (inverse of <see cref="ObjectClassInfo.MagazineOffset"/>).</summary>
    public static int ClassOfMagazineOffset(int offset) => (offset - MagazineSet.HeaderBytes) / MagazineStrideBytes;

    /// <summary>
    /// Bytes a batch moves at most (one object when the class is larger). Cached objects keep their
    /// slabs resident, and a magazine plus a per-CPU cache hold six batches of each class: 16 KiB
    /// batches measured 1.43 / 1.22 for the mixed trace's fragmentation (1 / 2 threads) against 1.51 /
    /// 1.29 with 64 KiB, but left 4 KiB objects four to a batch and two to a magazine, and
    /// na_malloc_bulk of 32 such objects went from 0.48x a glibc pair to 2.8x. Speed at page-sized
    /// objects won: 64 KiB, tcmalloc's num_objects_to_move budget.
    /// </summary>
    public const int BatchBytes = 64 * 1024;

    /// <summary>Objects moved per batch between a magazine or per-CPU cache and what lies behind it.</summary>
    public static int BatchOf(int sizeClass) => Math.Clamp(BatchBytes / SizeClasses.SizeOf(sizeClass), 1, 32);

    /// <summary>Objects a thread's magazine of this class holds at most.</summary>
    public static int MagazineCapacityOf(int sizeClass) => Math.Clamp(2 * BatchOf(sizeClass), 2, MaxMagazineCapacity);

    /// <summary>
    /// The first class whose objects keep the free key away from their first word: 2 KiB (a test checks
    /// it). See ObjectHeap's free-key places.
    /// </summary>
    public const int FirstKeyColoredClass = 47;

    /// <summary>From <see cref="FirstKeyColoredClass"/> up the key sits at <c>p + ((p &gt;&gt; 6) &amp; KeyColorMask)</c>: one of the first 2 KiB's 32 lines, by page number.</summary>
    public const int KeyColorMask = 0x7C0;

    /// <summary>The magazine offset of <see cref="FirstKeyColoredClass"/>: the allocation fast paths tell those classes by it.</summary>
    public const int FirstKeyColoredMagazineOffset = MagazineSet.HeaderBytes + (FirstKeyColoredClass * MagazineStrideBytes);

    /// <summary>Objects a per-CPU cache of this class holds before a push flushes a batch.</summary>
    public static int CpuCacheHighOf(int sizeClass) => 4 * BatchOf(sizeClass);

    /// <summary>The slab order for a class size (see the remarks).</summary>
    public static int SlabOrderFor(int size)
    {
        for (int order = 0; order <= MaxSlabOrder; order++)
        {
            int bytes = HeapLayout.PageSize << order;
            int objects = Math.Min(bytes / size, MaxObjectsPerSlab);
            int waste = bytes - (objects * size);
            if (objects >= MinObjectsPerSlab && waste * 8 <= bytes)
                return order;
        }
        return MaxSlabOrder;
    }

    /// <summary>Objects in a slab of <paramref name="order"/> for a class size.</summary>
    public static int ObjectsPerSlabFor(int size, int order) => Math.Min((HeapLayout.PageSize << order) / size, MaxObjectsPerSlab);

    private static ObjectClassInfo* BuildInfo()
    {
        int count = SizeClasses.Count;
        var info = (ObjectClassInfo*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(ObjectClassInfo)), 64);
        for (int c = 0; c < count; c++)
        {
            int size = SizeClasses.SizeOf(c);
            int order = SlabOrderFor(size);
            info[c] = new ObjectClassInfo
            {
                Size = size,
                Magic = (uint)((((ulong)1 << 32) + (ulong)size - 1) / (ulong)size),
                MagazineOffset = MagazineSet.HeaderBytes + (c * MagazineStrideBytes),
                SlabOrder = (byte)order,
                ObjectsPerSlab = (ushort)ObjectsPerSlabFor(size, order),
            };
            Debug.Assert(BitOperations.IsPow2(HeapLayout.PageSize));
        }
        return info;
    }

    private static ushort* BuildOffsets()
    {
        int entries = (SizeClasses.MaxSmallSize >> 3) + 1;
        var offsets = (ushort*)NativeMemory.Alloc((nuint)entries, sizeof(ushort));
        for (int i = 0; i < entries; i++)
        {
            int sizeClass = SizeClasses.ClassOf((nuint)Math.Max(i << 3, 1));
            int offset = MagazineSet.HeaderBytes + (sizeClass * MagazineStrideBytes);
            Debug.Assert(offset <= ushort.MaxValue);
            offsets[i] = (ushort)offset;
        }
        return offsets;
    }
}
