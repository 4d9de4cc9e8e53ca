namespace Numalloc.Platform;

// The OS seam: every call the allocator makes into the operating system goes through here,
// one implementation per OS (LinuxPlatform, WindowsPlatform) and a fault-injecting decorator
// for tests. Modelled on mimalloc's prim.h: shared rules once, then a short contract per call.
//
// Shared preconditions and rules:
// - Every address and size is a multiple of PageSize; sizes are non-zero. Ranges passed to
//   Commit/Decommit/Purge/Bind lie inside one reservation returned by Reserve.
// - Nothing fails silently: an OS failure throws PlatformException carrying the call name,
//   its arguments and the errno (Linux) or Win32 error (Windows). Argument errors the caller
//   could have avoided throw ArgumentException before any OS call.
// - Memory states: reserved (address space only, any touch faults) -> committed (readable and
//   writable, zero-filled on first touch) -> decommitted (physical pages returned, any touch
//   faults again) -> released (address space gone).
//   Decommit on Linux = madvise(MADV_DONTNEED) + mprotect(PROT_NONE): pages are dropped and a
//   touch faults; the range keeps its mbind policy. On Windows = VirtualFree(MEM_DECOMMIT):
//   pages are dropped, a touch faults, and the preferred node is forgotten (Bind again).
// - Purge returns physical pages but keeps the range committed: it stays accessible and
//   reads back as zero (Linux MADV_DONTNEED on private anonymous memory; Windows decommit +
//   recommit, which also forgets the preferred node).
// - Bind sets where pages first touched after the call come from; pages already resident
//   stay where they are (no migration). On Windows it commits the range with that preferred node.
// - The calls are thread-safe in the OS sense; the caller serializes calls on the same range.

/// <summary>
/// The operating-system primitives the allocator is built on: virtual memory reservation and
/// commit, NUMA binding and queries, CPU identity. Implementations are stateless apart from
/// cached constants and are safe to share between threads.
/// </summary>
internal unsafe interface IPlatform
{
    /// <summary>
    /// The base page size in bytes (4096 on x86-64; 4 KiB, 16 KiB or 64 KiB on arm64).
    /// Every address and size passed to this interface is a multiple of it.
    /// </summary>
    nuint PageSize { get; }

    /// <summary>
    /// One more than the highest CPU id the OS could ever report (Linux: cpu/possible), for
    /// sizing per-CPU tables. Not Environment.ProcessorCount: CPU ids can exceed it under cpusets.
    /// </summary>
    int PossibleCpuCount { get; }

    /// <summary>
    /// The CPU the calling thread should treat as its own: the per-thread <see cref="VirtualCpu"/>
    /// when set, else the runtime's cached processor id. A cheap hint, possibly stale; correctness
    /// must never depend on it.
    /// </summary>
    int CurrentCpu { get; }

    /// <summary>
    /// Reserves <paramref name="sizeBytes"/> of address space, aligned to <paramref name="alignmentBytes"/>
    /// (a power of two, at least PageSize; 0 means PageSize), inaccessible and not backed by swap
    /// (Linux PROT_NONE + MAP_NORESERVE, Windows MEM_RESERVE). The caller owns it until Release.
    /// </summary>
    /// <exception cref="PlatformException">The OS refused the reservation.</exception>
    void* Reserve(nuint sizeBytes, nuint alignmentBytes);

    /// <summary>
    /// Makes a reserved or decommitted range readable and writable; untouched pages read as zero.
    /// Linux mprotect(PROT_READ|PROT_WRITE); Windows VirtualAlloc(MEM_COMMIT).
    /// </summary>
    /// <exception cref="PlatformException">The OS refused (for example ENOMEM past the commit limit).</exception>
    void Commit(void* address, nuint sizeBytes);

    /// <summary>
    /// Returns the physical pages of a committed range and makes it inaccessible: a later touch
    /// faults. Linux madvise(MADV_DONTNEED) + mprotect(PROT_NONE); Windows VirtualFree(MEM_DECOMMIT).
    /// </summary>
    /// <exception cref="PlatformException">The OS refused.</exception>
    void Decommit(void* address, nuint sizeBytes);

    /// <summary>
    /// Returns the physical pages of a committed range but leaves it committed: it stays
    /// accessible and reads back as zero. Linux madvise(MADV_DONTNEED); Windows decommit + recommit.
    /// </summary>
    /// <exception cref="PlatformException">The OS refused.</exception>
    void Purge(void* address, nuint sizeBytes);

    /// <summary>
    /// Gives a whole reservation back; <paramref name="address"/> and <paramref name="sizeBytes"/>
    /// are exactly what Reserve returned and was given. Any later touch faults.
    /// </summary>
    /// <exception cref="PlatformException">The OS refused.</exception>
    void Release(void* address, nuint sizeBytes);

    /// <summary>
    /// Binds a range to <paramref name="node"/> for pages first touched after the call: Linux
    /// mbind with MPOL_PREFERRED or MPOL_BIND; Windows commits with VirtualAllocExNuma (always preferred).
    /// </summary>
    /// <exception cref="PlatformException">The node does not exist (mbind EINVAL) or the OS refused.</exception>
    void Bind(void* address, nuint sizeBytes, int node, BindMode mode);

    /// <summary>
    /// Reads back the policy Bind set on the page containing <paramref name="address"/> (Linux
    /// get_mempolicy). False when the range has the default policy; always false on Windows.
    /// </summary>
    /// <exception cref="PlatformException">The OS refused (for example EFAULT for an unmapped address).</exception>
    bool TryQueryBinding(void* address, out BindMode mode, out int node);

    /// <summary>
    /// Writes into <paramref name="nodes"/>[i] the node holding the page at <paramref name="pages"/>[i]
    /// (Linux move_pages with nodes = NULL). A page that cannot be reported gets a negative errno:
    /// -ENOENT (-2) for a page never touched or not resident, -EFAULT (-14) for an unmapped address.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="nodes"/> is shorter than <paramref name="pages"/>.</exception>
    /// <exception cref="PlatformException">The OS refused the whole query.</exception>
    void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes);

    /// <summary>
    /// Asks the OS which CPU and node the calling thread runs on now (Linux getcpu; Windows
    /// GetCurrentProcessorNumberEx). A system call: for topology discovery and tests, not the fast path.
    /// </summary>
    /// <exception cref="PlatformException">The OS refused.</exception>
    int QueryCurrentCpu(out int node);
}
