namespace Numalloc;

/// <summary>
/// Which NUMA topology the allocator uses: the machine's own (<see cref="TopologyKind.Os"/>) or a
/// simulated one of <see cref="NodeCount"/> logical nodes laid over the machine's memory.
/// Immutable; equality compares the effective distance matrix (a <see langword="null"/>
/// <see cref="Distances"/> equals an explicit 10 local / 20 remote matrix).
/// </summary>
public sealed class TopologySpec : IEquatable<TopologySpec>
{
    /// <summary>Most nodes a topology may have (one 64-bit node mask covers them all).</summary>
    public const int MaxNodes = 64;

    /// <summary>Most CPUs one simulated node may be given explicitly.</summary>
    public const int MaxCpusPerNode = 1024;

    /// <summary>Distance of a node to itself, as in the kernel (<c>LOCAL_DISTANCE</c>).</summary>
    public const int LocalDistance = 10;

    /// <summary>Default distance between two different simulated nodes (<c>REMOTE_DISTANCE</c>).</summary>
    public const int RemoteDistance = 20;

    /// <summary>Largest distance accepted; the kernel reserves 255 for "unreachable".</summary>
    public const int MaxDistance = 254;

    private readonly int[,]? _distances;

    /// <summary>The machine's own topology, discovered at start.</summary>
    public static TopologySpec Os { get; } = new();

    /// <summary>Where the topology comes from. Default <see cref="TopologyKind.Os"/>.</summary>
    public TopologyKind Kind { get; init; }

    /// <summary>Number of simulated nodes (1..<see cref="MaxNodes"/>); 0 for <see cref="TopologyKind.Os"/>.</summary>
    public int NodeCount { get; init; }

    /// <summary>
    /// Virtual CPUs per simulated node (node n gets CPU ids n*C .. n*C+C-1); 0 spreads the machine's
    /// CPUs over the nodes. Always 0 for <see cref="TopologyKind.Os"/>.
    /// </summary>
    public int CpusPerNode { get; init; }

    /// <summary>
    /// Full NodeCount x NodeCount distance matrix for a simulated topology, or <see langword="null"/>
    /// for 10 local / 20 remote. Copied on init and on every get, so the spec stays immutable;
    /// read single entries with <see cref="DistanceOrDefault"/>.
    /// </summary>
    public int[,]? Distances
    {
        get => (int[,]?)_distances?.Clone();
        init => _distances = (int[,]?)value?.Clone();
    }

    /// <summary>A simulated topology.</summary>
    /// <param name="nodeCount">Logical nodes, 1..<see cref="MaxNodes"/>.</param>
    /// <param name="cpusPerNode">Virtual CPUs per node, or 0 to spread the machine's CPUs.</param>
    /// <param name="distances">Full distance matrix, or <see langword="null"/> for 10 local / 20 remote.</param>
    /// <exception cref="ArgumentException">The shape or the matrix is invalid.</exception>
    public static TopologySpec Simulate(int nodeCount, int cpusPerNode = 0, int[,]? distances = null)
    {
        var spec = new TopologySpec
        {
            Kind = TopologyKind.Simulated,
            NodeCount = nodeCount,
            CpusPerNode = cpusPerNode,
            Distances = distances,
        };
        string? error = spec.Validate();
        if (error is not null)
        {
            string param = nodeCount is < 1 or > MaxNodes ? nameof(nodeCount)
                : cpusPerNode is < 0 or > MaxCpusPerNode ? nameof(cpusPerNode)
                : nameof(distances);
            throw new ArgumentException(error, param);
        }

        return spec;
    }

    /// <summary>The distance from node <paramref name="from"/> to <paramref name="to"/>, defaults applied.</summary>
    public int DistanceOrDefault(int from, int to) =>
        _distances is not null ? _distances[from, to] : from == to ? LocalDistance : RemoteDistance;

    /// <summary>Describes what is wrong with this spec, or returns <see langword="null"/> when it is valid.</summary>
    internal string? Validate()
    {
        if (Kind == TopologyKind.Os)
        {
            return NodeCount != 0 || CpusPerNode != 0 || _distances is not null
                ? "an os topology takes its nodes, CPUs and distances from the machine (node count, CPUs per node and distances must be unset)"
                : null;
        }

        if (Kind != TopologyKind.Simulated)
        {
            return $"unknown topology kind {Kind}";
        }

        if (NodeCount is < 1 or > MaxNodes)
        {
            return $"a simulated topology needs 1..{MaxNodes} nodes, not {NodeCount}";
        }

        if (CpusPerNode is < 0 or > MaxCpusPerNode)
        {
            return $"CPUs per node must be 0 (spread the machine's CPUs) or 1..{MaxCpusPerNode}, not {CpusPerNode}";
        }

        return _distances is null ? null : ValidateDistances(_distances, NodeCount);
    }

    /// <summary>
    /// The kernel's rules for a distance table (as for an ACPI SLIT): N x N, every entry
    /// <see cref="LocalDistance"/>..<see cref="MaxDistance"/>, and each diagonal entry strictly
    /// smaller than the rest of its row (a node is nearest to itself). Symmetry is not required.
    /// </summary>
    /// <returns>What is wrong, or <see langword="null"/>.</returns>
    internal static string? ValidateDistances(int[,] distances, int nodeCount)
    {
        if (distances.GetLength(0) != nodeCount || distances.GetLength(1) != nodeCount)
        {
            return $"the distance matrix must be {nodeCount}x{nodeCount} for {nodeCount} nodes, not {distances.GetLength(0)}x{distances.GetLength(1)}";
        }

        for (int i = 0; i < nodeCount; i++)
        {
            for (int j = 0; j < nodeCount; j++)
            {
                int d = distances[i, j];
                if (d is < LocalDistance or > MaxDistance)
                {
                    return $"distance {i}->{j} is {d}; distances must be {LocalDistance}..{MaxDistance}";
                }

                if (i != j && d <= distances[i, i])
                {
                    return $"distance {i}->{j} is {d}, not more than the local distance {distances[i, i]} of node {i}; a node must be nearest to itself";
                }
            }
        }

        return null;
    }

    /// <inheritdoc/>
    public bool Equals(TopologySpec? other)
    {
        if (other is null)
        {
            return false;
        }

        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (Kind != other.Kind || NodeCount != other.NodeCount || CpusPerNode != other.CpusPerNode)
        {
            return false;
        }

        if (_distances is null && other._distances is null)
        {
            return true;
        }

        int n = NodeCount;
        if ((_distances is not null && (_distances.GetLength(0) != n || _distances.GetLength(1) != n))
            || (other._distances is not null && (other._distances.GetLength(0) != n || other._distances.GetLength(1) != n)))
        {
            // An invalid matrix (wrong shape) equals only the very same array.
            return ReferenceEquals(_distances, other._distances);
        }

        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (DistanceOrDefault(i, j) != other.DistanceOrDefault(i, j))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as TopologySpec);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, NodeCount, CpusPerNode);

    /// <summary>The spec as a <c>topology=</c> value: <c>os</c>, <c>sim:N</c> or <c>sim:NxC</c>.</summary>
    public override string ToString() => Kind switch
    {
        TopologyKind.Os => "os",
        _ when CpusPerNode == 0 => FormattableString.Invariant($"sim:{NodeCount}"),
        _ => FormattableString.Invariant($"sim:{NodeCount}x{CpusPerNode}"),
    };
}
