namespace Numalloc.Platform;

/// <summary>The <see cref="IPlatform"/> operations <see cref="FaultInjectingPlatform"/> counts and can fail.</summary>
internal enum PlatformCall
{
    /// <summary><see cref="IPlatform.Reserve"/> (mmap).</summary>
    Reserve,

    /// <summary><see cref="IPlatform.Commit"/> (mprotect).</summary>
    Commit,

    /// <summary><see cref="IPlatform.Decommit"/> (madvise + mprotect).</summary>
    Decommit,

    /// <summary><see cref="IPlatform.Purge"/> (madvise).</summary>
    Purge,

    /// <summary><see cref="IPlatform.Release"/> (munmap).</summary>
    Release,

    /// <summary><see cref="IPlatform.Bind"/> (mbind).</summary>
    Bind,

    /// <summary><see cref="IPlatform.TryQueryBinding"/> (get_mempolicy).</summary>
    QueryBinding,

    /// <summary><see cref="IPlatform.QueryNodeOfPages"/> (move_pages).</summary>
    QueryNodeOfPages,

    /// <summary><see cref="IPlatform.QueryCurrentCpu"/> (getcpu).</summary>
    QueryCurrentCpu,
}
