namespace Numalloc.Bench.Drill;

/// <summary>How a hotplug step ended: the design's result (lower case), a detail, pages migrated.</summary>
internal readonly record struct DrillOutcome(string Result, string? Detail, long PagesMigrated);

/// <summary>The allocator's counters the report takes per-step differences of.</summary>
internal readonly record struct DrillCounters(long DrainsRemote, long DrainsByOwner, long DrainsCoalesced, long ReaderRestarts, long PagesMigrated)
{
    public static DrillCounters operator -(DrillCounters a, DrillCounters b) => new(
        a.DrainsRemote - b.DrainsRemote, a.DrainsByOwner - b.DrainsByOwner, a.DrainsCoalesced - b.DrainsCoalesced,
        a.ReaderRestarts - b.ReaderRestarts, a.PagesMigrated - b.PagesMigrated);

    public static DrillCounters Subtract(DrillCounters a, DrillCounters b) => a - b;
}

/// <summary>
/// What the drill runs its scenario against: an in-process heap (with the workload's heap) or,
/// with <c>--attach</c>, another process through its control socket (whose workload is its own).
/// </summary>
internal interface IDrillTarget : IDisposable
{
    /// <summary>One line about the heap, for the report's title.</summary>
    string Description { get; }

    /// <summary>Runs one offline, online or online-all step; <paramref name="progress"/> gets (pages migrated, pages to migrate).</summary>
    DrillOutcome Execute(DrillStep step, Action<long, long> progress);

    /// <summary>The counters now.</summary>
    DrillCounters ReadCounters();

    /// <summary>The heap the in-process workload allocates from; null when attached to another process.</summary>
    IDrillHeap? Heap { get; }

    /// <summary>Allocations the target counts itself (attached mode's throughput); null when the workload counts.</summary>
    long? AllocationCount { get; }

    /// <summary>Checks whatever the target allocated itself (buffers that filled a block) and frees it; returns every mismatch, named.</summary>
    IReadOnlyList<string> VerifyAndRelease();
}

/// <summary>The allocation calls the drill's workload makes.</summary>
internal unsafe interface IDrillHeap
{
    /// <summary>Raw allocation under the thread's policy (node-local); null on failure.</summary>
    void* TryAllocate(nuint size);

    /// <summary>Raw allocation that must come from <paramref name="node"/>; null when that node cannot serve.</summary>
    /// <param name="size">Bytes.</param>
    /// <param name="node">The node.</param>
    /// <param name="failureExpected">On failure: true when a hotplug step took (or was taking) that node's memory away meanwhile, so the failure is explained.</param>
    void* TryAllocateOnNode(nuint size, int node, out bool failureExpected);

    /// <summary>Frees a raw allocation.</summary>
    void Free(void* p);

    /// <summary>The node that holds <paramref name="p"/>.</summary>
    int NodeOf(void* p);

    /// <summary>A movable buffer; null on failure.</summary>
    IDrillMovable? TryAllocateMovable(int size);

    /// <summary>Puts the calling worker on a CPU of <paramref name="node"/> (simulated heaps), so its local allocations come from there.</summary>
    void RunOn(int node);

    /// <summary>Flushes the calling thread's caches (a worker that is about to exit).</summary>
    void FlushThread();
}

/// <summary>A movable buffer as the workload uses it.</summary>
internal unsafe interface IDrillMovable
{
    /// <summary>Its length, bytes.</summary>
    int Length { get; }

    /// <summary>Pins it and returns its address, valid until <see cref="Unpin"/>.</summary>
    byte* Pin();

    /// <summary>Ends the latest pin.</summary>
    void Unpin();

    /// <summary>Frees it (unpinned).</summary>
    void Free();
}
