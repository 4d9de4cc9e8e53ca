using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using Numalloc.Caches;
using Numalloc.Platform;
using Numalloc.Topology;
using Numalloc.Zonelists;

namespace Numalloc.Native;

/// <summary>
/// Benchmark and test-only exports, used by <c>bench/crossing.c</c> to time the C → NativeAOT
/// crossing and by the C tests to reach the export guard. Not part of the numalloc ABI: they are declared in <c>bench/na_bench.h</c>, never in
/// <c>include/numalloc.h</c>, and may change or vanish without notice.
/// </summary>
internal static unsafe class BenchExports
{
    // One counter per thread: what a per-thread magazine lookup costs inside an export.
    [ThreadStatic]
    private static int t_counter;

    /// <summary><c>void na_bench_noop(void)</c>: does nothing; times the bare crossing.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_noop")]
    internal static void Noop()
    {
    }

    /// <summary><c>int na_bench_tls(void)</c>: increments this thread's counter and returns it; times a thread-static access inside an export.</summary>
    // cannot throw: an unchecked increment of a thread-static int (no guard, to time the bare access).
    [UnmanagedCallersOnly(EntryPoint = "na_bench_tls")]
    internal static int ThreadStatic()
    {
        return unchecked(++t_counter); // wraps after 2^31 calls, also in Debug
    }

