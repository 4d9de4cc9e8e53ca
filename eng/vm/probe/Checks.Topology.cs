using System.Globalization;
using System.Text;
using Numalloc.Topology;

namespace Numalloc.VmProbe;

internal sealed partial class Checks
{
    /// <summary>
    /// Discovery (<c>topology=os</c>, the real sysfs) reports the nodes, CPUs, distances and memory
    /// qemu was given: the matrix is compared entry by entry, so an asymmetric one must come back
    /// unsymmetrised.
    /// </summary>
    private void DiscoveryMatchesQemu()
    {
        NumaTopology topology = NumaTopology.Discover();
        int n = _options.NodeCount;
        _tap.Comment(topology.Describe());
        _tap.Report(topology.NodeCount == n && !topology.IsSimulated,
            $"discovery reports {n} nodes",
            topology.NodeCount == n ? null : $"discovered {topology.NodeCount}, simulated={topology.IsSimulated}");
        if (topology.NodeCount != n)
            return;

        var wrong = new StringBuilder();
        for (int from = 0; from < n; from++)
        {
            for (int to = 0; to < n; to++)
            {
                int expected = _options.Distances[(from * n) + to];
                if (topology.Distance(from, to) != expected)
                    wrong.Append(CultureInfo.InvariantCulture, $"distance({from},{to}) = {topology.Distance(from, to)}, qemu was given {expected}\n");
            }
        }

        _tap.Report(wrong.Length == 0, "discovery reports exactly the distance matrix given to qemu", wrong.ToString().TrimEnd());

        var nodes = new StringBuilder();
        for (int id = 0; id < n; id++)
        {
            NumaNode node = topology.Nodes[id];
            long givenBytes = _options.MemoryMiB[id] * 1024 * 1024;
            if (!node.Cpus.SequenceEqual(_options.Cpus[id]))
                nodes.Append(CultureInfo.InvariantCulture, $"node {id}: cpus {Platform.CpuList.Format(node.Cpus)}, qemu was given {Platform.CpuList.Format(_options.Cpus[id])}\n");

            // MemTotal is what the kernel manages: a little below what qemu gave (firmware, memmap).
            if (!node.HasMemory || node.MemoryBytes > givenBytes || node.MemoryBytes < givenBytes / 2)
                nodes.Append(CultureInfo.InvariantCulture, $"node {id}: MemTotal {node.MemoryBytes >> 20} MiB, qemu was given {_options.MemoryMiB[id]} MiB\n");
            if (node.OsNodeId != id || node.PhysicalNode != id)
                nodes.Append(CultureInfo.InvariantCulture, $"node {id}: os node {node.OsNodeId}, physical node {node.PhysicalNode}\n");
        }

        _tap.Report(nodes.Length == 0, "discovery reports each node's CPUs and memory as given to qemu", nodes.ToString().TrimEnd());
    }
}
