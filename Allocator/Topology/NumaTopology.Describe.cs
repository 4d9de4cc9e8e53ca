using System.Globalization;
using System.Text;

namespace Numalloc.Topology;

public sealed partial class NumaTopology
{
    /// <summary>
    /// The topology in the shape of <c>numactl --hardware</c>: available nodes, each node's CPUs and
    /// size, then the distance table. Logical ids throughout; kernel ids and backing nodes are
    /// shown where they differ.
    /// </summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.Append(ci, $"available: {NodeCount} nodes (0-{NodeCount - 1})");
        if (IsSimulated)
        {
            sb.Append(", simulated");
        }

        sb.Append('\n');
        foreach (NumaNode node in Nodes)
        {
            sb.Append(ci, $"node {node.Id} cpus:");
            foreach (int cpu in node.Cpus)
            {
                sb.Append(ci, $" {cpu}");
            }

            sb.Append('\n');
            if (IsSimulated)
            {
                sb.Append(ci, $"node {node.Id} memory: os node {node.PhysicalNode}\n");
            }
            else
            {
                if (node.OsNodeId != node.Id)
                {
                    sb.Append(ci, $"node {node.Id} os node: {node.OsNodeId}\n");
                }

                sb.Append(ci, $"node {node.Id} size: {node.MemoryBytes / (1024 * 1024)} MB\n");
                if (!node.HasMemory)
                {
                    sb.Append(ci, $"node {node.Id} memory from: node {MemoryNodeFor(node.Id)}\n");
                }
            }
        }

        sb.Append("node distances:\nnode");
        for (int to = 0; to < NodeCount; to++)
        {
            sb.Append(ci, $"{to,4}");
        }

        sb.Append('\n');
        for (int from = 0; from < NodeCount; from++)
        {
            sb.Append(ci, $"{from,3}:");
            for (int to = 0; to < NodeCount; to++)
            {
                sb.Append(ci, $"{Distance(from, to),4}");
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>The same text as <see cref="Describe"/>.</summary>
    public override string ToString() => Describe();
}
