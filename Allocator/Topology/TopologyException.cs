namespace Numalloc.Topology;

/// <summary>
/// The machine's topology could not be read: a sysfs file is missing, unreadable or malformed,
/// or the tree contradicts itself. The message names the file.
/// </summary>
public sealed class TopologyException : Exception
{
    /// <summary>Creates an exception with a generic message.</summary>
    public TopologyException()
        : base("The NUMA topology could not be read.")
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    public TopologyException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and cause.</summary>
    public TopologyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception about one file.</summary>
    /// <param name="path">The file at fault.</param>
    /// <param name="message">What is wrong with it; the path is prefixed.</param>
    /// <param name="innerException">The cause, if any.</param>
    public TopologyException(string path, string message, Exception? innerException)
        : base($"{path}: {message}", innerException)
    {
        FilePath = path;
    }

    /// <summary>The file at fault, or <see langword="null"/>.</summary>
    public string? FilePath { get; }
}
