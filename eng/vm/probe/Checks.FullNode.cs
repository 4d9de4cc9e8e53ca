using System.Diagnostics;
using System.Globalization;
using Numalloc.Topology;

namespace Numalloc.VmProbe;

internal sealed partial class Checks
{
    // How far past the node's free memory a fill goes: enough that the kernel must spill or fail,
    // small enough that the spill fits on the nearest node.
    private const long OverfillMiB = 48;

    // A fill of a few hundred MiB under TCG takes seconds; this only stops a hung child.
    private static readonly TimeSpan s_fillTimeout = TimeSpan.FromMinutes(3);

    /// <summary>
    /// bind=preferred (MPOL_PREFERRED, the default): filling the small node past its free memory
    /// succeeds; the node fills and the rest spills to its nearest node instead of invoking the OOM killer.
    /// </summary>
    private void PreferredBindingFallsBackWhenTheNodeIsFull() => PreferredFill(objects: false);

    /// <summary>
    /// The same at object level: the fill is large allocations from <see cref="NumaAllocator.AllocateOnNode"/>
    /// of a facade built with bind=preferred.
    /// </summary>
    private void PreferredBindingFallsBackWhenTheNodeIsFullForObjects() => PreferredFill(objects: true);

    /// <summary>
    /// bind=strict (MPOL_BIND): the same fill cannot fall back; the kernel's OOM killer ends the
    /// filling process (it runs as a child so the probe survives to report it).
    /// </summary>
    private void StrictBindingFailsWhenTheNodeIsFull() => StrictFill(objects: false);

    /// <summary>The same at object level: large allocations of a facade built with bind=strict.</summary>
    private void StrictBindingFailsWhenTheNodeIsFullForObjects() => StrictFill(objects: true);

    private void PreferredFill(bool objects)
    {
        int node = _options.FullNode;
        if (node < 0)
        {
            if (!objects)
                _tap.Comment("no --full-node: the full-node checks do not run");
            return;
        }

        long freeMiB = PageProbe.NodeMeminfoKiB(node, "MemFree") / 1024;
        long oomBefore = PageProbe.VmStat("oom_kill");
        FillOutcome fill = RunFill(new FillRequest(node, Strict: false, freeMiB + OverfillMiB, objects));
        long oomKills = PageProbe.VmStat("oom_kill") - oomBefore;
        NumaTopology topology = NumaTopology.Discover();
        int nearest = topology.NodesByDistance(node)[1];

        long onNode = fill.PagesOn(node);
        long spilled = fill.TotalPages - onNode;

        // The kernel falls back along node's zonelist, nearest by the distance row qemu gave it: the
        // spill (a fraction of the nearest node's free memory) must land there, or the kernel and
        // discovery disagree about distances.
        bool ok = fill.ExitCode == 0 && fill.Unresolved == 0 && oomKills == 0
            && onNode * PageProbe.PageBytes >= freeMiB * 1024 * 1024 / 2 && spilled > 0
            && fill.PagesOn(nearest) * 10 >= spilled * 9;
        _tap.Report(ok,
            $"{LayerName(objects)}bind=preferred: filling node {node} past its free memory spills to its nearest node {nearest}, no OOM kill",
            $"node {node} had {freeMiB} MiB free; child asked for {freeMiB + OverfillMiB} MiB, exit {fill.ExitCode}, oom kills {oomKills}\n" +
            $"pages by node: {fill.Summary}; nearest node to {node} by distance: {nearest}" + fill.Diagnostic(ok));
    }

    private void StrictFill(bool objects)
    {
        int node = _options.FullNode;
        if (node < 0)
            return;

        long freeMiB = PageProbe.NodeMeminfoKiB(node, "MemFree") / 1024;
        long oomBefore = PageProbe.VmStat("oom_kill");
        FillOutcome fill = RunFill(new FillRequest(node, Strict: true, freeMiB + OverfillMiB, objects));
        long oomKills = PageProbe.VmStat("oom_kill") - oomBefore;

        // 137 = 128 + SIGKILL: how .NET reports a child the OOM killer ended.
        bool ok = fill.ExitCode == 137 && oomKills >= 1;
        _tap.Report(ok,
            $"{LayerName(objects)}bind=strict: filling node {node} past its free memory does not fall back: the OOM killer ends the filler",
            $"node {node} had {freeMiB} MiB free; child asked for {freeMiB + OverfillMiB} MiB, exit {fill.ExitCode}, oom kills {oomKills}" +
            (fill.TotalPages > 0 ? $"\npages by node: {fill.Summary}" : string.Empty) + fill.Diagnostic(ok));
    }

    // The page-level lines keep their words; the object-level ones say so.
    private static string LayerName(bool objects) => objects ? "objects (AllocateOnNode, 4 MiB runs): " : string.Empty;

    /// <summary>Runs <paramref name="request"/> in a child process (this same program) and collects what it reported.</summary>
    private FillOutcome RunFill(FillRequest request)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? throw new InvalidOperationException("no process path"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in _options.ChildArguments(request))
            start.ArgumentList.Add(arg);

        using Process child = Process.Start(start) ?? throw new InvalidOperationException("the fill child did not start");
        Task<string> stderr = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        if (!child.WaitForExit(s_fillTimeout))
        {
            child.Kill();
            child.WaitForExit();
            return FillOutcome.Parse(-1, stdout, "timed out after " + s_fillTimeout + "\n" + stderr.Result);
        }

        return FillOutcome.Parse(child.ExitCode, stdout, stderr.Result);
    }

    /// <summary>What a fill child reported: its exit status and, when it got that far, pages per node.</summary>
    private sealed class FillOutcome
    {
        private long[] _pagesByNode = [];

        public int ExitCode { get; private init; }

        public long Unresolved { get; private set; }

        public long TotalPages => _pagesByNode.Sum();

        public string Summary { get; private set; } = "none reported";

        private string Output { get; init; } = string.Empty;

        public long PagesOn(int node) => node < _pagesByNode.Length ? _pagesByNode[node] : 0;

        /// <summary>The child's own output, shown only when the check failed.</summary>
        public string Diagnostic(bool ok) => ok || Output.Length == 0 ? string.Empty : "\nchild output:\n" + Output.TrimEnd();

        public static FillOutcome Parse(int exitCode, string stdout, string stderr)
        {
            var outcome = new FillOutcome { ExitCode = exitCode, Output = stdout + stderr };
            foreach (string line in stdout.Split('\n'))
            {
                // fill-result: nodes=a,b,c,d unresolved=e
                if (!line.StartsWith(FillChild.ResultPrefix, StringComparison.Ordinal))
                    continue;
                foreach (string field in line[FillChild.ResultPrefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (field.StartsWith("nodes=", StringComparison.Ordinal))
                        outcome._pagesByNode = [.. field["nodes=".Length..].Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture))];
                    else if (field.StartsWith("unresolved=", StringComparison.Ordinal))
                        outcome.Unresolved = long.Parse(field["unresolved=".Length..], CultureInfo.InvariantCulture);
                }

                outcome.Summary = string.Join(", ", outcome._pagesByNode.Select((count, node) => $"node {node}: {count}"));
            }

            return outcome;
        }
    }
}
