using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// One of the allocator's own counters per operation, read from the sidecar file the case's benchmark
/// wrote (<see cref="CounterSidecar"/>); "-" for cases that record none (the other allocators).
/// </summary>
internal sealed class AllocatorCountersColumn : IColumn
{
    private readonly Func<CountersPerOperation, double> _pick;
    private readonly string _directory;

    public AllocatorCountersColumn(string columnName, string legend, Func<CountersPerOperation, double> pick, string directory)
    {
        ColumnName = columnName;
        Legend = legend;
        _pick = pick;
        _directory = directory;
    }

    /// <summary>The columns for every counter, reading sidecars from <paramref name="directory"/>.</summary>
    public static IColumn[] All(string directory) =>
    [
        new AllocatorCountersColumn("MagMiss/op", "Small allocations that found the thread's magazine empty, per operation", c => c.MagazineMisses, directory),
        new AllocatorCountersColumn("RemoteFrees/op", "Small objects freed on a CPU of another node than theirs, per operation", c => c.CrossNodeFrees, directory),
        new AllocatorCountersColumn("Refills/op", "Per-CPU cache refills from slabs or zones per operation (the allocator's cache misses)", c => c.CacheRefills, directory),
        new AllocatorCountersColumn("Flushes/op", "Per-CPU cache flushes to slabs or zones per operation", c => c.CacheFlushes, directory),
        new AllocatorCountersColumn("Bypass/op", "Operations that found every per-CPU cache of the node held and went to slabs or zones, per operation", c => c.BackendDirect, directory),
        new AllocatorCountersColumn("ZoneAllocs/op", "Blocks handed out by the zones' buddy allocator per operation", c => c.ZoneAllocations, directory),
        new AllocatorCountersColumn("Restarts/op", "Zonelist walks restarted by an overlapping rewrite per operation", c => c.ZonelistRestarts, directory),
    ];

    public string Id => nameof(AllocatorCountersColumn) + "." + ColumnName;

    public string ColumnName { get; }

    public string Legend { get; }

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    /// <summary>The sidecar key of a case: its type, method and parameters.</summary>
    public static string KeyOf(BenchmarkCase benchmarkCase) =>
        CounterSidecar.CaseKey(
            benchmarkCase.Descriptor.Type.Name,
            benchmarkCase.Descriptor.WorkloadMethod.Name,
            benchmarkCase.Parameters.Items.Select(p => (p.Name, (object?)p.Value)));

    /// <summary>The cell text: the counter with four decimals, or "-" when the case recorded no counters.</summary>
    public static string Format(CountersPerOperation? counters, Func<CountersPerOperation, double> pick) =>
        counters is null ? "-" : pick(counters).ToString("0.0000", CultureInfo.InvariantCulture);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => Format(CounterSidecar.Read(_directory, KeyOf(benchmarkCase)), _pick);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public bool IsAvailable(Summary summary) => summary.BenchmarksCases.Any(c => CounterSidecar.Read(_directory, KeyOf(c)) is not null);

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public override string ToString() => ColumnName;
}
