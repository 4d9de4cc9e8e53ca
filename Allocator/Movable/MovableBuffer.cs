namespace Numalloc.Movable;

/// <summary>
/// A movable native buffer: a handle, not a pointer (C: <c>na_handle_t</c>). Its memory prefers
/// Movable zones and falls back to Normal ones, and while it is not pinned a hot-remove may migrate
/// it to another node. <see cref="Pin"/> gives a pointer and a <see cref="Span{T}"/> valid until the
/// pin is disposed (like <c>GlobalLock</c> on a <c>GMEM_MOVEABLE</c> block); pins nest and count.
/// </summary>
/// <remarks>
/// Buffers are page-granular: the memory behind one is a buddy block of 4 KiB pages (at most 4 MiB).
/// The handle value is never 0. A handle used after <see cref="Free"/> (or a stale copy of one whose
/// slot was reused) is refused with an exception and never reaches another buffer.
/// </remarks>
public sealed class MovableBuffer
{
    private readonly MovableHeap _heap;

    internal MovableBuffer(MovableHeap heap, ulong handle, int length)
    {
        _heap = heap;
        Handle = handle;
        Length = length;
    }

    /// <summary>The handle value (generation and slot); never 0.</summary>
    public ulong Handle { get; }

    /// <summary>The size asked for, in bytes.</summary>
    public int Length { get; }

    /// <summary>Whether the buffer has been freed (or a free of it is pending on a migration).</summary>
    public bool IsFreed => _heap.IsFreed(Handle);

    /// <summary>
    /// Pins the buffer: it will not move or be freed until the returned scope is disposed. Waits
    /// (briefly) while a migration of this buffer is pending or copying.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The buffer was freed.</exception>
    /// <exception cref="InvalidOperationException">The buffer already holds the most pins it can.</exception>
    public unsafe MovablePin Pin() => new(_heap, Handle, _heap.Pin(Handle), Length);

    /// <summary>Pins without a scope (callers that cannot hold a ref struct: the drill, the C ABI); pair with <see cref="UnpinRaw"/>.</summary>
    internal unsafe byte* PinRaw() => _heap.Pin(Handle);

    /// <summary>Ends one <see cref="PinRaw"/>.</summary>
    internal void UnpinRaw() => _heap.Unpin(Handle);

    /// <summary>
    /// Frees the buffer. Freeing a pinned buffer is an error: nothing changes and this throws. A
    /// free that races a migration of the buffer is completed by the migrator.
    /// </summary>
    /// <exception cref="InvalidOperationException">The buffer is pinned.</exception>
    /// <exception cref="ObjectDisposedException">The buffer was already freed.</exception>
    public void Free() => _heap.Free(Handle);
}

/// <summary>
/// A pin on a <see cref="MovableBuffer"/>: the buffer's memory stays where it is until this is
/// disposed. Dispose exactly once (a <c>using</c> declaration does).
/// </summary>
public unsafe ref struct MovablePin
{
    private readonly MovableHeap? _heap;
    private readonly ulong _handle;
    private readonly byte* _address;
    private readonly int _length;
    private bool _released;

    internal MovablePin(MovableHeap heap, ulong handle, byte* address, int length)
    {
        _heap = heap;
        _handle = handle;
        _address = address;
        _length = length;
    }

    /// <summary>The buffer's first byte, valid until the pin is disposed.</summary>
    public readonly nint Address => (nint)_address;

    /// <summary>The buffer's bytes, valid until the pin is disposed.</summary>
    public readonly Span<byte> Span => new(_address, _length);

    /// <summary>Releases the pin (once; later calls do nothing).</summary>
    public void Dispose()
    {
        if (_released || _heap is null)
            return;
        _released = true;
        _heap.Unpin(_handle);
    }
}
