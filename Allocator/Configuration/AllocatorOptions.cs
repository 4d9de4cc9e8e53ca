using System.Text;

namespace Numalloc;

/// <summary>
/// Everything the allocator is configured with, read once at start. Immutable once built:
/// set properties with an object initializer, parse a config string with
/// <see cref="ConfigParser.Parse"/>, or read <c>NUMALLOC_CONFIG</c> with <see cref="FromEnvironment"/>.
/// </summary>
/// <remarks>
/// Zone sizes are per node. The allocator onlines and grows memory in whole blocks, so
/// <see cref="NormalBytes"/>, <see cref="MovableBytes"/> and the two limits are each rounded
/// <em>up</em> to a whole number of <see cref="BlockBytes"/> (64M with 16M blocks is 4 blocks;
/// 20M is 2 blocks). Call <see cref="Validate"/> to check options built in code; the parser
/// always validates.
/// </remarks>
public sealed class AllocatorOptions : IEquatable<AllocatorOptions>
{
    /// <summary>The environment variable <see cref="FromEnvironment"/> reads.</summary>
    public const string EnvironmentVariable = "NUMALLOC_CONFIG";

    /// <summary>Bytes in one KiB.</summary>
    internal const long KiB = 1024;

    /// <summary>Bytes in one MiB.</summary>
    internal const long MiB = 1024 * KiB;

    /// <summary>Bytes in one GiB.</summary>
    internal const long GiB = 1024 * MiB;

    /// <summary>The largest buddy block (4 KiB &lt;&lt; MaxOrder 10): a memory block is a whole number of them.</summary>
    public const long LargestBuddyBlockBytes = 4 * MiB;

    /// <summary>Largest memory block accepted (the kernel's largest x86 memory block is 2 GiB).</summary>
    public const long MaxBlockBytes = 2 * GiB;

    /// <summary>Largest per-node zone size accepted (64 TiB): keeps every node-span sum far from overflow.</summary>
    public const long MaxZoneBytes = 1L << 46;

    /// <summary>Largest Unix socket path, in UTF-8 bytes (sizeof(sun_path) - 1).</summary>
    internal const int MaxSocketPathBytes = 107;

    /// <summary>The topology: the machine's own (default) or a simulated one.</summary>
    public TopologySpec Topology { get; init; } = TopologySpec.Os;

    /// <summary>Normal zone memory online at start, per node, rounded up to whole blocks. Must be &gt; 0. Default 64 MiB.</summary>
    public long NormalBytes { get; init; } = 64 * MiB;

    /// <summary>Movable zone memory online at start, per node, rounded up to whole blocks. 0 = no movable memory at start. Default 64 MiB.</summary>
    public long MovableBytes { get; init; } = 64 * MiB;

    /// <summary>Most memory the Normal zone may grow to, per node, rounded up to whole blocks. At least <see cref="NormalBytes"/>. Default 4 GiB.</summary>
    public long NormalMaxBytes { get; init; } = 4 * GiB;

    /// <summary>Most memory the Movable zone may grow to, per node, rounded up to whole blocks; 0 = no movable zone. At least <see cref="MovableBytes"/>. Default 4 GiB.</summary>
    public long MovableMaxBytes { get; init; } = 4 * GiB;

    /// <summary>The memory block (hot-plug unit) size: a power of two, a multiple of 4 MiB, at most 2 GiB. Default 16 MiB.</summary>
    public long BlockBytes { get; init; } = 16 * MiB;

    /// <summary>How blocks are bound to their physical node. Default <see cref="BindPolicy.Preferred"/>.</summary>
    public BindPolicy Bind { get; init; } = BindPolicy.Preferred;

    /// <summary>How long free memory stays committed before it is purged, in ms: 0 = purge at once, -1 = never. Default 10000.</summary>
    public int DecayMs { get; init; } = 10_000;

    /// <summary>What a bad free (not ours, or already free) does. Default <see cref="BadFreeAction.Report"/>.</summary>
    public BadFreeAction OnBadFree { get; init; } = BadFreeAction.Report;

    /// <summary>Path of the Unix control socket to serve the admin API on, or <see langword="null"/> for none.</summary>
    public string? AdminSocket { get; init; }

    /// <summary>
    /// Reads <c>NUMALLOC_CONFIG</c>: unset or blank gives the defaults, anything else is parsed.
    /// </summary>
    /// <exception cref="ConfigException">The variable holds a bad configuration.</exception>
    public static AllocatorOptions FromEnvironment()
    {
        string? config = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(config) ? new AllocatorOptions() : ConfigParser.Parse(config);
    }

