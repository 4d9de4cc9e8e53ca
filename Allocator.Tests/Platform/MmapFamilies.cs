using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

/// <summary>The two <see cref="IMmapFamily"/> implementations by name, for fixtures that run over both.</summary>
[SupportedOSPlatform("linux")]
internal static class MmapFamilies
{
    /// <summary>"Mono.Posix" or "libc".</summary>
    internal static IMmapFamily Named(string name) => name switch
    {
        "Mono.Posix" => MonoPosixMmapFamily.Instance,
        "libc" => LibcMmapFamily.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "No such mmap family."),
    };
}
