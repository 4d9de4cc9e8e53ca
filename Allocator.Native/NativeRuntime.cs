namespace Numalloc.Native;

/// <summary>
/// The managed state behind the C exports. For now it answers the node count straight from
/// sysfs; after the topology layer lands, <see cref="NodeCount"/> is rewired to it and this
/// class becomes the one place that initializes the allocator for the C ABI.
/// </summary>
internal static class NativeRuntime
{
    private const string NodeRoot = "/sys/devices/system/node";

    // 0 until the first successful count; a plain int write is atomic, and two threads that race
    // on the first call both compute the same value, so no ordering is needed.
    private static int s_nodeCount;

    /// <summary>
    /// Number of NUMA nodes: the <c>node[0-9]+</c> directories under
    /// <c>/sys/devices/system/node</c>, at least 1 (a kernel without NUMA has no such directory).
    /// Throws what the file system throws; the export turns that into -1.
    /// </summary>
    internal static int NodeCount()
    {
        int count = s_nodeCount;
        if (count == 0)
        {
            count = CountSysfsNodes();
            s_nodeCount = count;
        }

        return count;
    }

    private static int CountSysfsNodes()
    {
        if (!Directory.Exists(NodeRoot))
        {
            return 1;
        }

        int count = 0;
        foreach (string path in Directory.EnumerateDirectories(NodeRoot, "node*"))
        {
            if (IsNodeDirectoryName(Path.GetFileName(path.AsSpan())))
            {
                count++;
            }
        }

        return Math.Max(count, 1);
    }

    // "node" followed by one or more decimal digits, nothing else ("node0", "node12").
    private static bool IsNodeDirectoryName(ReadOnlySpan<char> name)
    {
        if (name.Length <= 4 || !name.StartsWith("node", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (char c in name[4..])
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
