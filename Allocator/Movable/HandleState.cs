namespace Numalloc.Movable;

/// <summary>The state part of a movable handle's state word (model: <c>eng/models/handle.pml</c>).</summary>
internal enum HandleState
{
    /// <summary>Live; pins may be taken; a migrator may start.</summary>
    Normal = 0,

    /// <summary>A migrator waits (at most one window) for the existing pins to drain; new pins wait.</summary>
    MigratePending = 1,

    /// <summary>No pins: the migrator copies the buffer and republishes its pointer.</summary>
    Migrating = 2,

    /// <summary>Freed: the slot may be reused with the next generation.</summary>
    Freed = 3,
}

/// <summary>
/// The 64-bit state word of one handle slot: generation (bits 32..63), pin count (bits 8..31),
/// <c>FreeRequested</c> (bit 2), state (bits 0..1). Every change is one CAS of the whole word.
/// </summary>
internal static class HandleWord
{
    /// <summary>Bits of the state.</summary>
    public const long StateMask = 0x3;

    /// <summary>A free arrived while the buffer was being migrated; the migrator completes it.</summary>
    public const long FreeRequested = 0x4;

    /// <summary>The lowest bit of the pin count.</summary>
    public const int PinShift = 8;

    /// <summary>One pin.</summary>
    public const long OnePin = 1L << PinShift;

    /// <summary>The most pins one buffer may hold at once.</summary>
    public const int MaxPins = (1 << 24) - 1;

    /// <summary>Builds a word.</summary>
    public static long Make(uint generation, HandleState state, int pins, bool freeRequested) =>
        ((long)generation << 32) | ((long)pins << PinShift) | (freeRequested ? FreeRequested : 0) | (long)state;

    /// <summary>The generation.</summary>
    public static uint Generation(long word) => (uint)((ulong)word >> 32);

    /// <summary>The state.</summary>
    public static HandleState State(long word) => (HandleState)(word & StateMask);

    /// <summary>The pin count.</summary>
    public static int Pins(long word) => (int)((word >> PinShift) & MaxPins);

    /// <summary>Whether a free is pending on the buffer.</summary>
    public static bool IsFreeRequested(long word) => (word & FreeRequested) != 0;

    /// <summary>The same word with another state.</summary>
    public static long WithState(long word, HandleState state) => (word & ~StateMask) | (long)state;
}
