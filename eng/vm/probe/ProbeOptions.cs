using System.Globalization;

namespace Numalloc.VmProbe;

/// <summary>
/// What the probe expects of the guest (eng/numa-vm.sh passes exactly what it gave qemu) and
/// the switches of a run.
/// </summary>
internal sealed class ProbeOptions
{
    public const string Usage =
        "usage: NumaVmProbe --nodes N --distances D,D,... (N*N, row-major) --cpus LIST[ LIST...] (one cpulist per node)\n" +
        "                   --mem-mib M,M,... (one per node) [--full-node K] [--misbind]\n" +
        "       NumaVmProbe --child fill --node K --bind preferred|strict --mib M [--objects] [--misbind]";

    /// <summary>Nodes qemu was given.</summary>
    public int NodeCount { get; private set; }

    /// <summary>The distance matrix qemu was given, row-major, NodeCount x NodeCount.</summary>
    public int[] Distances { get; private set; } = [];

    /// <summary>Per node, the CPU ids qemu put on it.</summary>
    public int[][] Cpus { get; private set; } = [];

    /// <summary>Per node, the memory qemu gave it, in MiB.</summary>
    public long[] MemoryMiB { get; private set; } = [];

    /// <summary>The node sized small enough to fill physically (-1: skip the full-node checks).</summary>
    public int FullNode { get; private set; } = -1;

    /// <summary>
    /// Negative control: bind every block one physical node off (node k's blocks to node k+1).
    /// Every placement check must then fail; it proves the checks can see a wrong binding.
    /// </summary>
    public bool Misbind { get; private set; }

    /// <summary>Set in a child process: the fill it runs.</summary>
    public FillRequest? ChildFill { get; private set; }

    /// <summary>The arguments a child needs to see the same guest the same way.</summary>
    public IEnumerable<string> ChildArguments(FillRequest fill)
    {
        yield return "--child";
        yield return "fill";
        yield return "--nodes";
        yield return NodeCount.ToString(CultureInfo.InvariantCulture);
        yield return "--node";
        yield return fill.Node.ToString(CultureInfo.InvariantCulture);
        yield return "--bind";
        yield return fill.Strict ? "strict" : "preferred";
        yield return "--mib";
        yield return fill.MiB.ToString(CultureInfo.InvariantCulture);
        if (fill.Objects)
            yield return "--objects";
        if (Misbind)
            yield return "--misbind";
    }

    /// <exception cref="FormatException">An argument is unknown, missing or malformed.</exception>
    public static ProbeOptions Parse(string[] args)
    {
        var options = new ProbeOptions();
        string? child = null;
        int childNode = -1;
        string? childBind = null;
        long childMiB = 0;
        bool childObjects = false;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            switch (arg)
            {
                case "--nodes":
                    options.NodeCount = ParseInt(Next(args, ref i, arg), arg);
                    break;
                case "--distances":
                    options.Distances = [.. Next(args, ref i, arg).Split(',').Select(s => ParseInt(s, arg))];
                    break;
                case "--cpus":
                    options.Cpus = [.. Next(args, ref i, arg).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(ParseCpuList)];
                    break;
                case "--mem-mib":
                    options.MemoryMiB = [.. Next(args, ref i, arg).Split(',').Select(s => (long)ParseInt(s, arg))];
                    break;
                case "--full-node":
                    options.FullNode = ParseInt(Next(args, ref i, arg), arg);
                    break;
                case "--misbind":
                    options.Misbind = true;
                    break;
                case "--child":
                    child = Next(args, ref i, arg);
                    break;
                case "--node":
                    childNode = ParseInt(Next(args, ref i, arg), arg);
                    break;
                case "--bind":
                    childBind = Next(args, ref i, arg);
                    break;
                case "--mib":
                    childMiB = ParseInt(Next(args, ref i, arg), arg);
                    break;
                case "--objects":
                    childObjects = true;
                    break;
                default:
                    throw new FormatException($"unknown argument '{arg}'");
            }
        }

        if (child is not null)
        {
            if (child != "fill" || childNode < 0 || childMiB <= 0 || childBind is not ("preferred" or "strict"))
                throw new FormatException("--child fill needs --node K, --bind preferred|strict and --mib M > 0");
            options.ChildFill = new FillRequest(childNode, childBind == "strict", childMiB, childObjects);
            return options;
        }

        int n = options.NodeCount;
        if (n <= 0)
            throw new FormatException("--nodes N is required");
        if (options.Distances.Length != n * n)
            throw new FormatException($"--distances has {options.Distances.Length} values; {n} nodes need {n * n}");
        if (options.Cpus.Length != n)
            throw new FormatException($"--cpus has {options.Cpus.Length} lists; {n} nodes need {n}");
        if (options.MemoryMiB.Length != n)
            throw new FormatException($"--mem-mib has {options.MemoryMiB.Length} values; {n} nodes need {n}");
        if (options.FullNode >= n)
            throw new FormatException($"--full-node {options.FullNode} is not a node 0..{n - 1}");
        return options;
    }

    private static string Next(string[] args, ref int i, string name) =>
        ++i < args.Length ? args[i] : throw new FormatException($"{name} needs a value");

    private static int ParseInt(string text, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new FormatException($"{name}: '{text}' is not a non-negative integer");

    private static int[] ParseCpuList(string text) => Platform.CpuList.Parse(text);
}

/// <summary>
/// A fill a child process runs: <paramref name="MiB"/> of node <paramref name="Node"/>'s pages, bound
/// preferred or strict, taken as pages from the page allocator or, with <paramref name="Objects"/>, as
/// large allocations from the public facade (<see cref="NumaAllocator.AllocateOnNode"/>).
/// </summary>
internal sealed record FillRequest(int Node, bool Strict, long MiB, bool Objects = false);
