namespace Numalloc.Platform;

/// <summary>Creates the platform for the OS the process runs on.</summary>
internal static class PlatformFactory
{
    private static readonly Lazy<IPlatform> s_default = new(CreateDefault, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>One shared instance for this OS, created on first use.</summary>
    /// <exception cref="PlatformNotSupportedException">Neither Linux nor Windows.</exception>
    public static IPlatform Default => s_default.Value;

    /// <summary>A new platform for this OS: <see cref="LinuxPlatform"/> or <see cref="WindowsPlatform"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">Neither Linux nor Windows.</exception>
    public static IPlatform CreateDefault()
    {
        if (OperatingSystem.IsLinux())
        {
            return new LinuxPlatform();
        }

        if (OperatingSystem.IsWindows())
        {
            return new WindowsPlatform();
        }

        throw new PlatformNotSupportedException("numalloc supports Linux and Windows.");
    }
}
