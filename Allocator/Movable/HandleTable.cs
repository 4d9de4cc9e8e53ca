namespace Numalloc.Movable;

/// <summary>One slot of the <see cref="HandleTable"/>, in native memory.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct HandleEntry
{
    /// <summary>The state word (<see cref="HandleWord"/>).</summary>
    [FieldOffset(0)] public long Word;

    /// <summary>The buffer's current first byte; read only under a pin or by the migrator.</summary>
    [FieldOffset(8)] public nint Address;

    /// <summary>The buddy order of the pages behind the buffer.</summary>
    [FieldOffset(16)] public int Order;

    /// <summary>The size the user asked for.</summary>
    [FieldOffset(20)] public int SizeBytes;

    /// <summary>Next free slot (only while the slot is on the free list), or -1.</summary>
    [FieldOffset(24)] public int NextFree;
}

/// <summary>
/// The movable handles: a fixed table of <see cref="HandleEntry"/> slots in its own native mapping
/// (never in the heap's blocks, so metadata never pins a block), and a free-slot list.
/// </summary>
/// <remarks>
/// A handle is <c>(generation &lt;&lt; 32) | (slot + 1)</c>, so 0 is never a valid handle. A slot is
/// reused with the next generation (<c>Freed(g) → Normal(g+1)</c>): every Pin and Free compares the
/// generation, so a stale handle is refused and never reaches the buffer that reuses the slot.
/// Slots go back on the free list only once their word says Freed.
/// </remarks>
internal sealed unsafe class HandleTable : IDisposable
{
    private readonly Lock _freeLock = new();
    private HandleEntry* _entries;
    private int _freeHead;
    private int _live;

    /// <summary>Creates a table of <paramref name="capacity"/> slots, all free.</summary>
    public HandleTable(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1 << 26);
        Capacity = capacity;
        _entries = (HandleEntry*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(HandleEntry));
        for (int i = 0; i < capacity; i++)
        {
            _entries[i].Word = HandleWord.Make(0, HandleState.Freed, 0, false);
            _entries[i].NextFree = i + 1 < capacity ? i + 1 : -1;
        }
    }

    /// <summary>Slots in the table.</summary>
    public int Capacity { get; }

    /// <summary>Slots in use now (racy).</summary>
    public int LiveCount => Volatile.Read(ref _live); // Acquire: a statistic.

    /// <summary>The entry of <paramref name="slot"/>.</summary>
    public HandleEntry* At(int slot) => _entries + slot;

    /// <summary>The handle value of a slot at a generation.</summary>
    public static ulong MakeHandle(int slot, uint generation) => ((ulong)generation << 32) | (uint)(slot + 1);

    /// <summary>The slot of a handle, or -1 when the handle cannot name one.</summary>
    public int SlotOf(ulong handle)
    {
        long slot = (long)(uint)handle - 1;
        return slot >= 0 && slot < Capacity ? (int)slot : -1;
    }

    /// <summary>Takes a free slot (its word says Freed); -1 when the table is full.</summary>
    public int Rent()
    {
        lock (_freeLock)
        {
            int slot = _freeHead;
            if (slot < 0)
                return -1;
            _freeHead = _entries[slot].NextFree;
            _entries[slot].NextFree = -1;
            _live++;
            return slot;
        }
    }

    /// <summary>Puts a slot whose word says Freed back on the free list.</summary>
    public void Return(int slot)
    {
        Debug.Assert(HandleWord.State(Volatile.Read(ref _entries[slot].Word)) == HandleState.Freed, "only freed slots return");
        lock (_freeLock)
        {
            _entries[slot].NextFree = _freeHead;
            _freeHead = slot;
            _live--;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        NativeMemory.Free(_entries);
        _entries = null;
    }
}
