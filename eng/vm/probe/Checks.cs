using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.VmProbe;

/// <summary>
/// Every check the probe runs against the guest kernel. A check is one parameterless method, in a
/// <c>Checks.Area.cs</c> file, that reports one or more results through <see cref="_tap"/>; an
/// exception out of it counts as one failed result under its name. To add a check, write the
/// method and add it to <see cref="All"/>: nothing else changes.
/// </summary>
internal sealed unsafe partial class Checks
{
    // Small per-node zones: every check builds its own heap and disposes it, so checks never see
    // each other's pages. decay_ms=-1: nothing is purged behind a check's back.
    private const string SmallHeap = "normal=16M;movable=16M;normal_max=64M;movable_max=32M;decay_ms=-1";

    private readonly ProbeOptions _options;
    private readonly Tap _tap;
    private readonly IPlatform _platform;

    public Checks(ProbeOptions options, Tap tap)
    {
        _options = options;
        _tap = tap;
        _platform = CreatePlatform(options);
    }

    /// <summary>The checks in run order: the full-node checks last, since they fill a node and leave it tight.</summary>
    private (string Name, Action Run)[] All() =>
    [
        (nameof(DiscoveryMatchesQemu), DiscoveryMatchesQemu),
        (nameof(BlocksCarryTheirNodePolicy), BlocksCarryTheirNodePolicy),
        (nameof(PagesOfEveryOrderLiveOnTheirNode), PagesOfEveryOrderLiveOnTheirNode),
        (nameof(GrownBlocksLiveOnTheirNode), GrownBlocksLiveOnTheirNode),
        (nameof(InterleaveSpreadsPagesRoundRobin), InterleaveSpreadsPagesRoundRobin),
        (nameof(LocalPolicyFollowsTheCpu), LocalPolicyFollowsTheCpu),
        (nameof(ObjectsOfEverySizeLiveOnTheirNode), ObjectsOfEverySizeLiveOnTheirNode),
        (nameof(LocalPolicyFollowsTheCpuForObjects), LocalPolicyFollowsTheCpuForObjects),
        (nameof(InterleaveSpreadsObjectsRoundRobin), InterleaveSpreadsObjectsRoundRobin),
        (nameof(DrillOfflinesAMovableZoneUnderLoad), DrillOfflinesAMovableZoneUnderLoad),
        (nameof(PreferredBindingFallsBackWhenTheNodeIsFull), PreferredBindingFallsBackWhenTheNodeIsFull),
        (nameof(StrictBindingFailsWhenTheNodeIsFull), StrictBindingFailsWhenTheNodeIsFull),
        (nameof(PreferredBindingFallsBackWhenTheNodeIsFullForObjects), PreferredBindingFallsBackWhenTheNodeIsFullForObjects),
        (nameof(StrictBindingFailsWhenTheNodeIsFullForObjects), StrictBindingFailsWhenTheNodeIsFullForObjects),
    ];

    /// <summary>Runs every check; a check that throws is one failed result.</summary>
    public void RunAll()
    {
        if (_options.Misbind)
            _tap.Comment("negative control: every block is bound one physical node off (--misbind); placement checks must fail");
        foreach ((string name, Action run) in All())
        {
            try
            {
                run();
            }
#pragma warning disable CA1031 // One broken check must not hide the results of the others.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _tap.Report(false, name + " threw", ex.ToString());
            }
        }
    }

    /// <summary>The platform every heap of this run uses: the real one, or the misbinding control.</summary>
    internal static IPlatform CreatePlatform(ProbeOptions options)
    {
        IPlatform real = new LinuxPlatform();
        return options.Misbind ? new MisbindingPlatform(real, options.NodeCount) : real;
    }

    /// <summary>A page allocator over the guest's own nodes (<c>topology=os</c>) with <paramref name="config"/>.</summary>
    internal static PageAllocator NewPageAllocator(IPlatform platform, string config)
    {
        AllocatorOptions options = ConfigParser.Parse("topology=os;" + config);
        return new PageAllocator(options, NumaTopology.FromOptions(options), platform);
    }

    private PageAllocator NewPageAllocator(string config) => NewPageAllocator(_platform, config);

    /// <summary>
    /// The public facade over the guest's own nodes (<c>topology=os</c>) with <paramref name="config"/>,
    /// on <paramref name="platform"/> so that --misbind reaches slabs, page runs, huge mappings and movable buffers.
    /// </summary>
    internal static NumaAllocator NewAllocator(IPlatform platform, string config) =>
        NumaAllocator.CreateOnPlatform(ConfigParser.Parse("topology=os;" + config), platform);

    private NumaAllocator NewAllocator(string config) => NewAllocator(_platform, config);

    private static nuint BytesOf(int order) => (nuint)PageProbe.PageBytes << order;
}
