using Numalloc.Admin;
using Numalloc.Caches;
using Numalloc.Hotplug;
using Numalloc.Movable;
using Numalloc.Objects;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc;

/// <summary>
/// A NUMA-aware native memory allocator: <c>malloc</c>-style allocation of unmanaged memory that comes
/// from the NUMA node the calling thread runs on (or the node its memory policy or the caller names).
/// Use <see cref="Shared"/>, configured from <c>NUMALLOC_CONFIG</c>, or an isolated heap from
/// <see cref="Create"/>. Every member is thread-safe; memory may be freed by any thread.
/// </summary>
/// <remarks>
/// <para>Objects up to 32 KiB come from per-node slabs through per-thread and per-CPU caches (the
/// common allocate and free touch only the calling thread's cache, with no atomic operations);
/// larger allocations up to 4 MiB are whole pages from the node's buddy allocator; larger still, a
/// mapping of their own bound to the node.</para>
/// <para>Memory is not zeroed. A pointer must be freed exactly once, through the instance that
/// allocated it. Bad frees (pointers not from this instance, interior pointers, double frees) are
/// caught as the <c>on_bad_free</c> option says: <see cref="BadFreeAction.Report"/> (the default) throws
/// <see cref="InvalidOperationException"/> and leaves the heap unchanged, <see cref="BadFreeAction.Abort"/>
/// ends the process, <see cref="BadFreeAction.Check"/> reports like Report and also checks every free
/// at once (slower). A double free through two different threads' caches may only be found when the
/// object reaches its slab, and is then reported by a later <see cref="Free(void*)"/>,
/// <see cref="Trim"/> or <see cref="FlushCurrentThread"/> on the thread that found it.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name",
    Justification = "ptr is the parameter name of the fixed signatures, as in NativeMemory.Free(void* ptr).")]
