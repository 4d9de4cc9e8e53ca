using Numalloc.Platform;

namespace Numalloc.VmProbe;

/// <summary>
/// The negative control (<c>--misbind</c>): the real platform, except that Bind binds every range one
/// physical node off (node k to node k+1 mod N). A probe run with it must report the placement
/// checks as failed; if it does not, those checks cannot see a wrong binding.
/// </summary>
internal sealed unsafe class MisbindingPlatform(IPlatform inner, int physicalNodeCount) : IPlatform
{
    public nuint PageSize => inner.PageSize;

    public int PossibleCpuCount => inner.PossibleCpuCount;

    public int CurrentCpu => inner.CurrentCpu;

    public void* Reserve(nuint sizeBytes, nuint alignmentBytes) => inner.Reserve(sizeBytes, alignmentBytes);

    public void Commit(void* address, nuint sizeBytes) => inner.Commit(address, sizeBytes);

    public void Decommit(void* address, nuint sizeBytes) => inner.Decommit(address, sizeBytes);

    public void Purge(void* address, nuint sizeBytes) => inner.Purge(address, sizeBytes);

    public void Release(void* address, nuint sizeBytes) => inner.Release(address, sizeBytes);

    public void Bind(void* address, nuint sizeBytes, int node, BindMode mode) =>
        inner.Bind(address, sizeBytes, (node + 1) % physicalNodeCount, mode);

    public bool TryQueryBinding(void* address, out BindMode mode, out int node) => inner.TryQueryBinding(address, out mode, out node);

    public void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes) => inner.QueryNodeOfPages(pages, nodes);

    public int QueryCurrentCpu(out int node) => inner.QueryCurrentCpu(out node);
}
