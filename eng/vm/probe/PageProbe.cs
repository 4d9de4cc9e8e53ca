using System.Globalization;
using System.Text;
using Numalloc.Platform;

namespace Numalloc.VmProbe;

/// <summary>
/// Asks the kernel where memory really is: touch every 4 KiB page (a page has no node until its
/// first write faults it in), then move_pages with nodes = NULL, which moves nothing and reports
/// each page's node or a negative errno.
/// </summary>
internal static unsafe class PageProbe
{
    public const int PageBytes = 4096;

    // move_pages takes one array of page pointers; bounded so a large fill needs no large array.
    private const int QueryBatch = 4096;

    /// <summary>Writes one byte into every page of the range, so each page is faulted in under its policy.</summary>
    public static void Touch(void* start, nuint bytes)
    {
        byte* p = (byte*)start;
        for (nuint offset = 0; offset < bytes; offset += PageBytes)
            p[offset] = 0x5A;
    }

    /// <summary>The kernel's node of each page of the range (negative errno for a page it cannot report).</summary>
    public static int[] NodesOf(IPlatform platform, void* start, nuint bytes)
    {
        int count = checked((int)(bytes / PageBytes));
        var nodes = new int[count];
        var pages = new nint[Math.Min(count, QueryBatch)];
        for (int done = 0; done < count; done += pages.Length)
        {
            int batch = Math.Min(pages.Length, count - done);
            for (int i = 0; i < batch; i++)
                pages[i] = (nint)((byte*)start + ((nuint)(done + i) * PageBytes));
            platform.QueryNodeOfPages(pages.AsSpan(0, batch), nodes.AsSpan(done, batch));
        }

        return nodes;
    }

    /// <summary>Touches the range, then reports its pages' nodes.</summary>
    public static int[] TouchAndLocate(IPlatform platform, void* start, nuint bytes)
    {
        Touch(start, bytes);
        return NodesOf(platform, start, bytes);
    }

    /// <summary>
    /// Writes every byte of each object (<paramref name="objectBytes"/> at each address), then reports
    /// the node of each distinct page the objects lie on: small objects share slab pages, and a page
    /// counts once however many objects it holds.
    /// </summary>
    public static int[] TouchAndLocateObjects(IPlatform platform, IReadOnlyList<nint> objects, nuint objectBytes)
    {
        var pages = new SortedSet<nint>();
        foreach (nint o in objects)
        {
            new Span<byte>((void*)o, checked((int)objectBytes)).Fill(0x5A);
            for (nint page = o & ~(nint)(PageBytes - 1); page < o + (nint)objectBytes; page += PageBytes)
                pages.Add(page);
        }

        nint[] all = [.. pages];
        var nodes = new int[all.Length];
        for (int done = 0; done < all.Length; done += QueryBatch)
        {
            int batch = Math.Min(QueryBatch, all.Length - done);
            platform.QueryNodeOfPages(all.AsSpan(done, batch), nodes.AsSpan(done, batch));
        }

        return nodes;
    }

    /// <summary>Whether every page reported <paramref name="node"/>.</summary>
    public static bool AllOn(ReadOnlySpan<int> nodes, int node)
    {
        foreach (int n in nodes)
        {
            if (n != node)
                return false;
        }

        return nodes.Length > 0;
    }

    /// <summary>Pages per node, e.g. <c>node 0: 3, node 2: 1, -ENOENT: 1</c>.</summary>
    public static string Describe(ReadOnlySpan<int> nodes)
    {
        var counts = new SortedDictionary<int, int>();
        foreach (int n in nodes)
            counts[n] = counts.GetValueOrDefault(n) + 1;
        var sb = new StringBuilder();
        foreach ((int node, int count) in counts)
        {
            if (sb.Length > 0)
                sb.Append(", ");
            sb.Append(CultureInfo.InvariantCulture, $"{NodeName(node)}: {count}");
        }

        return sb.Length == 0 ? "no pages" : sb.ToString();
    }

    /// <summary>One move_pages status as words: <c>node 2</c>, or the errno's name.</summary>
    /// <remarks>
    /// -EFAULT for a touched page means it is mapped PROT_NONE for a NUMA hinting fault: automatic
    /// NUMA balancing (on by default on a NUMA kernel) scans default-policy ranges only, so a page of
    /// a block the allocator bound never reports it. Seen only when a block was left unbound.
    /// </remarks>
    public static string NodeName(int status) => status switch
    {
        >= 0 => "node " + status.ToString(CultureInfo.InvariantCulture),
        -2 => "-ENOENT",
        -14 => "-EFAULT",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A field of a <c>nodeN/meminfo</c> (e.g. MemFree) of kernel node <paramref name="node"/>, in KiB.</summary>
    /// <exception cref="InvalidDataException">The field is not there.</exception>
    public static long NodeMeminfoKiB(int node, string field)
    {
        string path = $"/sys/devices/system/node/node{node.ToString(CultureInfo.InvariantCulture)}/meminfo";
        foreach (string line in File.ReadAllLines(path))
        {
            // "Node 3 MemFree:   12345 kB"
            string[] tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 5 && tokens[2] == field + ":")
                return long.Parse(tokens[3], CultureInfo.InvariantCulture);
        }

        throw new InvalidDataException($"{path} has no {field} line");
    }

    /// <summary>A counter of <c>/proc/vmstat</c> (e.g. oom_kill).</summary>
    /// <exception cref="InvalidDataException">The counter is not there.</exception>
    public static long VmStat(string name)
    {
        foreach (string line in File.ReadAllLines("/proc/vmstat"))
        {
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && line.AsSpan(0, space).SequenceEqual(name))
                return long.Parse(line.AsSpan(space + 1), CultureInfo.InvariantCulture);
        }

        throw new InvalidDataException($"/proc/vmstat has no {name}");
    }
}
