using System.Runtime.CompilerServices;
using Numalloc.Objects;
using Numalloc.Platform;
using Numalloc.Topology;

namespace Numalloc.Native;

/// <summary>
/// The managed state behind the C exports: <see cref="NumaAllocator.Shared"/>, built once from
/// <c>NUMALLOC_CONFIG</c> at the first call that needs it. A bad configuration (or a heap that
/// cannot be reserved) is reported once on stderr, in one line, and leaves the library failed for
/// the rest of the process (calls then fail with ENOMEM), never a crash.
/// </summary>
internal static class NativeRuntime
{
    // ExecutionAndPublication: the first caller initializes, concurrent first callers wait for it,
    // and the result (null included) is kept, so the failure is reported exactly once.
    private static readonly Lazy<NumaAllocator?> s_allocator = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The shared allocator, initializing it on the first call; null when initialization failed.</summary>
    internal static NumaAllocator? Allocator => s_allocator.Value;

    private static NumaAllocator? Initialize()
    {
        try
        {
            NumaAllocator allocator = NumaAllocator.Shared;
            // Published for the exports' fast paths only after it is fully built (Lazy's lock orders
            // the build before this store; a reader that sees null takes the slow path through here).
            FastPath.Publish(allocator);
            return allocator;
        }
#pragma warning disable CA1031 // Any failure, expected or not, leaves the library failed; it must never escape.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            return null;
        }
    }

    private static void ReportFailure(Exception e)
    {
        try
        {
            // One line whatever the message holds: a C program's log reader sees one record.
            string what = e is ConfigException or TopologyException or ArgumentException or IOException or PlatformException
                ? e.Message
                : $"{e.GetType().Name}: {e.Message}";
            Console.Error.WriteLine($"numalloc: initialization failed (every call will fail with ENOMEM): {what.ReplaceLineEndings(" ")}");
        }
#pragma warning disable CA1031 // stderr closed: the failed state still holds.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}

/// <summary>
/// The fields the exports read: the shared allocator once it is built, else null (then they go through
/// <see cref="NativeRuntime.Allocator"/>), and its object heap, which the hot exports (<c>na_malloc</c>,
/// <c>na_free</c>, the bulk calls) use directly: one load fewer than through the allocator. A class of its
/// own with no static initializer, so NativeAOT reads the fields with no class-constructor check (the
/// reason they are not fields of <see cref="NativeRuntime"/>, whose Lazy needs one).
/// </summary>
internal static class FastPath
{
    private static NumaAllocator? s_allocator;
    private static ObjectHeap? s_heap;

    /// <summary>The shared allocator, or null until it is built (or when it failed).</summary>
    internal static NumaAllocator? Allocator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref s_allocator); // Acquire: pairs with Publish; the allocator's fields are seen built.
    }

    /// <summary>The shared allocator's object heap, or null until it is built (or when it failed).</summary>
    internal static ObjectHeap? Heap
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref s_heap); // Acquire: pairs with Publish; the heap's fields are seen built.
    }

    /// <summary>Publishes the built allocator.</summary>
    internal static void Publish(NumaAllocator allocator)
    {
        Volatile.Write(ref s_heap, allocator.Heap); // Release: the heap is fully built before any fast path sees it.
        Volatile.Write(ref s_allocator, allocator); // Release: likewise for the allocator.
    }
}
