namespace Numalloc.Sync;

/// <summary>
/// A sequence counter guarding data that is rewritten in place (the zonelists), after the
/// kernel's <c>seqcount_t</c> as used by <c>zonelist_update_seq</c>.
/// </summary>
/// <remarks>
/// <para>Who writes: one writer at a time, serialized by <see cref="BeginWrite"/>'s lock. The count
/// is odd for the whole write section and advances by two per section.</para>
/// <para>Who reads: anyone, without a lock and without ever waiting for the writer. A reader takes a
/// cookie with <see cref="ReadBegin"/>, reads the guarded data, and only if it is about to act on a
/// negative conclusion ("no zone could serve") asks <see cref="ReadRetry"/>. The conclusion is
/// authoritative only if the cookie was even (no write was in progress when the read began) and the
/// count is unchanged after a full fence (no write began since). Otherwise the reader restarts.</para>
/// <para>Why readers do not spin on an odd cookie (unlike <c>read_seqcount_begin</c>): a writer that
/// is preempted mid-section must not stall every allocating thread; a torn list costs at most one
/// extra walk because every zone re-checks its own eligibility under its lock before serving.</para>
/// <para>The protocol is model-checked in <c>eng/models/zonelist.pml</c>.</para>
/// </remarks>
internal sealed class SeqCount
{
    private readonly Lock _writerLock = new();
    private int _sequence;

    /// <summary>The current count: even when no write section is open.</summary>
    public int Sequence => Volatile.Read(ref _sequence);

    /// <summary>Takes a read cookie. Never waits; the cookie may be odd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBegin() =>
        // Acquire: the reader's loads of the guarded data cannot move above this load.
        Volatile.Read(ref _sequence);

    /// <summary>
    /// Whether a conclusion drawn from data read since <paramref name="cookie"/> must be discarded:
    /// true when the cookie was odd or a write section began since.
    /// </summary>
    public bool ReadRetry(int cookie)
    {
        // Full fence: the reader's loads of the guarded data complete before the count is re-read,
        // so a write that overlapped them is seen as a changed count.
        Interlocked.MemoryBarrier();
        return (cookie & 1) != 0 || Volatile.Read(ref _sequence) != cookie;
    }

    /// <summary>Opens a write section (waits for any other writer). Dispose the scope to close it.</summary>
    public WriteScope BeginWrite()
    {
        _writerLock.Enter();
        // Full fence (Interlocked): the odd count is visible before any store to the guarded data.
        Interlocked.Increment(ref _sequence);
        return new WriteScope(this);
    }

    private void EndWrite()
    {
        // Full fence (Interlocked): every store to the guarded data is visible before the even count.
        Interlocked.Increment(ref _sequence);
        _writerLock.Exit();
    }

    /// <summary>An open write section; disposing it closes the section exactly once.</summary>
    public ref struct WriteScope
    {
        private SeqCount? _owner;

        internal WriteScope(SeqCount owner) => _owner = owner;

        /// <summary>Closes the write section.</summary>
        public void Dispose()
        {
            SeqCount? owner = _owner;
            _owner = null;
            owner?.EndWrite();
        }
    }
}
