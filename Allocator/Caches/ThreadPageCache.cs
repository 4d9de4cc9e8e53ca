using Numalloc.Pages;
using Numalloc.Zonelists;

namespace Numalloc.Caches;

/// <summary>
/// A thread's own handle on the page caches, for code that allocates and frees many order-0 pages
/// (mimalloc's <c>mi_heap_t</c> is the model): the thread's magazine set, or with magazines off its
/// CPU, is looked up once when the handle opens instead of on every call. Under the JIT on linux-x64
/// a thread-static read is a call to <c>__tls_get_addr</c>, about 2 ns, which is a third of the
/// magazine's whole budget per pair.
/// </summary>
/// <remarks>
/// The handle belongs to the thread that opened it, and being a ref struct it cannot leave that
/// thread's stack (no boxing, no fields of classes, no lambdas, no awaits). It keeps the owner-only
/// protocol of the plain calls: each call enters and exits the magazines as they do, so a drain is
/// never held up by an open handle. Dispose it (<c>using</c>) before the thread calls
/// <see cref="CachedPageAllocator.FlushCurrentThread"/> if the set should be freed then: while a handle
/// is open the flush empties the set but keeps it. Like <c>mi_heap_t</c>, a handle is not to be copied:
/// a copy used after the original's <see cref="Dispose"/> may touch a freed set.
/// </remarks>
internal unsafe ref struct ThreadPageCache
{
    private readonly CachedPageAllocator _pages;
    private readonly long _registryId;
    // The thread's set, also with magazines off (it caches the thread's CPU then); null once disposed,
    // since the set may be freed after that.
    private MagazineSet* _set;

    internal ThreadPageCache(CachedPageAllocator pages, MagazineSet* set)
    {
        _pages = pages;
        _set = set;
        _registryId = set->RegistryId;
        set->OpenHandles++;
    }

    /// <summary>Allocates one order-0 page (4 KiB), as <see cref="CachedPageAllocator.AllocPages"/> with order 0.</summary>
    /// <param name="flags"><see cref="PageAllocFlags.None"/> or <see cref="PageAllocFlags.Movable"/> take the caches; other flags the zonelist walk.</param>
    /// <returns>The page, or null when no eligible zone could serve.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void* AllocPage(PageAllocFlags flags = PageAllocFlags.None)
    {
        MagazineSet* set = _set;
        // A set whose registry id changed belongs to a disposed allocator: the plain path says so.
        if (set != null && set->RegistryId == _registryId && (flags & ~PageAllocFlags.Movable) == 0 && !PageAllocator.MayHaveThreadPolicy)
        {
            void* page = _pages.UsesMagazines ? _pages.TryAllocFromMagazine(set, flags) : _pages.TryAllocFromCpuCache(set, flags);
            if (page != null)
                return page;
        }

        return Pages.AllocPages(0, flags);
    }

    /// <summary>Frees one order-0 page from <see cref="AllocPage"/> or <see cref="CachedPageAllocator.AllocPages"/>.</summary>
    /// <exception cref="InvalidOperationException">Not a live order-0 page of this heap (named in the message).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void FreePage(void* p)
    {
        MagazineSet* set = _set;
        bool done = set != null && set->RegistryId == _registryId
            && (_pages.UsesMagazines ? _pages.TryFreeToMagazine(set, p) : _pages.TryFreeToCpuCache(set, p));
        if (!done)
            Pages.FreePages(p, 0);
    }

    /// <summary>Closes the handle; further calls take the plain paths' lookups.</summary>
    public void Dispose()
    {
        MagazineSet* set = _set;
        _set = null;
        if (set != null && set->OpenHandles > 0) // A copy disposed twice must not wrap the count.
            set->OpenHandles--;
    }

    // The slow paths' allocator; a default(ThreadPageCache) was never opened.
    private readonly CachedPageAllocator Pages =>
        _pages ?? throw new InvalidOperationException("This ThreadPageCache was never opened: use CachedPageAllocator.OpenThreadCache().");
}