public sealed unsafe class NumaAllocator : IDisposable
{
    private static readonly Lazy<NumaAllocator> s_shared = new(CreateShared, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly ObjectHeap _heap;
    private readonly CachedPageAllocator _pageCaches;
    private readonly MovableHeap _movable;
    private readonly ControlSocketServer? _adminServer;
    private readonly bool _isShared;

    private NumaAllocator(AllocatorOptions options, IPlatform platform, bool isShared)
    {
        options.Validate();
        Options = options;
        _isShared = isShared;
        NumaTopology topology = NumaTopology.FromOptions(options);
        var pages = new PageAllocator(options, topology, platform);
        try
        {
            // The page caches first: the object heap chains its drain hook after theirs.
            _pageCaches = new CachedPageAllocator(pages);
            _heap = new ObjectHeap(pages, platform, options);
            _movable = new MovableHeap(pages);
            Admin = AllocatorAdmin.Create(_pageCaches, _movable, new ObjectCacheDrainParticipant(_heap));
            Admin.BeforeTrim = _heap.Trim;
            Admin.Objects = _heap;
            if (options.AdminSocket is not null)
                _adminServer = new ControlSocketServer(options.AdminSocket, new AdminEndpoint(Admin));
        }
        catch
        {
            _heap?.Dispose();
            pages.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The admin API of this allocator's heap: topology, statistics, memory blocks, offline and online
    /// of blocks, zones and nodes (the hot-remove drill), cache drains, trim, watermarks, listeners.
    /// </summary>
    public AllocatorAdmin Admin { get; }

    /// <summary>The control socket's path when <c>admin_socket</c> is configured and it is being served; else null.</summary>
    public string? AdminSocketPath => _adminServer?.Path;

    /// <summary>
    /// Allocates a movable buffer of <paramref name="sizeBytes"/>: a handle whose memory the allocator may
    /// move to another node (hot-remove) while it is not pinned. Prefers Movable zones, falls back to Normal.
    /// </summary>
    /// <param name="sizeBytes">Bytes, 1 to 4 MiB.</param>
    /// <param name="node">The node to allocate on, or -1 for the calling thread's.</param>
    /// <returns>The buffer (free it with <see cref="MovableBuffer.Free"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">A size or node out of range.</exception>
    /// <exception cref="OutOfMemoryException">No zone could serve it.</exception>
    public MovableBuffer AllocateMovable(int sizeBytes, int node = -1)
    {
        MovableBuffer? buffer = TryAllocateMovable(sizeBytes, node);
        if (buffer is null)
            ObjectThrowHelper.ThrowOutOfMemory((nuint)sizeBytes, node);
        return buffer;
    }

    /// <summary>Like <see cref="AllocateMovable"/>, but returns null when no zone could serve it.</summary>
    /// <param name="sizeBytes">Bytes, 1 to 4 MiB.</param>
    /// <param name="node">The node to allocate on, or -1 for the calling thread's.</param>
    /// <returns>The buffer, or null.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A size or node out of range.</exception>
    public MovableBuffer? TryAllocateMovable(int sizeBytes, int node = -1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(node, -1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, NodeCount);
        return _movable.Allocate(sizeBytes, node);
    }

    /// <summary>
    /// The process-wide allocator, created on first use from the <c>NUMALLOC_CONFIG</c> environment
    /// variable (defaults when unset). It lives as long as the process; <see cref="Dispose"/> does nothing on it.
    /// </summary>
    /// <exception cref="ConfigException"><c>NUMALLOC_CONFIG</c> holds a bad configuration (thrown on every access).</exception>
    /// <exception cref="PlatformException">The heap could not be reserved.</exception>
    public static NumaAllocator Shared => s_shared.Value;

    /// <summary>The options this allocator was built with.</summary>
    public AllocatorOptions Options { get; }

    /// <summary>The number of NUMA nodes (logical ids 0..NodeCount-1).</summary>
    public int NodeCount => _heap.Topology.NodeCount;

    /// <summary>The object heap behind the facade (hot-remove, stats and the C layer reach it here).</summary>
    internal ObjectHeap Heap => _heap;

    /// <summary>The movable-buffer heap behind the facade (the C layer pins, unpins and frees by handle here).</summary>
    internal MovableHeap Movable => _movable;

    /// <summary>Creates an isolated allocator with its own heap; dispose it to give all its memory back.</summary>
    /// <param name="options">The configuration (see <see cref="AllocatorOptions"/>).</param>
    /// <returns>The allocator.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ConfigException">The options are invalid.</exception>
    /// <exception cref="PlatformException">The heap could not be reserved.</exception>
    public static NumaAllocator Create(AllocatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new NumaAllocator(options, PlatformFactory.Default, isShared: false);
    }

    /// <summary>
    /// Like <see cref="Create(AllocatorOptions)"/> over another platform seam: the VM probe's negative
    /// control wraps the real platform to bind every block to the wrong node, and must reach the whole
    /// facade (slabs, page runs, huge mappings, movable buffers) that way.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or <paramref name="platform"/> is null.</exception>
    internal static NumaAllocator CreateOnPlatform(AllocatorOptions options, IPlatform platform)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(platform);
        return new NumaAllocator(options, platform, isShared: false);
    }

    /// <summary>
    /// Allocates at least <paramref name="size"/> bytes on the calling thread's node (or where its memory
    /// policy says). The caller owns the memory until it passes it to <see cref="Free(void*)"/>.
    /// </summary>
    /// <param name="size">Bytes; 0 gives a unique pointer that must be freed like any other.</param>
    /// <param name="alignment">0 for the default (8 bytes at least, and the largest power of two that
    /// divides <paramref name="size"/>, up to 4 KiB: a multiple of 16 bytes is 16-byte aligned), or a power of two.</param>
    /// <returns>The memory (never null).</returns>
    /// <exception cref="ArgumentException"><paramref name="alignment"/> is not a power of two, or the size overflows.</exception>
    /// <exception cref="OutOfMemoryException">No node allowed to serve the request has memory left.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void* Allocate(nuint size, nuint alignment = 0)
    {
        // alignment 0, 1, 2, 4, 8 or 16 (what C's max_align_t needs): every small object is 8-byte
        // aligned, and a size rounded up to 16 gets a class whose objects are 16-byte aligned.
        if (size <= SizeClasses.MaxSmallSize && (((alignment - 1) | ~(nuint)31) & alignment) == 0)
        {
            MagazineSet* set = MagazineRegistry.ThreadSet;
            void* p = _heap.TryAllocateSmallFast(set, alignment > 8 ? RoundUpTo16(size) : size);
            if (p != null)
                return p;
        }
        return AllocateSlow(size, alignment, -1);
    }

    /// <summary>
    /// Like <see cref="Allocate"/>, but returns null instead of throwing when there is no memory.
    /// </summary>
    /// <param name="size">Bytes; 0 gives a unique pointer.</param>
    /// <param name="alignment">0 for the default, or a power of two.</param>
    /// <returns>The memory, or null when no node allowed to serve the request has memory left.</returns>
    /// <exception cref="ArgumentException"><paramref name="alignment"/> is not a power of two, or the size overflows.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void* TryAllocate(nuint size, nuint alignment = 0)
    {
        if (size <= SizeClasses.MaxSmallSize && (((alignment - 1) | ~(nuint)31) & alignment) == 0)
        {
            MagazineSet* set = MagazineRegistry.ThreadSet;
            void* p = _heap.TryAllocateSmallFast(set, alignment > 8 ? RoundUpTo16(size) : size);
            if (p != null)
                return p;
        }
        return _heap.AllocateSlow(size, alignment, -1);
    }

    /// <summary>
    /// Allocates at least <paramref name="size"/> bytes on <paramref name="node"/> only, whatever the calling
    /// thread's node and policy (the node's memory or nothing, like <c>__GFP_THISNODE</c>).
    /// </summary>
    /// <param name="size">Bytes; 0 gives a unique pointer.</param>
    /// <param name="node">A node id, 0..<see cref="NodeCount"/>-1.</param>
    /// <returns>The memory (never null).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="node"/> is not a node id.</exception>
    /// <exception cref="ArgumentException">The size overflows.</exception>
    /// <exception cref="OutOfMemoryException">The node has no memory left for the request.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void* AllocateOnNode(nuint size, int node)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, NodeCount);
        return AllocateSlow(size, 0, node);
    }

    /// <summary>
    /// Like <see cref="AllocateOnNode"/>, but returns null instead of throwing when the node has no memory left.
    /// </summary>
    /// <param name="size">Bytes; 0 gives a unique pointer.</param>
    /// <param name="node">A node id, 0..<see cref="NodeCount"/>-1.</param>
    /// <returns>The memory, or null.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="node"/> is not a node id.</exception>
    /// <exception cref="ArgumentException">The size overflows.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void* TryAllocateOnNode(nuint size, int node)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, NodeCount);
        return _heap.AllocateSlow(size, 0, node);
    }

