using System.Diagnostics.CodeAnalysis;
using System.Runtime.Versioning;

namespace Numalloc.Platform;

/// <summary>
/// Picks the <see cref="IMmapFamily"/> the default <see cref="LinuxPlatform"/> uses. The managed
/// library uses Mono.Posix (the user's choice); <c>Allocator.Native</c> turns on the feature
/// switch <see cref="UseLibcSwitchName"/> with <c>Trim="true"</c>, so the AOT compiler folds
/// <see cref="UseLibc"/> to a constant and never compiles the Mono.Posix path: neither
/// <c>libnumalloc.so</c> nor <c>libnumalloc.a</c> then loads <c>libMonoPosixHelper.so</c>.
/// </summary>
internal static class MmapFamily
{
    /// <summary>The AppContext switch (runtimeconfig / RuntimeHostConfigurationOption) that selects libc.</summary>
    internal const string UseLibcSwitchName = "Numalloc.Platform.UseLibcMmap";

    /// <summary>True when the mmap family comes from libc; fixed at build time in the native library.</summary>
    [FeatureSwitchDefinition(UseLibcSwitchName)]
    internal static bool UseLibc { get; } = AppContext.TryGetSwitch(UseLibcSwitchName, out bool enabled) && enabled;

    /// <summary>The implementation <see cref="UseLibc"/> selects.</summary>
    [SupportedOSPlatform("linux")]
    internal static IMmapFamily Default => UseLibc ? LibcMmapFamily.Instance : MonoPosixMmapFamily.Instance;
}
