using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Numalloc.Caches;
using Numalloc.Tests;
using Numalloc.Tests.Caches;

/// <summary>
/// Runs probes in a child <c>dotnet</c> process: the test assembly is started as an app
/// (<c>dotnet Numalloc.Tests.dll</c>; the test SDK gives it an entry point) with itself as a startup
/// hook, so the probe runs before <c>Main</c> and exits the process; <c>NUMALLOC_PROBE</c> selects it.
/// Used where the process's start-up environment matters: <c>DOTNET_JitDisasm</c> and the static
/// readonly <see cref="MembarrierSupport.OwnerNeedsFence"/>.
/// </summary>
[SuppressMessage("Design", "CA1050:Declare types in namespaces", Justification = "The runtime finds startup hooks by this exact global name.")]
public static class StartupHook
{
    /// <summary>Called by the runtime before Main when named in DOTNET_STARTUP_HOOKS; does nothing otherwise.</summary>
    public static void Initialize()
    {
        string? probe = Environment.GetEnvironmentVariable(ChildProbe.ProbeVariable);
        if (probe is null)
        {
            return;
        }

        int exitCode;
        try
        {
            exitCode = probe switch
            {
                "disasm" => ChildProbe.RunOwnerFastPathForDisasm(),
                "protocol" => ChildProbe.RunProtocol(),
                "object-disasm" => Numalloc.Tests.Objects.ObjectFastPathDisassemblyTests.CompileFastPaths(),
                "shared-config" => NumaAllocatorTests.RunSharedFromEnvironment(),
                "abort-bad-free" => Numalloc.Tests.Objects.ObjectBadFreeTests.RunAbortOnBadFree(),
                _ => 3,
            };
        }
#pragma warning disable CA1031 // the child reports any failure through its exit code and output
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.WriteLine(e);
            exitCode = 2;
        }

        Console.Out.Flush();
        Environment.Exit(exitCode);
    }
}

namespace Numalloc.Tests.Caches
{
    /// <summary>Starts child processes running <see cref="StartupHook"/> probes, and the probes themselves.</summary>
    internal static unsafe class ChildProbe
    {
        internal const string ProbeVariable = "NUMALLOC_PROBE";

        /// <summary>Runs this test assembly as a child app with the probe and extra environment; returns (exit code, output).</summary>
        internal static (int ExitCode, string Output) Run(string probe, IDictionary<string, string> environment, int timeoutMs = 120_000)
        {
            string testAssembly = typeof(ChildProbe).Assembly.Location;
            string host = Environment.ProcessPath is string path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
            var start = new ProcessStartInfo(host)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(testAssembly);
            start.Environment[ProbeVariable] = probe;
            start.Environment["DOTNET_STARTUP_HOOKS"] = testAssembly;
            foreach ((string key, string value) in environment)
            {
                start.Environment[key] = value;
            }

            using Process child = Process.Start(start)!;
            Task<string> stdout = child.StandardOutput.ReadToEndAsync();
            Task<string> stderr = child.StandardError.ReadToEndAsync();
            if (!child.WaitForExit(timeoutMs))
            {
                child.Kill(entireProcessTree: true);
                return (-1, "child timed out");
            }

            child.WaitForExit();
            return (child.ExitCode, stdout.Result + stderr.Result);
        }

        /// <summary>Compiles (tier-0 off: fully optimized at once) and runs the owner's entry and exit.</summary>
        internal static int RunOwnerFastPathForDisasm()
        {
            // Initialize the classes first, so the JIT sees the static readonlys as constants and folds
            // them (MagazineSet.MustFence tests RuntimeFeature's, then MembarrierSupport's).
            Console.WriteLine($"OwnerNeedsFence={MembarrierSupport.OwnerNeedsFence}");
            RuntimeHelpers.RunClassConstructor(typeof(RuntimeFeature).TypeHandle);
            nuint bytes = MagazineSet.SizeBytes(1, 4);
            var set = (MagazineSet*)NativeMemory.AlignedAlloc(bytes, 64);
            NativeMemory.Clear(set, bytes);
            // Through function pointers: each method is compiled on its own, not inlined into this one.
            delegate*<MagazineSet*, bool> enterOutermost = &MagazineSet.EnterOutermost;
            delegate*<MagazineSet*, bool> enter = &MagazineSet.Enter;
            delegate*<MagazineSet*, void> exitOutermost = &MagazineSet.ExitOutermost;
            for (int i = 0; i < 2; i++)
            {
                enterOutermost(set);
                exitOutermost(set);
                enter(set);
                exitOutermost(set);
            }

            NativeMemory.AlignedFree(set);
            return 0;
        }

        /// <summary>A short run of the stress protocol (owners, requesters, exact reconciliation).</summary>
        internal static int RunProtocol()
        {
            Console.WriteLine($"OwnerNeedsFence={MembarrierSupport.OwnerNeedsFence}");
            using var rig = new CacheRig(kinds: 2, itemsPerKind: 2048, magazineCapacity: 16);
            // What the ahead-of-time fast paths test instead of the static (MagazineSet.MustFence).
            Console.WriteLine($"set OwnerNeedsFence={rig.Registry.Current->OwnerNeedsFence}");
            MagazineStressTests.RunStress(rig, CancellationToken.None, out string report, ownerIterations: 20_000, minDrains: 50);
            Console.WriteLine(report);
            return 0;
        }
    }
}