    /// <summary>
    /// Resizes the allocation at <paramref name="ptr"/> to at least <paramref name="size"/> bytes, keeping
    /// its contents up to the smaller of the two sizes: in place when the new size still fits its size
    /// class (or, above 32 KiB, its pages), else by moving it. Null allocates; size 0 gives a unique
    /// pointer, like <see cref="Allocate"/>.
    /// </summary>
    /// <param name="ptr">A live allocation of this allocator, or null.</param>
    /// <param name="size">The new size in bytes.</param>
    /// <returns>The memory, which the caller now owns instead of <paramref name="ptr"/> (never null).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="ptr"/> is not a live allocation of this allocator (a bad free, reported as <c>on_bad_free</c> says).</exception>
    /// <exception cref="ArgumentException">The size overflows.</exception>
    /// <exception cref="OutOfMemoryException">The allocation had to move and there is no memory; <paramref name="ptr"/> is still valid.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void* Reallocate(void* ptr, nuint size)
    {
        void* p = _heap.Reallocate(ptr, size);
        if (p == null)
            ObjectThrowHelper.ThrowOutOfMemory(size, -1);
        return p;
    }

    /// <summary>Frees memory from this allocator. Null does nothing.</summary>
    /// <param name="ptr">A live allocation of this allocator, or null.</param>
    /// <exception cref="InvalidOperationException">A bad free (not this allocator's, interior, or freed twice) in report or check mode; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void Free(void* ptr)
    {
        MagazineSet* set = MagazineRegistry.ThreadSet;
        if (!_heap.TryFreeFast(set, ptr))
            _heap.FreeSlow(ptr);
    }