    /// <summary>
    /// This configuration in the <c>NUMALLOC_CONFIG</c> format, every key written out;
    /// <see cref="ConfigParser.Parse"/> of the result equals these options.
    /// </summary>
    public string ToConfigString()
    {
        var sb = new StringBuilder();
        sb.Append("topology=").Append(Topology.ToString());
        sb.Append(";normal=").Append(ConfigParser.FormatSize(NormalBytes));
        sb.Append(";movable=").Append(ConfigParser.FormatSize(MovableBytes));
        sb.Append(";normal_max=").Append(ConfigParser.FormatSize(NormalMaxBytes));
        sb.Append(";movable_max=").Append(ConfigParser.FormatSize(MovableMaxBytes));
        sb.Append(";block=").Append(ConfigParser.FormatSize(BlockBytes));
        if (Topology.Kind == TopologyKind.Simulated && Topology.Distances is not null)
        {
            sb.Append(";distance=").Append(ConfigParser.FormatDistances(Topology));
        }

        sb.Append(";bind=").Append(ConfigParser.FormatBind(Bind));
        sb.Append(";decay_ms=").Append(DecayMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        sb.Append(";on_bad_free=").Append(ConfigParser.FormatBadFree(OnBadFree));
        if (AdminSocket is not null)
        {
            sb.Append(";admin_socket=").Append(AdminSocket);
        }

        return sb.ToString();
    }

    /// <summary>Checks every value and the rules between them.</summary>
    /// <exception cref="ConfigException">A value is out of range or contradicts another; the message names the key.</exception>
    public void Validate()
    {
        ConfigParser.ThrowIfInvalid("topology", Topology.ToString(), Topology.Validate());
        ConfigParser.ThrowIfInvalid("normal", ConfigParser.FormatSize(NormalBytes), ConfigParser.CheckZoneSize("normal", NormalBytes, allowZero: false));
        ConfigParser.ThrowIfInvalid("movable", ConfigParser.FormatSize(MovableBytes), ConfigParser.CheckZoneSize("movable", MovableBytes, allowZero: true));
        ConfigParser.ThrowIfInvalid("normal_max", ConfigParser.FormatSize(NormalMaxBytes), ConfigParser.CheckZoneSize("normal_max", NormalMaxBytes, allowZero: false));
        ConfigParser.ThrowIfInvalid("movable_max", ConfigParser.FormatSize(MovableMaxBytes), ConfigParser.CheckZoneSize("movable_max", MovableMaxBytes, allowZero: true));
        ConfigParser.ThrowIfInvalid("block", ConfigParser.FormatSize(BlockBytes), ConfigParser.CheckBlock(BlockBytes));
        ConfigParser.ThrowIfInvalid("bind", Bind.ToString(), Enum.IsDefined(Bind) ? null : "bind must be preferred or strict");
        ConfigParser.ThrowIfInvalid("decay_ms", DecayMs.ToString(System.Globalization.CultureInfo.InvariantCulture), ConfigParser.CheckDecay(DecayMs));
        ConfigParser.ThrowIfInvalid("on_bad_free", OnBadFree.ToString(), Enum.IsDefined(OnBadFree) ? null : "on_bad_free must be report, abort or check");
        if (AdminSocket is not null)
        {
            ConfigParser.ThrowIfInvalid("admin_socket", AdminSocket, ConfigParser.CheckSocketPath(AdminSocket));
        }

        if (NormalMaxBytes < NormalBytes)
        {
            ConfigParser.ThrowIfInvalid("normal_max", ConfigParser.FormatSize(NormalMaxBytes),
                $"normal_max must be at least normal ({ConfigParser.FormatSize(NormalBytes)})");
        }

        if (MovableMaxBytes < MovableBytes)
        {
            ConfigParser.ThrowIfInvalid("movable_max", ConfigParser.FormatSize(MovableMaxBytes),
                $"movable_max must be at least movable ({ConfigParser.FormatSize(MovableBytes)})");
        }
    }

    /// <summary>Whole blocks needed to hold <paramref name="bytes"/> (rounded up).</summary>
    internal long BlocksFor(long bytes) => (bytes + BlockBytes - 1) / BlockBytes;

    /// <inheritdoc/>
    public bool Equals(AllocatorOptions? other) =>
        other is not null
        && Topology.Equals(other.Topology)
        && NormalBytes == other.NormalBytes
        && MovableBytes == other.MovableBytes
        && NormalMaxBytes == other.NormalMaxBytes
        && MovableMaxBytes == other.MovableMaxBytes
        && BlockBytes == other.BlockBytes
        && Bind == other.Bind
        && DecayMs == other.DecayMs
        && OnBadFree == other.OnBadFree
        && string.Equals(AdminSocket, other.AdminSocket, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as AllocatorOptions);

    /// <inheritdoc/>
    public override int GetHashCode() =>
        HashCode.Combine(Topology, NormalBytes, MovableBytes, NormalMaxBytes, MovableMaxBytes, BlockBytes, HashCode.Combine(Bind, DecayMs, OnBadFree, AdminSocket));

    /// <summary>The configuration string (<see cref="ToConfigString"/>).</summary>
    public override string ToString() => ToConfigString();
}
