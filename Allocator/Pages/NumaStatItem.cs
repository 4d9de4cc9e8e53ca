namespace Numalloc.Pages;

/// <summary>The per-node counters of <c>/sys/devices/system/node/nodeN/numastat</c>, with the kernel's meanings.</summary>
internal enum NumaStatItem
{
    /// <summary>Allocated on this node, which was the intended one.</summary>
    NumaHit = 0,

    /// <summary>Allocated on this node although another node was intended.</summary>
    NumaMiss = 1,

    /// <summary>Intended for this node but allocated on another.</summary>
    NumaForeign = 2,

    /// <summary>An interleave allocation got the node interleaving chose.</summary>
    InterleaveHit = 3,

    /// <summary>Allocated on this node by a thread running on this node.</summary>
    LocalNode = 4,

    /// <summary>Allocated on this node by a thread running on another node.</summary>
    OtherNode = 5,
}
