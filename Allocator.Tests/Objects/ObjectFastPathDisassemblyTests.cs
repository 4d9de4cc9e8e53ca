using System.Reflection;
using Numalloc.Caches;
using Numalloc.Objects;
using Numalloc.Tests.Caches;

namespace Numalloc.Tests.Objects;

/// <summary>
/// The object fast paths keep the magazine protocol's order in the JIT's machine code: the owner's
/// <c>InAllocator = 1</c> store comes before its load of <c>Pending</c>, with a fence between them
/// exactly when membarrier is unavailable (the same check as the page layer's <c>MembarrierTests</c>).
/// </summary>
[NonParallelizable]
public sealed class ObjectFastPathDisassemblyTests
{
    private static readonly string[] s_methods = ["TryAllocateSmallFast", "TryFreeFast", "TryAllocateSmallBulkFast", "TryFreeBulkFast"];

    [TestCase(false)]
    [TestCase(true)]
    public void Disassembly_ObjectFastPaths_StoreInAllocatorBeforeLoadingPending(bool forceFence)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
            Assert.Ignore("the listing is checked for x64 only");

        string listing = Path.Combine(Path.GetTempPath(), $"numalloc-object-disasm-{Environment.ProcessId}-{forceFence}.txt");
        File.Delete(listing);
        try
        {
            var environment = new Dictionary<string, string>
            {
                ["DOTNET_TieredCompilation"] = "0",
                ["DOTNET_JitDisasm"] = string.Join(' ', s_methods.Select(m => "Numalloc.Objects.ObjectHeap:" + m)),
                ["DOTNET_JitStdOutFile"] = listing,
            };
            if (forceFence)
                environment[MembarrierSupport.ForceOwnerFenceVariable] = "1";

            (int exitCode, string output) = ChildProbe.Run("object-disasm", environment);
            Assert.That(exitCode, Is.Zero, output);
            bool fenced = forceFence || !MembarrierSupport.IsAvailable;
            Assert.That(output, Does.Contain($"OwnerNeedsFence={fenced}"));
            string text = File.ReadAllText(listing);
            TestContext.Out.WriteLine(text);
            string[] methods = text.Split("; Assembly listing for method ", StringSplitOptions.RemoveEmptyEntries);
            foreach (string name in s_methods)
            {
                string method = methods.Single(m => m.StartsWith("Numalloc.Objects.ObjectHeap:" + name, StringComparison.Ordinal));
                Assert.That(method, Does.Contain("FullOpts").Or.Contain("Tier1"), "optimized code");
                int atomics = method.Split('\n').Count(line => System.Text.RegularExpressions.Regex.IsMatch(line, @"^\s+(lock|xchg|mfence)\b"));
                // The single-object paths inline the pop or push once per free-key place (ObjectHeap.FirstWordKey, PageColoredKey).
                int entries = name is "TryAllocateSmallFast" or "TryFreeFast" ? 2 : 1;
                Assert.That(atomics, Is.EqualTo(fenced ? entries : 0), "no atomic instruction on the fast path but the fallback fence of each entry:\n" + method);
                MembarrierTests.CheckStoreBeforeLoad(method, expectFence: fenced);
            }
        }
        finally
        {
            File.Delete(listing);
        }
    }

    /// <summary>The child: initializes the statics the JIT folds, then compiles both fast paths on their own.</summary>
    internal static int CompileFastPaths()
    {
        Console.WriteLine($"OwnerNeedsFence={MembarrierSupport.OwnerNeedsFence}");
        // As in a warm process: RuntimeFeature's statics too, which MagazineSet.MustFence tests first.
        RuntimeHelpers.RunClassConstructor(typeof(RuntimeFeature).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(ObjectClassTable).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(ObjectHeap).TypeHandle);
        foreach (string name in s_methods)
        {
            MethodInfo method = typeof(ObjectHeap).GetMethod(name, BindingFlags.Instance | BindingFlags.Public)!;
            RuntimeHelpers.PrepareMethod(method.MethodHandle);
        }
        return 0;
    }
}
