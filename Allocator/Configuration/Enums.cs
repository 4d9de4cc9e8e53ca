namespace Numalloc;

/// <summary>Where the allocator's NUMA topology comes from.</summary>
public enum TopologyKind
{
    /// <summary>The machine's own nodes, discovered from sysfs.</summary>
    Os = 0,

    /// <summary>Logical nodes laid over whatever the machine has (see <see cref="TopologySpec"/>).</summary>
    Simulated = 1,
}

/// <summary>How each node's memory blocks are bound to the physical node backing it.</summary>
public enum BindPolicy
{
    /// <summary><c>MPOL_PREFERRED</c>: a physically full node falls back to others instead of invoking the OOM killer.</summary>
    Preferred = 0,

    /// <summary><c>MPOL_BIND</c>: pages come only from the bound node.</summary>
    Strict = 1,
}

/// <summary>What the allocator does when a free names memory it did not hand out, or frees it twice.</summary>
public enum BadFreeAction
{
    /// <summary>
    /// Count it and report it (<see cref="NumaAllocator"/> throws <see cref="InvalidOperationException"/>);
    /// the free is ignored and the heap is unchanged.
    /// </summary>
    Report = 0,

    /// <summary>Print a message and abort the process (<see cref="Environment.FailFast(string)"/>).</summary>
    Abort = 1,

    /// <summary>
    /// Like <see cref="Report"/>, and also check every free at once (an atomic on a bitmap of the objects
    /// handed out), so a double free through two threads is caught at its second free; slower.
    /// </summary>
    Check = 2,
}
