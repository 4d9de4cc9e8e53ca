using Numalloc.Topology;

namespace Numalloc.Native;

/// <summary>
/// The managed state behind the C exports: the configuration read once from
/// <c>NUMALLOC_CONFIG</c> at the first call, and the topology it names. A bad configuration is
/// reported once on stderr, in one line, and leaves the library failed for the rest of the
/// process (calls then fail with ENOMEM), never a crash.
/// </summary>
internal static class NativeRuntime
{
    // ExecutionAndPublication: the first caller initializes, concurrent first callers wait for it,
    // and the result (null included) is kept, so the failure is reported exactly once.
    private static readonly Lazy<NumaTopology?> s_topology = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The configured topology; null when initialization failed.</summary>
    internal static NumaTopology? Topology => s_topology.Value;

    private static NumaTopology? Initialize()
    {
        try
        {
            return NumaTopology.FromOptions(AllocatorOptions.FromEnvironment());
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
            string what = e is ConfigException or TopologyException or ArgumentException or IOException
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
