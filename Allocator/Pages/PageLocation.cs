namespace Numalloc.Pages;

/// <summary>Where an address of the heap lies: the answer of <see cref="PageHeap.TryLocate"/>.</summary>
/// <param name="Node">The logical node whose span holds it.</param>
/// <param name="Block">The memory block id (global).</param>
/// <param name="Zone">The zone its block was onlined into (Normal for an Absent block).</param>
/// <param name="State">Its block's state.</param>
/// <param name="Page">The global page index.</param>
internal readonly record struct PageLocation(int Node, int Block, ZoneType Zone, BlockState State, int Page);