    /// <summary>
    /// Fills <paramref name="objects"/> with allocations of at least <paramref name="size"/> bytes each
    /// (default alignment, as <see cref="Allocate"/>): the bulk call of <c>na_malloc_bulk</c>. Small sizes
    /// move through the calling thread's cache a batch at a time, one protocol entry per batch.
    /// All or nothing: when not every one can be served, those already taken are freed and it throws.
    /// </summary>
    /// <param name="size">Bytes per allocation; 0 gives unique pointers.</param>
    /// <param name="objects">Where the pointers go; each must later be freed (<see cref="FreeBulk"/> or <see cref="Free(void*)"/>).</param>
    /// <exception cref="ArgumentException">The size overflows.</exception>
    /// <exception cref="OutOfMemoryException">No node allowed to serve the request has memory for all of them; none is left allocated.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void AllocateBulk(nuint size, Span<nint> objects)
    {
        fixed (nint* into = objects)
        {
            nuint count = (nuint)objects.Length, filled = 0;
            if (size <= SizeClasses.MaxSmallSize)
                filled = _heap.AllocateSmallBulk(size, (void**)into, count);
            try
            {
                // Larger sizes one by one; for small ones this only runs to throw (no memory left).
                for (; filled < count; filled++)
                    into[filled] = (nint)AllocateSlow(size, 0, -1);
            }
            catch (Exception e) when (e is OutOfMemoryException or ArgumentException or ObjectDisposedException)
            {
                FreeBulk(objects[..(int)filled]);
                objects[..(int)filled].Clear();
                throw;
            }
        }
    }

    /// <summary>
    /// Frees every non-zero pointer of <paramref name="objects"/>, as <see cref="Free(void*)"/> does: the bulk
    /// call of <c>na_free_bulk</c>. Small objects go into the calling thread's cache a batch at a time.
    /// A bad pointer does not stop it: every other pointer is freed, then the first bad one is reported.
    /// </summary>
    /// <param name="objects">Live allocations of this allocator; zeros are skipped.</param>
    /// <exception cref="InvalidOperationException">At least one bad free (not this allocator's, interior, or freed
    /// twice, in this call or before) in report or check mode: the first one; the others were freed.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        InvalidOperationException? firstBad = null;
        fixed (nint* ptrs = objects)
        {
            nuint count = (nuint)objects.Length, i = 0;
            // Bulk pushes; whatever stops them (a full magazine, another node's object, a bad
            // pointer) is freed alone through the slow path, then the rest.
            while ((i += _heap.TryFreeBulkFast((void**)ptrs + i, count - i)) < count)
            {
                if (ptrs[i] != 0)
                {
                    try
                    {
                        _heap.FreeSlow((void*)ptrs[i]);
                    }
                    catch (InvalidOperationException e)
                    {
                        firstBad ??= e;
                    }
                }
                i++;
            }
        }
        if (firstBad is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(firstBad);
    }

    /// <summary>The bytes usable at <paramref name="ptr"/>: at least the size it was allocated with; 0 for null.</summary>
    /// <param name="ptr">A live allocation of this allocator, or null.</param>
    /// <returns>The usable size in bytes.</returns>
    /// <exception cref="InvalidOperationException"><paramref name="ptr"/> is not the start of a live allocation of this allocator.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public nuint UsableSize(void* ptr) => _heap.UsableSize(ptr);

    /// <summary>The NUMA node of the memory at <paramref name="ptr"/>, or -1 when it is not this allocator's (or null).</summary>
    /// <param name="ptr">The start of an allocation of this allocator, or any address inside one of up to 4 MiB
    /// (larger allocations are their own mappings, found by their start only).</param>
    /// <returns>A node id, or -1.</returns>
    public int NodeOf(void* ptr) => _heap.NodeOf(ptr);

    /// <summary>
    /// Gives memory back now: flushes the calling thread's object caches, empties the per-CPU caches,
    /// returns empty slabs to their zones, empties the page caches and purges every free page to the OS
    /// (madvise), whatever <c>decay_ms</c> says. Other threads' object magazines are not touched.
    /// </summary>
    /// <exception cref="InvalidOperationException">A double free was found as its object reached its slab (report and check modes).</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void Trim() => Admin.Trim();

