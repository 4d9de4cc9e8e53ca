using Numalloc.Bench.Drill;

namespace Numalloc.Tests.Drill;

/// <summary>The drill as an operator runs it: the default scenario against the in-process simulated heap, in a short mode.</summary>
[NonParallelizable, Category("Stress")]
public sealed class DrillEndToEndTests
{
    [Test, CancelAfter(300_000)]
    public void DefaultScenario_ShortMode_PassesWithABusyStepAndWritesTheReport()
    {
        string report = Path.Combine(Path.GetTempPath(), $"numalloc-drill-{Environment.ProcessId}.html");
        var output = new StringWriter();
        try
        {
            int exit = DrillCommand.Run(["--duration", "3s", "--threads", "3", "--report", report, "--plain"],
                options => new InProcessDrillTarget(options), output, TextWriter.Null);

            string text = output.ToString();
            Assert.Multiple(() =>
            {
                Assert.That(exit, Is.Zero, text);
                Assert.That(File.Exists(report), Is.True);
                Assert.That(File.ReadAllText(report), Does.Contain("<svg").And.Contain("drill: PASSED"));
                Assert.That(text, Does.Match(@"step 5: offline zone 1 normal expect=busy -> busy \(\d+ unmovable pages in use\)"), "the Busy step really returned Busy");
                Assert.That(text, Does.Match(@"step 4: offline block last -> ok"));
                Assert.That(text, Does.Contain("spurious failures: 0, checksum mismatches: 0, steps not as expected: 0"));
            });
        }
        finally
        {
            File.Delete(report);
        }
    }

    [Test, CancelAfter(300_000)]
    public void CorruptedBuffer_FailsTheDrillAndNamesIt()
    {
        var options = DrillOptions.Parse(["--duration", "1s", "--threads", "2"]);
        using var target = new InProcessDrillTarget(options);
        var runner = new DrillRunner(options, DrillScenario.Parse("steady 500ms\noffline zone 1 movable\nonline zone 1 movable\nsteady 300ms"), target,
            new DrillProgress(TextWriter.Null, false, TimeSpan.Zero))
        {
            OnWorkloadStarted = workload => workload.CorruptOneObject(),
        };

        DrillReport report = runner.Run();

        Assert.That(report.ExitCode, Is.EqualTo(1));
        Assert.That(report.ChecksumMismatches, Has.Count.EqualTo(1));
        Assert.That(report.ChecksumMismatches[0], Does.Match(@"^(movable buffer|small allocation|large allocation) #\d+ \(\d+ B, allocated by worker \d\)"));
    }
}