    // The page allocator the page exports time: one simulated node, 16 MiB of Normal memory, no
    // Movable zone, magazines in front. Built once, on the first page export, by whichever thread
    // gets there first; null when building it failed (every page export then reports failure).
    private static readonly Lazy<CachedPageAllocator?> s_pages = new(CreatePages, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary><c>void *na_bench_page_alloc(void)</c>: one order-0 page from the cached page allocator (its fast path: the thread's magazine); NULL on failure.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_page_alloc")]
    internal static void* PageAlloc()
    {
        try
        {
            CachedPageAllocator? pages = s_pages.Value;
            return pages is null ? null : pages.AllocPages(0);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

    /// <summary><c>void na_bench_page_free(void *p)</c>: frees a page from <c>na_bench_page_alloc</c>; NULL does nothing; a bad pointer is ignored.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_page_free")]
    internal static void PageFree(void* p)
    {
        try
        {
            if (p != null)
            {
                s_pages.Value?.FreePages(p, 0);
            }
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free must not take the process down.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>
    /// <c>int na_bench_page_pair(long iterations)</c>: <paramref name="iterations"/> alloc+free pairs of
    /// one order-0 page, all inside the library (one crossing in all); 0, or -1 on failure (no allocator,
    /// a failed allocation, an exception, or a negative count).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_page_pair")]
    internal static int PagePair(long iterations)
    {
        try
        {
            CachedPageAllocator? pages = s_pages.Value;
            if (pages is null || iterations < 0)
            {
                return -1;
            }

            for (long i = 0; i < iterations; i++)
            {
                void* p = pages.AllocPages(0);
                if (p == null)
                {
                    return -1;
                }

                pages.FreePages(p, 0);
            }

            return 0;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes the documented -1.
        catch (Exception)
#pragma warning restore CA1031
        {
            return -1;
        }
    }

    /// <summary>
    /// <c>int na_bench_throw(void)</c>: throws an unexpected exception inside the export guard, so a
    /// C test sees what any export does with one: -1 and errno ENOMEM, the process alive, and one
    /// report on stderr for the first such exception of the process.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_throw")]
    internal static int Throw()
    {
        try
        {
            return ThrowOnPurpose();
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }

    // A frame below the export, as a real failure would come from.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ThrowOnPurpose() =>
        throw new InvalidOperationException("thrown on purpose by na_bench_throw to test the export guard");

    // The object allocator the object exports time: the same heap shape as the page exports' (one
    // simulated node, 16 MiB of Normal memory), built once on the first object export; null when that failed.
    private static readonly Lazy<NumaAllocator?> s_objects = new(CreateObjects, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary><c>void *na_bench_object_alloc(size_t size)</c>: one object from the bench object allocator (its fast path: the thread's magazine); NULL on failure.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_object_alloc")]
    internal static void* ObjectAlloc(nuint size)
    {
        try
        {
            NumaAllocator? objects = s_objects.Value;
            return objects is null ? null : objects.TryAllocate(size);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes NULL.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

    /// <summary><c>void na_bench_object_free(void *p)</c>: frees an object from <c>na_bench_object_alloc</c>; NULL does nothing; a bad pointer is ignored.</summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_object_free")]
    internal static void ObjectFree(void* p)
    {
        try
        {
            s_objects.Value?.Free(p);
        }
#pragma warning disable CA1031 // The C ABI boundary: a bad free must not take the process down.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>
    /// <c>int na_bench_object_pair(size_t size, long iterations)</c>: <paramref name="iterations"/> allocate+free
    /// pairs of <paramref name="size"/> bytes through <see cref="NumaAllocator"/>, all inside the library (one
    /// crossing in all; the same loop the BenchmarkDotNet object benchmark runs under the JIT); 0, or -1 on failure.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_object_pair")]
    internal static int ObjectPair(nuint size, long iterations)
    {
        try
        {
            NumaAllocator? objects = s_objects.Value;
            if (objects is null || iterations < 0)
            {
                return -1;
            }

            return ObjectPairs(objects, size, iterations);
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes the documented -1.
        catch (Exception)
#pragma warning restore CA1031
        {
            return -1;
        }
    }

    // Kept out of the export so the loop is compiled as the JIT compiles the benchmark's: calls to
    // Allocate and Free, not a body inlined into the reverse P/Invoke frame.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int ObjectPairs(NumaAllocator objects, nuint size, long iterations)
    {
        for (long i = 0; i < iterations; i++)
        {
            objects.Free(objects.Allocate(size));
        }

        return 0;
    }

    private static NumaAllocator? CreateObjects()
    {
        try
        {
            return NumaAllocator.Create(new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 16 * AllocatorOptions.MiB, MovableBytes = 0 });
        }
#pragma warning disable CA1031 // Any failure leaves the object exports reporting failure, never a crash.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"numalloc: bench object allocator failed: {e.Message}");
            return null;
        }
    }

    // The vetoing listener na_bench_veto_offline registers on the shared allocator; null when none is.
    private static IDisposable? s_veto;

    /// <summary>
    /// <c>int na_bench_veto_offline(int veto)</c>: with non-zero <paramref name="veto"/>, registers on the shared
    /// allocator a hotplug listener that vetoes every offline (so the C tests can see -ECANCELED); with 0,
    /// removes it. 0, or -1 with ENOMEM when the library failed to initialize.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "na_bench_veto_offline")]
    internal static int VetoOffline(int veto)
    {
        try
        {
            NumaAllocator? allocator = NativeRuntime.Allocator;
            if (allocator is null)
                return ExportGuard.MinusOne(Interop.Libc.ENOMEM);
            Interlocked.Exchange(ref s_veto, null)?.Dispose(); // one listener at most, whichever thread calls
            if (veto != 0)
                s_veto = allocator.Admin.RegisterListener(new VetoingListener());
            return 0;
        }
#pragma warning disable CA1031 // The C ABI boundary: every failure becomes -1 and errno (ExportGuard).
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ExportGuard.MinusOne(e, Interop.Libc.ENOMEM);
        }
    }

    private sealed class VetoingListener : Numalloc.Hotplug.HotplugListener
    {
        public override bool OnGoingOffline(Numalloc.Hotplug.HotplugNotification notification) => false;
    }

    private static CachedPageAllocator? CreatePages()
    {
        try
        {
            var options = new AllocatorOptions { Topology = TopologySpec.Simulate(1), NormalBytes = 16 * AllocatorOptions.MiB, MovableBytes = 0 };
            NumaTopology topology = NumaTopology.FromOptions(options);
            return new CachedPageAllocator(new PageAllocator(options, topology, PlatformFactory.Default));
        }
#pragma warning disable CA1031 // Any failure leaves the page exports reporting failure, never a crash.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"numalloc: bench page allocator failed: {e.Message}");
            return null;
        }
    }
}