    /// <summary>
    /// Flushes the calling thread's caches back to the shared ones; call it before a thread that
    /// allocated exits, so its cached memory does not wait to be reaped.
    /// </summary>
    /// <exception cref="InvalidOperationException">A double free was found as its object reached its slab (report and check modes).</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void FlushCurrentThread() => _heap.FlushCurrentThread();

    /// <summary>
    /// Allocates room for <paramref name="length"/> values of <typeparamref name="T"/> on the calling
    /// thread's node, aligned for <typeparamref name="T"/>. Free it with <see cref="Free{T}(Span{T})"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="length">Elements; 0 gives an empty span over a unique allocation.</param>
    /// <returns>The memory as a span (not zeroed).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    /// <exception cref="ArgumentException">The size in bytes overflows.</exception>
    /// <exception cref="OutOfMemoryException">No node allowed to serve the request has memory left.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public Span<T> AllocateSpan<T>(int length)
        where T : unmanaged =>
        new(Allocate(BytesFor<T>(length)), length);

    /// <summary>
    /// Allocates room for <paramref name="length"/> values of <typeparamref name="T"/> on <paramref name="node"/>
    /// only. Free it with <see cref="Free{T}(Span{T})"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="length">Elements; 0 gives an empty span over a unique allocation.</param>
    /// <param name="node">A node id, 0..<see cref="NodeCount"/>-1.</param>
    /// <returns>The memory as a span (not zeroed).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, or <paramref name="node"/> is not a node id.</exception>
    /// <exception cref="ArgumentException">The size in bytes overflows.</exception>
    /// <exception cref="OutOfMemoryException">The node has no memory left for the request.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public Span<T> AllocateSpanOnNode<T>(int length, int node)
        where T : unmanaged =>
        new(AllocateOnNode(BytesFor<T>(length), node), length);

    /// <summary>
    /// Like <see cref="AllocateSpan{T}(int)"/>, but reports a lack of memory by returning false.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="length">Elements.</param>
    /// <param name="span">The memory, or an empty span when none could be allocated.</param>
    /// <returns>True when the memory was allocated.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    /// <exception cref="ArgumentException">The size in bytes overflows.</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public bool TryAllocateSpan<T>(int length, out Span<T> span)
        where T : unmanaged
    {
        void* p = TryAllocate(BytesFor<T>(length));
        span = p == null ? default : new Span<T>(p, length);
        return p != null;
    }

    /// <summary>Frees a span from <see cref="AllocateSpan{T}(int)"/> (by its first element's address). An empty default span does nothing.</summary>
    /// <typeparam name="T">The element type it was allocated with.</typeparam>
    /// <param name="span">The whole span as allocated.</param>
    /// <exception cref="InvalidOperationException">A bad free (see <see cref="Free(void*)"/>).</exception>
    /// <exception cref="ObjectDisposedException">The allocator was disposed.</exception>
    public void Free<T>(Span<T> span)
        where T : unmanaged =>
        Free(Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)));

    /// <summary>
    /// Gives all of this allocator's memory back to the operating system. Every pointer it handed out
    /// becomes invalid; no other thread may be using it. Does nothing on <see cref="Shared"/>.
    /// </summary>
    public void Dispose()
    {
        if (_isShared)
            return;
        _adminServer?.Dispose();
        _movable.Dispose();
        _heap.Dispose();
        // Last: disposes the page heap again, which is a no-op by then.
        _pageCaches.Dispose();
    }

    // At least 16: a zero-byte request with 16-byte alignment still needs a 16-byte class.
    private static nuint RoundUpTo16(nuint size) => size == 0 ? 16 : (size + 15) & ~(nuint)15;

    private static NumaAllocator CreateShared() => new(AllocatorOptions.FromEnvironment(), PlatformFactory.Default, isShared: true);

    private static nuint BytesFor<T>(int length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ulong bytes = (ulong)(uint)length * (ulong)sizeof(T);
        if (bytes > (ulong)nint.MaxValue)
            ObjectThrowHelper.ThrowSizeOverflow(nameof(length));
        return (nuint)bytes;
    }

    private void* AllocateSlow(nuint size, nuint alignment, int node)
    {
        void* p = _heap.AllocateSlow(size, alignment, node);
        if (p == null)
            ObjectThrowHelper.ThrowOutOfMemory(size, node);
        return p;
    }
}
