using Numalloc.Topology;

namespace Numalloc.Native;

/// <summary>
/// The managed state behind the C exports: the configuration read once from
/// <c>NUMALLOC_CONFIG</c> at the first call, and the topology it names. A bad configuration is
/// reported once on stderr and leaves the library failed (calls then report failure), never a crash.
/// </summary>
internal static class NativeRuntime
{
    private static readonly Lazy<NumaTopology?> s_topology = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Number of NUMA nodes of the configured topology; -1 when initialization failed.</summary>
    internal static int NodeCount() => s_topology.Value?.NodeCount ?? -1;

    private static NumaTopology? Initialize()
    {
        try
        {
            return NumaTopology.FromOptions(AllocatorOptions.FromEnvironment());
        }
        catch (Exception e) when (e is ConfigException or TopologyException or ArgumentException or IOException)
        {
            Console.Error.WriteLine($"numalloc: initialization failed: {e.Message}");
            return null;
        }
    }
}
