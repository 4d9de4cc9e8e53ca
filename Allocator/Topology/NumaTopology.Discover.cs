using Numalloc.Platform;
using System.Collections.Immutable;
using System.Globalization;

namespace Numalloc.Topology;

public sealed partial class NumaTopology
{
    /// <summary>The real sysfs root: <c>/sys/devices/system</c>.</summary>
    public const string DefaultSysfsRoot = "/sys/devices/system";

    /// <summary>
    /// Reads the machine's topology from sysfs: <c>cpu/possible</c>, <c>node/online</c>
    /// (and <c>node/possible</c> where present), and per online node <c>nodeN/cpulist</c>,
    /// <c>nodeN/distance</c> and <c>nodeN/meminfo</c>, plus <c>node/has_memory</c> where present
    /// (else a node has memory when its MemTotal is above 0).
    /// </summary>
    /// <remarks>
    /// Online nodes become dense logical nodes in ascending kernel id (sparse ids such as 0,2
    /// become 0,1; <see cref="NumaNode.OsNodeId"/> keeps the kernel's). A distance file's row is
    /// indexed by the online nodes in that same order, as the kernel prints it. Without a
    /// <c>node</c> directory (a kernel built without NUMA) the machine is one node holding every
    /// possible CPU, with memory of unknown size (0).
    /// </remarks>
    /// <param name="sysfsSystemRoot">The directory that holds <c>node/</c> and <c>cpu/</c>; a fixture tree in tests.</param>
    /// <exception cref="TopologyException">A file is missing, unreadable or malformed; the message names it.</exception>
    public static NumaTopology Discover(string sysfsSystemRoot = DefaultSysfsRoot)
    {
        ArgumentNullException.ThrowIfNull(sysfsSystemRoot);
        string cpuPossiblePath = Path.Combine(sysfsSystemRoot, "cpu", "possible");
        int[] possibleCpus = ReadList(cpuPossiblePath);
        if (possibleCpus.Length == 0)
        {
            throw new TopologyException(cpuPossiblePath, "lists no CPUs", null);
        }

        int possibleCpuCount = possibleCpus[^1] + 1;
        string nodeRoot = Path.Combine(sysfsSystemRoot, "node");
        if (!Directory.Exists(nodeRoot))
        {
            var only = new NumaNode(0, 0, [.. possibleCpus], hasMemory: true, memoryBytes: 0, physicalNode: 0);
            return new NumaTopology([only], [TopologySpec.LocalDistance], possibleCpuCount, isSimulated: false);
        }

        string onlinePath = Path.Combine(nodeRoot, "online");
        int[] online = ReadList(onlinePath);
        if (online.Length == 0)
        {
            throw new TopologyException(onlinePath, "lists no online nodes", null);
        }

        if (online.Length > MaxNodes)
        {
            throw new TopologyException(onlinePath, $"lists {online.Length} nodes; numalloc supports at most {MaxNodes}", null);
        }

        string possiblePath = Path.Combine(nodeRoot, "possible");
        if (File.Exists(possiblePath))
        {
            int[] possibleNodes = ReadList(possiblePath);
            foreach (int id in online)
            {
                if (Array.BinarySearch(possibleNodes, id) < 0)
                {
                    throw new TopologyException(onlinePath, $"lists node {id}, which {possiblePath} does not", null);
                }
            }
        }

        string hasMemoryPath = Path.Combine(nodeRoot, "has_memory");
        int[]? hasMemory = File.Exists(hasMemoryPath) ? ReadList(hasMemoryPath) : null;

        int n = online.Length;
        var nodes = new NumaNode[n];
        int[] distances = new int[n * n];
        int[] ownerOfCpu = new int[possibleCpuCount];
        Array.Fill(ownerOfCpu, -1);
        for (int id = 0; id < n; id++)
        {
            int osId = online[id];
            string dir = Path.Combine(nodeRoot, "node" + osId.ToString(CultureInfo.InvariantCulture));

            string cpulistPath = Path.Combine(dir, "cpulist");
            int[] cpus = ReadList(cpulistPath);
            foreach (int cpu in cpus)
            {
                if (cpu >= possibleCpuCount)
                {
                    throw new TopologyException(cpulistPath, $"lists CPU {cpu}, beyond the possible CPUs 0..{possibleCpuCount - 1} in {cpuPossiblePath}", null);
                }

                if (ownerOfCpu[cpu] >= 0)
                {
                    throw new TopologyException(cpulistPath, $"lists CPU {cpu}, which node {online[ownerOfCpu[cpu]]} also lists", null);
                }

                ownerOfCpu[cpu] = id;
            }

            ReadDistanceRow(Path.Combine(dir, "distance"), distances.AsSpan(id * n, n));
            long memoryBytes = ReadMemTotalBytes(Path.Combine(dir, "meminfo"));
            bool nodeHasMemory = hasMemory is not null ? Array.BinarySearch(hasMemory, osId) >= 0 : memoryBytes > 0;
            nodes[id] = new NumaNode(id, osId, [.. cpus], nodeHasMemory, memoryBytes, physicalNode: osId);
        }

        return new NumaTopology(nodes, distances, possibleCpuCount, isSimulated: false);
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TopologyException(path, "cannot be read: " + ex.Message, ex);
        }
    }

    private static int[] ReadList(string path)
    {
        string text = ReadText(path);
        try
        {
            return CpuList.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new TopologyException(path, ex.Message, ex);
        }
    }

    /// <summary>Reads a <c>nodeN/distance</c> row: one distance per online node, space-separated.</summary>
    private static void ReadDistanceRow(string path, Span<int> row)
    {
        string[] tokens = ReadText(path).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length != row.Length)
        {
            throw new TopologyException(path, $"has {tokens.Length} distances; expected one per online node ({row.Length})", null);
        }

        for (int i = 0; i < tokens.Length; i++)
        {
            if (!int.TryParse(tokens[i], NumberStyles.None, CultureInfo.InvariantCulture, out row[i]) || row[i] is < 1 or > 255)
            {
                throw new TopologyException(path, $"distance '{tokens[i]}' is not a number 1..255", null);
            }
        }
    }

    /// <summary>Reads <c>Node N MemTotal: X kB</c> from a <c>nodeN/meminfo</c>.</summary>
    private static long ReadMemTotalBytes(string path)
    {
        foreach (string line in ReadText(path).Split('\n'))
        {
            string[] tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length >= 3 && tokens[0] == "Node" && tokens[2] == "MemTotal:")
            {
                if (tokens.Length != 5 || tokens[4] != "kB"
                    || !long.TryParse(tokens[3], NumberStyles.None, CultureInfo.InvariantCulture, out long kib)
                    || kib > long.MaxValue / 1024)
                {
                    throw new TopologyException(path, $"malformed MemTotal line '{line.Trim()}' (expected 'Node N MemTotal: X kB')", null);
                }

                return kib * 1024;
            }
        }

        throw new TopologyException(path, "has no 'Node N MemTotal: X kB' line", null);
    }
}
