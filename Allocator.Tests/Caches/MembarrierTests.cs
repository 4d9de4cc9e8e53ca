using System.Text.RegularExpressions;
using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

[NonParallelizable]
public class MembarrierTests
{
    [Test]
    public void IsAvailable_OnLinux_ReportsPrivateExpedited()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("membarrier is Linux only");
        }

        int mask = MembarrierSupport.QueryMask();
        Assert.That(mask, Is.GreaterThan(0), "MEMBARRIER_CMD_QUERY answered");
        Assert.That(mask & 8, Is.EqualTo(8), "MEMBARRIER_CMD_PRIVATE_EXPEDITED supported");
        Assert.That(MembarrierSupport.IsAvailable, Is.True);
        Assert.That(MembarrierSupport.OwnerNeedsFence, Is.False, "the owner's fast path runs without a fence here");
        using var rig = new CacheRig();
        unsafe
        {
            Assert.That(rig.Registry.Current->OwnerNeedsFence, Is.Zero, "and a new set says so to the ahead-of-time build");
        }
    }

    [Test, Category("Stress"), CancelAfter(180_000)]
    public void ForcedOwnerFence_ProtocolStillReconcilesExactly(CancellationToken token)
    {
        (int exitCode, string output) = ChildProbe.Run("protocol", new Dictionary<string, string>
        {
            [MembarrierSupport.ForceOwnerFenceVariable] = "1",
        });
        TestContext.Out.WriteLine(output);
        Assert.That(exitCode, Is.Zero, output);
        Assert.That(output, Does.Contain("OwnerNeedsFence=True"));
        Assert.That(output, Does.Contain("set OwnerNeedsFence=1"), "a new set carries the decision for the ahead-of-time build");
        Assert.That(output, Does.Contain("MagazineCounters {"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Disassembly_OwnerStoreOfInAllocator_PrecedesItsLoadOfPending(bool forceFence)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Assert.Ignore("the listing is checked for x64 only");
        }

        string listing = Path.Combine(Path.GetTempPath(), $"numalloc-disasm-{Environment.ProcessId}-{forceFence}.txt");
        File.Delete(listing);
        try
        {
            var environment = new Dictionary<string, string>
            {
                ["DOTNET_TieredCompilation"] = "0",
                ["DOTNET_JitDisasm"] = "Numalloc.Caches.MagazineSet:EnterOutermost Numalloc.Caches.MagazineSet:Enter",
                ["DOTNET_JitStdOutFile"] = listing,
            };
            if (forceFence)
            {
                environment[MembarrierSupport.ForceOwnerFenceVariable] = "1";
            }

            (int exitCode, string output) = ChildProbe.Run("disasm", environment);
            Assert.That(exitCode, Is.Zero, output);
            Assert.That(output, Does.Contain($"OwnerNeedsFence={forceFence || !MembarrierSupport.IsAvailable}"));
            string text = File.ReadAllText(listing);
            TestContext.Out.WriteLine(text);

            string[] methods = text.Split("; Assembly listing for method ", StringSplitOptions.RemoveEmptyEntries);
            string enterOutermost = methods.Single(m => m.StartsWith("Numalloc.Caches.MagazineSet:EnterOutermost", StringComparison.Ordinal));
            string enter = methods.Single(m => m.StartsWith("Numalloc.Caches.MagazineSet:Enter(", StringComparison.Ordinal));
            foreach (string method in new[] { enterOutermost, enter })
            {
                Assert.That(method, Does.Contain("FullOpts").Or.Contain("Tier1"), "optimized code");
                CheckStoreBeforeLoad(method, expectFence: forceFence || !MembarrierSupport.IsAvailable);
            }
        }
        finally
        {
            File.Delete(listing);
        }
    }

    // The set pointer arrives in a register; InAllocator is at offset 0 and Pending at offset 8
    // (Layout_ProtocolWordsSitAtFixedOffsetsInOneLine checks the offsets).
    internal static void CheckStoreBeforeLoad(string method, bool expectFence)
    {
        string[] lines = method.Split('\n');
        var store = new Regex(@"^\s+mov\s+dword ptr \[(?<reg>r\w+)\],\s*1\s*$");
        // Every entry (a method may inline the protocol more than once): its InAllocator = 1 store,
        // then its first load of Pending off the same register, with a fence between them exactly
        // when membarrier is unavailable; and no Pending access before the first entry.
        int entries = 0;
        for (int storeLine = 0; storeLine < lines.Length; storeLine++)
        {
            Match m = store.Match(lines[storeLine]);
            if (!m.Success)
                continue;
            var pending = new Regex(@"\[" + m.Groups["reg"].Value + @"\+0x0?8\]");
            if (entries++ == 0)
            {
                int firstAccess = Array.FindIndex(lines, line => pending.IsMatch(line));
                Assert.That(firstAccess, Is.GreaterThan(storeLine), "every access to Pending follows the InAllocator store:\n" + method);
            }
            int loadLine = Array.FindIndex(lines, storeLine + 1, line => pending.IsMatch(line));
            Assert.That(loadLine, Is.GreaterThan(storeLine), $"the entry at line {storeLine} loads Pending after its store:\n" + method);
            bool fenced = lines[storeLine..loadLine].Any(line => Regex.IsMatch(line, @"^\s+(lock|mfence)\b"));
            Assert.That(fenced, Is.EqualTo(expectFence), "a full fence between them exactly when membarrier is unavailable:\n" + method);
        }
        Assert.That(entries, Is.GreaterThan(0), "found the InAllocator = 1 store:\n" + method);
    }
}
