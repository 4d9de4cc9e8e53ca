using System.Buffers;

namespace Numalloc;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of native, NUMA-local memory from a <see cref="NumaAllocator"/>: each
/// <see cref="Rent"/> allocates a buffer on the renting thread's node (or on the pool's node), and
/// disposing the returned owner frees it, exactly once, from any thread.
/// </summary>
/// <remarks>
/// Owners are not finalized: an owner that is never disposed leaks its native buffer (as an
/// <see cref="System.Buffers.ArrayPool{T}"/> array that is never returned is merely collected, but
/// native memory is not). Disposing the pool does not free buffers still rented; they stay valid until
/// their owners are disposed, as long as the allocator lives.
/// </remarks>
public sealed class NumaMemoryPool : MemoryPool<byte>
{
    /// <summary>The size of a buffer rented with the default <c>minBufferSize</c> of -1.</summary>
    public const int DefaultBufferSize = 4096;

    private readonly NumaAllocator _allocator;
    private int _disposed;

    /// <summary>A pool over <see cref="NumaAllocator.Shared"/> that rents on the renting thread's node.</summary>
    /// <exception cref="ConfigException"><c>NUMALLOC_CONFIG</c> holds a bad configuration.</exception>
    public NumaMemoryPool()
        : this(NumaAllocator.Shared)
    {
    }

    /// <summary>A pool over <paramref name="allocator"/> that rents on <paramref name="node"/>, or on the renting thread's node.</summary>
    /// <param name="allocator">Where buffers come from; it must outlive every rented buffer.</param>
    /// <param name="node">A node id, or -1 for the renting thread's node (and memory policy).</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="node"/> is not -1 or a node id of the allocator.</exception>
    public NumaMemoryPool(NumaAllocator allocator, int node = -1)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentOutOfRangeException.ThrowIfLessThan(node, -1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, allocator.NodeCount);
        _allocator = allocator;
        Node = node;
    }

    /// <summary>The node every buffer is rented on, or -1 for the renting thread's node.</summary>
    public int Node { get; }

    /// <summary>The largest buffer a <see cref="Memory{T}"/> can describe.</summary>
    public override int MaxBufferSize => int.MaxValue;

    /// <summary>
    /// Allocates a buffer of at least <paramref name="minBufferSize"/> bytes (its <see cref="Memory{T}"/>
    /// covers the whole usable size, which may be larger) on the pool's node or the renting thread's.
    /// The caller owns it until it disposes the returned owner.
    /// </summary>
    /// <param name="minBufferSize">Bytes, or -1 for <see cref="DefaultBufferSize"/>.</param>
    /// <returns>The buffer's owner; dispose it once to free the buffer (further disposals do nothing).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBufferSize"/> is below -1.</exception>
    /// <exception cref="ObjectDisposedException">The pool or its allocator was disposed.</exception>
    /// <exception cref="OutOfMemoryException">There is no memory for the buffer.</exception>
    public override unsafe IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this); // Acquire: a racy flag, checked once.
        ArgumentOutOfRangeException.ThrowIfLessThan(minBufferSize, -1);
        nuint size = (nuint)(minBufferSize == -1 ? DefaultBufferSize : minBufferSize);
        void* p = Node < 0 ? _allocator.Allocate(size) : _allocator.AllocateOnNode(size, Node);
        nuint usable = _allocator.UsableSize(p);
        return new Owner(_allocator, p, (int)Math.Min(usable, (nuint)int.MaxValue));
    }

    /// <summary>Marks the pool disposed: later rents throw. Rented buffers stay valid until their owners are disposed.</summary>
    /// <param name="disposing">Whether called from <see cref="IDisposable.Dispose"/>.</param>
    protected override void Dispose(bool disposing) => Volatile.Write(ref _disposed, 1); // Release: pairs with Rent's read.

    /// <summary>One rented buffer: a <see cref="MemoryManager{T}"/> over native memory that frees it once.</summary>
    private sealed unsafe class Owner : MemoryManager<byte>
    {
        private readonly NumaAllocator _allocator;
        private readonly int _length;
        private nint _pointer;

        public Owner(NumaAllocator allocator, void* pointer, int length)
        {
            _allocator = allocator;
            _pointer = (nint)pointer;
            _length = length;
        }

        public override Span<byte> GetSpan()
        {
            nint p = Volatile.Read(ref _pointer); // Acquire: a disposed owner reads 0.
            ObjectDisposedException.ThrowIf(p == 0, this);
            return new Span<byte>((void*)p, _length);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            nint p = Volatile.Read(ref _pointer); // Acquire: as in GetSpan.
            ObjectDisposedException.ThrowIf(p == 0, this);
            ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, _length);
            // Native memory never moves: the handle needs no GC pin.
            return new MemoryHandle((byte*)p + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            // Full fence (atomic exchange): of two racing disposals exactly one sees the pointer and frees it.
            nint p = Interlocked.Exchange(ref _pointer, 0);
            if (p != 0)
                _allocator.Free((void*)p);
        }
    }
}
