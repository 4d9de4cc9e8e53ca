using System.Diagnostics;

namespace Numalloc.Tests.Ctl;

/// <summary>ctl and drill --attach as separate processes against a live server process (Allocator.Bench serve).</summary>
[NonParallelizable, Category("Stress")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CtlProcessTests
{
    private static readonly string s_bench = Path.Combine(AppContext.BaseDirectory, "Allocator.Bench.dll");

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(s_bench);
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    private static (int Exit, string Output) Run(params string[] args)
    {
        using Process process = Start(args);
        process.StandardInput.Close();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.That(process.WaitForExit(120_000), Is.True, $"{string.Join(' ', args)} did not finish");
        return (process.ExitCode, output + stderr.Result);
    }

    [Test, CancelAfter(300_000)]
    public void Ctl_AgainstALiveServerProcess_OfflinesAndOnlinesAMovableZone_WithMatchingExitCodes()
    {
        string dir = Directory.CreateTempSubdirectory("numalloc-serve-").FullName;
        string socket = Path.Combine(dir, "admin.sock");
        using Process server = Start("serve", "--socket", socket, "--nodes", "3");
        try
        {
            string? first = server.StandardOutput.ReadLine();
            Assert.That(first, Does.StartWith("serving "), server.HasExited ? server.StandardError.ReadToEnd() : first);

            (int exit, string output) = Run("ctl", "--socket", socket, "offline", "zone", "2", "movable", "--timeout", "10000");
            Assert.That(exit, Is.Zero, output);
            Assert.That(output, Does.Contain("offline zone 2 movable: ok"));

            (exit, output) = Run("ctl", "--socket", socket, "offline", "zone", "2", "movable");
            Assert.That(exit, Is.EqualTo(6), "invalid: the zone is offline already; " + output);

            (exit, output) = Run("ctl", "--socket", socket, "blocks");
            Assert.That(exit, Is.Zero, output);
            Assert.That(output, Does.Match(@"\s2\s+movable\s+offline"));

            (exit, output) = Run("ctl", "--socket", socket, "online", "zone", "2", "movable");
            Assert.That(exit, Is.Zero, output);

            (exit, output) = Run("ctl", "--socket", socket, "offline", "node", "9");
            Assert.That(exit, Is.EqualTo(6), "unknown node: " + output);

            // The drill's scripted scenario against the same process (its workload is the server's own).
            string scenario = Path.Combine(dir, "scenario.txt");
            File.WriteAllText(scenario, "steady 300ms\noffline zone 1 movable\nonline zone 1 movable\nsteady 300ms\n");
            (exit, output) = Run("drill", "--attach", socket, "--scenario", scenario, "--report", Path.Combine(dir, "report.html"), "--plain");
            Assert.That(exit, Is.Zero, output);
            Assert.That(output, Does.Contain("step 2: offline zone 1 movable -> ok").And.Contain("drill: PASSED"));
        }
        finally
        {
            server.StandardInput.Close();
            if (!server.WaitForExit(60_000))
                server.Kill();
            Directory.Delete(dir, recursive: true);
        }
        Assert.That(server.ExitCode, Is.Zero, "the server process ended cleanly");
    }
}
