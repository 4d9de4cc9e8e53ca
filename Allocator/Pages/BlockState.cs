namespace Numalloc.Pages;

/// <summary>The state of one memory block in the block table (the low nibble of its byte).</summary>
public enum BlockState : byte
{
    /// <summary>Never used: reserved address space only, free for growth or an operator's online.</summary>
    Absent = 0,

    /// <summary>Claimed by a growth or an online that is committing it; not yet on any free list.</summary>
    Onlining = 1,

    /// <summary>Committed, bound and managed by the zone the table names.</summary>
    Online = 2,

    /// <summary>Going offline: its free pages sit on the zone's isolated lists and are never served.</summary>
    Isolated = 3,

    /// <summary>Removed by an operator: decommitted, any touch faults; its descriptors stay mapped.</summary>
    Offline = 4,
}
