using System.Collections.Immutable;

namespace Numalloc.Pages;

/// <summary>
/// One node of the page heap: its two zones, its CPUs and distance row, the growth lock and the
/// numastat counters. Lives as long as the heap.
/// </summary>
internal sealed class NumaNodeState
{
    private readonly long[] _numaStat = new long[6];

    /// <summary>Creates the node; the heap fills <see cref="Zones"/>.</summary>
    public NumaNodeState(int id, ImmutableArray<int> cpus, ImmutableArray<int> distances)
    {
        Id = id;
        Cpus = cpus;
        Distances = distances;
        Zones = new Zone[2];
    }

    /// <summary>The logical node id.</summary>
    public int Id { get; }

    /// <summary>The node's CPU ids.</summary>
    public ImmutableArray<int> Cpus { get; }

    /// <summary>Distance from this node to every node, by node id.</summary>
    public ImmutableArray<int> Distances { get; }

    /// <summary>The zones, indexed by <see cref="ZoneType"/>.</summary>
    public Zone[] Zones { get; }

    /// <summary>
    /// Serializes growth of this node's zones: each grower picks an Absent block of the node's span
    /// under it. Not the hotplug lock, so growth never waits for (or answers Busy to) an operator;
    /// the block table's CAS still keeps growth and an operator's online off the same block.
    /// </summary>
    public Lock GrowthLock { get; } = new();

    /// <summary>Adds <paramref name="pages"/> (default one) to a numastat counter.</summary>
    public void Count(NumaStatItem item, long pages = 1) =>
        // Atomic add only; nothing is ordered against it (statistics, read racily).
        Interlocked.Add(ref _numaStat[(int)item], pages);

    /// <summary>A numastat counter's current value.</summary>
    public long Read(NumaStatItem item) =>
        // Atomic 64-bit read of a counter other threads increment.
        Interlocked.Read(ref _numaStat[(int)item]);
}
