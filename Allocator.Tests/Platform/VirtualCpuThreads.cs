using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

/// <summary>Threads pinned to a virtual CPU for the length of a test action.</summary>
internal static class VirtualCpuThreads
{
    /// <summary>Runs <paramref name="action"/> on a new thread with the virtual CPU <paramref name="cpu"/> (-1: none); rethrows its failure.</summary>
    public static void RunOnCpu(int cpu, Action action)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            if (cpu >= 0)
                VirtualCpu.Set(cpu);
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                VirtualCpu.Clear();
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
            throw new AssertionException($"thread on cpu {cpu} failed: {failure}");
    }
}
