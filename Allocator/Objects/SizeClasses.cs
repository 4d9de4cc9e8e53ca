using System.Numerics;

namespace Numalloc.Objects;

/// <summary>
/// The small-object size classes, 8 B to 32 KiB: every multiple of 8 up to 128 B, then eight
/// classes per power of two (144, 160, … 256, 288, … 32 KiB).
/// </summary>
/// <remarks>
/// Waste: a request lands in the smallest class that holds it, so the worst case for a class is a
/// request one byte above the class below it. With eight classes per doubling that is
/// (step - 1) / class &lt; 1/9 = 11.1% for every class above 128 B, and at most 7/64 = 10.9% from
/// 64 B up; below 64 B the absolute waste is under 8 bytes, the 8-byte quantum every object
/// needs for its alignment (the same floor jemalloc and mimalloc have).
/// The mapping is two table loads and one branch: sizes up to 1 KiB index a table by 8-byte
/// steps, larger ones a table by 128-byte steps (every class above 1 KiB is a multiple of 128).
/// </remarks>
internal static class SizeClasses
{
    /// <summary>The largest small object; larger requests are page-granular.</summary>
    public const int MaxSmallSize = 32 * 1024;

    /// <summary>Sizes up to this are looked up in the fine (8-byte step) table.</summary>
    private const int FineLimit = 1024;

    private static readonly int[] s_sizes = BuildSizes();
    private static readonly byte[] s_fine = BuildTable(FineLimit, 3);
    private static readonly byte[] s_coarse = BuildTable(MaxSmallSize, 7);

    /// <summary>
    /// How many classes there are: 16 multiples of 8 up to 128 B, then 8 per doubling up to 32 KiB. A
    /// constant, so the free fast paths compare with an immediate (the class constructor checks it).
    /// </summary>
    public const int Count = 16 + (8 * 8);

    /// <summary>The object size of class <paramref name="sizeClass"/>.</summary>
    public static int SizeOf(int sizeClass) => s_sizes[sizeClass];

    /// <summary>The class for a request of 1..<see cref="MaxSmallSize"/> bytes (0 is served as 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ClassOf(nuint size)
    {
        Debug.Assert(size <= MaxSmallSize);
        return size <= FineLimit
            ? s_fine[(int)(size + 7) >> 3]
            : s_coarse[(int)(size + 127) >> 7];
    }

    private static int[] BuildSizes()
    {
        var sizes = new List<int>();
        for (int size = 8; size <= 128; size += 8)
            sizes.Add(size);
        for (int power = 128; power < MaxSmallSize; power *= 2)
        {
            int step = power / 8;
            for (int i = 1; i <= 8; i++)
                sizes.Add(power + i * step);
        }
        if (sizes.Count != Count)
            throw new InvalidOperationException($"{sizes.Count} size classes built, {nameof(Count)} says {Count}");
        return [.. sizes];
    }

    // table[i] = smallest class whose size >= i << shift.
    private static byte[] BuildTable(int limit, int shift)
    {
        var table = new byte[(limit >> shift) + 1];
        int sizeClass = 0;
        for (int i = 0; i < table.Length; i++)
        {
            int size = Math.Max(i << shift, 1);
            while (s_sizes[sizeClass] < size)
                sizeClass++;
            table[i] = (byte)sizeClass;
        }
        Debug.Assert(BitOperations.IsPow2(MaxSmallSize) && s_sizes[^1] == MaxSmallSize);
        return table;
    }
}
