namespace Numalloc.Pages;

/// <summary>
/// One byte per memory block of the heap, in native memory: the block's <see cref="BlockState"/> in
/// the low nibble and, for every state but Absent, the <see cref="ZoneType"/> it was onlined into in
/// bit 4 (the zone is chosen when a block is onlined, as the kernel's online_movable).
/// </summary>
/// <remarks>
/// Race: growth, an operator's online and the hotplug layer may all try to change the same block at
/// once. Rule: every change is a compare-and-swap of the whole byte from the value the changer read,
/// so exactly one of two racing changers wins and the loser sees the new value and gives up.
/// Readers (bad-free checks, stats, the zone's isolated check) read the byte with acquire
/// semantics; a zone that must act on the Online/Isolated distinction reads it under its own lock,
/// and Online &lt;-&gt; Isolated changes are only ever made under that same lock.
/// </remarks>
internal sealed unsafe class MemoryBlockTable : IDisposable
{
    private const byte StateMask = 0x0F;
    private const byte ZoneBit = 0x10;

    private byte* _entries;

    /// <summary>Allocates a table of <paramref name="blockCount"/> blocks, all Absent.</summary>
    public MemoryBlockTable(int blockCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCount);
        BlockCount = blockCount;
        _entries = (byte*)NativeMemory.AllocZeroed((nuint)blockCount);
    }

    /// <summary>The number of blocks.</summary>
    public int BlockCount { get; }

    /// <summary>Encodes a state and zone into a table byte.</summary>
    public static byte Encode(BlockState state, ZoneType zone) =>
        (byte)((byte)state | (zone == ZoneType.Movable ? ZoneBit : 0));

    /// <summary>The state part of a table byte.</summary>
    public static BlockState StateOf(byte entry) => (BlockState)(entry & StateMask);

    /// <summary>The zone part of a table byte.</summary>
    public static ZoneType ZoneOf(byte entry) => (entry & ZoneBit) != 0 ? ZoneType.Movable : ZoneType.Normal;

    /// <summary>Reads a block's byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Read(int block) =>
        // Acquire: whatever the changer published before its CAS (committed memory, free lists) is
        // visible to a reader that sees the new state.
        Volatile.Read(ref _entries[block]);

    /// <summary>
    /// The table itself, for fast paths that read a block's byte with one load from a cached pointer
    /// (with <see cref="Volatile.Read(ref readonly byte)"/>, as <see cref="Read"/> does). Valid until disposal.
    /// </summary>
    internal byte* Entries => _entries;

    /// <summary>The state of a block.</summary>
    public BlockState State(int block) => StateOf(Read(block));

    /// <summary>Changes a block's byte from <paramref name="expected"/> to <paramref name="desired"/>; false when it held something else.</summary>
    public bool TryChange(int block, byte expected, byte desired) =>
        // Full fence (CAS): the winner's earlier stores are visible before the new state; racing
        // changers of the same block are totally ordered, so only one sees its expected value.
        Interlocked.CompareExchange(ref _entries[block], desired, expected) == expected;

    /// <inheritdoc/>
    public void Dispose()
    {
        NativeMemory.Free(_entries);
        _entries = null;
    }
}
