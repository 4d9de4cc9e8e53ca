namespace Numalloc.Bench.Drill;

/// <summary>
/// Allocation latencies in nanoseconds, log-linear buckets (16 per power of two, so a percentile
/// is off by at most 1/16 of its value), like HdrHistogram with 4 significant bits. One per worker
/// and step: owner-only, no atomics; merged when the step ends.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 4;
    private const int SubBuckets = 1 << SubBucketBits;
    // Values below 16 ns are exact; then 16 buckets for each power of two up to 2^63.
    private const int BucketCount = SubBuckets + ((64 - SubBucketBits) * SubBuckets);

    private readonly long[] _counts = new long[BucketCount];

    /// <summary>Samples recorded.</summary>
    public long Count { get; private set; }

    /// <summary>Largest sample recorded, in ns.</summary>
    public long Max { get; private set; }

    /// <summary>Records one latency; negative values count as 0.</summary>
    public void Record(long nanoseconds)
    {
        long value = Math.Max(0, nanoseconds);
        _counts[BucketOf(value)]++;
        Count++;
        if (value > Max)
            Max = value;
    }

    /// <summary>Adds every sample of <paramref name="other"/> to this one.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < BucketCount; i++)
            _counts[i] += other._counts[i];
        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>Forgets every sample.</summary>
    public void Clear()
    {
        Array.Clear(_counts);
        Count = 0;
        Max = 0;
    }

    /// <summary>
    /// The value at <paramref name="percentile"/> (0..100): the upper bound of the bucket that holds
    /// that rank, never above <see cref="Max"/>; 0 when there are no samples.
    /// </summary>
    public long Percentile(double percentile)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percentile, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percentile, 100);
        if (Count == 0)
            return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(percentile / 100.0 * Count));
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
                return Math.Min(UpperBoundOf(i), Max);
        }
        return Max;
    }

    internal static int BucketOf(long value)
    {
        if (value < SubBuckets)
            return (int)value;
        int magnitude = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)value); // >= SubBucketBits
        int sub = (int)(value >> (magnitude - SubBucketBits)) & (SubBuckets - 1);
        return SubBuckets + ((magnitude - SubBucketBits) * SubBuckets) + sub;
    }

    internal static long UpperBoundOf(int bucket)
    {
        if (bucket < SubBuckets)
            return bucket;
        int magnitude = ((bucket - SubBuckets) / SubBuckets) + SubBucketBits;
        int sub = (bucket - SubBuckets) % SubBuckets;
        long lower = (1L << magnitude) + ((long)sub << (magnitude - SubBucketBits));
        long width = 1L << (magnitude - SubBucketBits);
        return lower + width - 1 < lower ? long.MaxValue : lower + width - 1;
    }
}
