using System.Diagnostics;
using Numalloc.Tests.Platform;

namespace Numalloc.Tests.Objects;

/// <summary>Issue 5's purging test through the facade: a 200 MiB spike of allocations, freed, leaves RSS.</summary>
[NonParallelizable, Category("Stress")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed unsafe class FacadePurgeTests
{
    private const long MiB = 1024 * 1024;
    private const int SpikeAllocations = 200; // of 1 MiB: page runs from the buddy allocator

    private static NumaAllocator Create(int decayMs) => NumaAllocator.Create(new AllocatorOptions
    {
        Topology = TopologySpec.Simulate(1),
        NormalBytes = 16 * MiB,
        NormalMaxBytes = 512 * MiB,
        MovableBytes = 0,
        DecayMs = decayMs,
    });

    private static long SpikeAndFree(NumaAllocator allocator)
    {
        var spike = new List<nint>();
        for (int i = 0; i < SpikeAllocations; i++)
        {
            byte* p = (byte*)allocator.Allocate((nuint)MiB);
            new Span<byte>(p, (int)MiB).Fill(0xA5); // resident now
            spike.Add((nint)p);
        }
        long peak = ProcessMemory.ResidentBytes();
        foreach (nint p in spike)
            allocator.Free((void*)p);
        return peak;
    }

    [Test, CancelAfter(120_000)]
    public void ASpikeFreed_LeavesResidentMemory_WithinTheDecayTime()
    {
        using NumaAllocator allocator = Create(decayMs: 200);
        long peak = SpikeAndFree(allocator);

        // Polls far beyond decay + tick so a starved 2-core box does not fail it; the verdict is the RSS drop.
        var clock = Stopwatch.StartNew();
        while (peak - ProcessMemory.ResidentBytes() < 150 * MiB && clock.Elapsed < TimeSpan.FromSeconds(60))
            Thread.Sleep(20);

        long after = ProcessMemory.ResidentBytes();
        TestContext.Out.WriteLine($"RSS peak {peak / MiB} MiB, {after / MiB} MiB after {clock.ElapsedMilliseconds} ms (decay 200 ms)");
        Assert.That(peak - after, Is.GreaterThan(150 * MiB));
    }

    [Test, CancelAfter(120_000)]
    public void ASpikeFreed_LeavesResidentMemory_AtOnceOnTrim()
    {
        using NumaAllocator allocator = Create(decayMs: 3_600_000);
        long peak = SpikeAndFree(allocator);
        Assert.That(peak - ProcessMemory.ResidentBytes(), Is.LessThan(50 * MiB), "an hour's decay: still resident before Trim");

        allocator.Trim();

        long after = ProcessMemory.ResidentBytes();
        TestContext.Out.WriteLine($"RSS peak {peak / MiB} MiB, after Trim {after / MiB} MiB");
        Assert.That(peak - after, Is.GreaterThan(150 * MiB));
    }
}
