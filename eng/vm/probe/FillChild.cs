using System.Globalization;
using Numalloc.Pages;
using Numalloc.Platform;
using Numalloc.Zonelists;

namespace Numalloc.VmProbe;

/// <summary>
/// The child side of the full-node checks: takes <see cref="FillRequest.MiB"/> of one node's pages
/// from a heap bound preferred or strict (as pages, or as large allocations of the public facade),
/// touches every page, and prints where they landed. Under
/// bind=strict the kernel is expected to OOM-kill it while it touches, which is why it is a child.
/// </summary>
internal static unsafe class FillChild
{
    public const string ResultPrefix = "fill-result: ";

    public static int Run(ProbeOptions options, FillRequest fill)
    {
        IPlatform platform = Checks.CreatePlatform(options);

        // Room for the whole fill on the node, so only the kernel, never the allocator, can say no.
        long maxMiB = ((fill.MiB + 32 + 15) / 16) * 16;
        string config = string.Create(CultureInfo.InvariantCulture,
            $"normal=16M;movable=0;normal_max={maxMiB}M;movable_max=0;decay_ms=-1;bind={(fill.Strict ? "strict" : "preferred")}");

        // Pages: the largest buddy blocks from the page allocator. Objects: the largest allocations the
        // facade serves as page runs (4 MiB), for the node only, which end up in the same blocks.
        const int order = PageHeap.MaxOrder;
        nuint chunkBytes = (nuint)PageProbe.PageBytes << order;
        using PageAllocator? pages = fill.Objects ? null : Checks.NewPageAllocator(platform, config);
        using NumaAllocator? objects = fill.Objects ? Checks.NewAllocator(platform, config) : null;
        long chunks = (fill.MiB * 1024 * 1024 + (long)chunkBytes - 1) / (long)chunkBytes;
        var taken = new List<nint>();
        for (long i = 0; i < chunks; i++)
        {
            void* p = objects is not null
                ? objects.TryAllocateOnNode(chunkBytes, fill.Node)
                : pages!.AllocPages(order, PageAllocFlags.ThisNodeOnly, fill.Node);
            if (p is null)
            {
                Console.WriteLine($"fill: the allocator refused after {taken.Count * (long)chunkBytes >> 20} MiB");
                return 3;
            }

            PageProbe.Touch(p, chunkBytes);
            taken.Add((nint)p);
        }

        Console.WriteLine($"fill: touched {taken.Count * (long)chunkBytes >> 20} MiB of node {fill.Node} (bind={(fill.Strict ? "strict" : "preferred")})");
        var byNode = new long[Math.Max(options.NodeCount, objects?.NodeCount ?? pages!.Heap.Nodes.Length)];
        long unresolved = 0;
        var statuses = new List<int>(taken.Count << order);
        foreach (nint p in taken)
            statuses.AddRange(PageProbe.NodesOf(platform, (void*)p, chunkBytes));
        foreach (int node in statuses)
        {
            if ((uint)node < (uint)byNode.Length)
                byNode[node]++;
            else
                unresolved++;
        }

        Console.WriteLine("fill: move_pages says " + PageProbe.Describe(statuses.ToArray()));

        Console.WriteLine(ResultPrefix + string.Create(CultureInfo.InvariantCulture, $"nodes={string.Join(',', byNode)} unresolved={unresolved}"));
        Console.Out.Flush();
        return 0;
    }
}
