namespace Numalloc;

/// <summary>
/// A bad allocator configuration: an unknown or duplicate key, a malformed value, or values that
/// contradict each other. The message names the key, the bad value and what is allowed.
/// </summary>
public sealed class ConfigException : FormatException
{
    /// <summary>Creates an exception with a generic message.</summary>
    public ConfigException()
        : base("The allocator configuration is invalid.")
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    public ConfigException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and cause.</summary>
    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception about one configuration key.</summary>
    /// <param name="key">The offending key, e.g. <c>block</c>.</param>
    /// <param name="message">The full message, naming the key, the value and what is allowed.</param>
    public ConfigException(string key, string message)
        : base(message)
    {
        Key = key;
    }

    /// <summary>The configuration key at fault, or <see langword="null"/> when the error is not about one key.</summary>
    public string? Key { get; }
}
