using System.Xml.Linq;
using Numalloc.Bench.Drill;

namespace Numalloc.Tests.Drill;

public sealed class DrillReportTests
{
    private static DrillReport Report(long spurious = 0, string busyResult = "busy", params string[] mismatches) => new(
        "sim:4, 3 threads, seed 1",
        [
            new DrillStepReport(1, "steady", TimeSpan.Zero, TimeSpan.FromSeconds(1)) { OpsPerSecond = 2_500_000, P50Ns = 40, P99Ns = 900, P999Ns = 12_000 },
            new DrillStepReport(2, "offline zone 3 movable", TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(0.5)) { Hotplug = true, PagesMigrated = 4096, DrainsRemote = 3, DrainsByOwner = 1, DrainsCoalesced = 2, SpuriousFailures = spurious },
            new DrillStepReport(3, "offline zone 1 normal expect=busy", TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(0.2)) { Hotplug = true, Result = busyResult, Expected = "busy", Detail = "12 pages in use" },
        ],
        [new(0.5, 2_400_000), new(1.0, 2_600_000), new(1.5, 1_900_000), new(2.0, 2_500_000)],
        mismatches);

    [Test]
    public void WriteTable_HasARowPerStepAndAPassingVerdict()
    {
        var writer = new StringWriter();
        Report().WriteTable(writer);
        string text = writer.ToString();

        Assert.Multiple(() =>
        {
            Assert.That(text, Does.Contain("offline zone 3 movable"));
            Assert.That(text, Does.Contain("busy (12 pages in use)"));
            Assert.That(text, Does.Contain("2.50M"));
            Assert.That(text, Does.Contain("12.0us"));
            Assert.That(text, Does.Contain("3/1/2"));
            Assert.That(text, Does.EndWith("drill: PASSED" + Environment.NewLine));
        });
    }

    [Test]
    public void SpuriousFailure_FailsTheDrill()
    {
        var report = Report(spurious: 1);
        Assert.That(report.Passed, Is.False);
        Assert.That(report.ExitCode, Is.EqualTo(1));
    }

    [Test]
    public void ChecksumMismatch_FailsTheDrillAndIsNamed()
    {
        var report = Report(0, "busy", "buffer #17 (movable, 4096 B) at step 2");
        var writer = new StringWriter();
        report.WriteTable(writer);

        Assert.That(report.ExitCode, Is.EqualTo(1));
        Assert.That(writer.ToString(), Does.Contain("checksum mismatch: buffer #17 (movable, 4096 B) at step 2"));
    }

    [Test]
    public void StepEndingOtherThanExpected_FailsTheDrill()
    {
        var report = Report(0, "ok");
        var writer = new StringWriter();
        report.WriteTable(writer);

        Assert.That(report.Passed, Is.False);
        Assert.That(writer.ToString(), Does.Contain("step 3 'offline zone 1 normal expect=busy' ended ok, expected busy"));
    }

    [Test]
    public void Html_IsSelfContainedAndMarksHotplugSteps()
    {
        string html = Report().ToHtml();
        string svg = Report().ChartSvg();
        var chart = XElement.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";

        Assert.Multiple(() =>
        {
            Assert.That(html.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal), Does.Not.Contain("http"), "no fetches");
            Assert.That(html, Does.Contain("<svg").And.Contain("<table>"));
            Assert.That(chart.Elements(ns + "line").Count(), Is.EqualTo(2), "one marker per hotplug step");
            Assert.That(chart.Element(ns + "polyline")!.Attribute("points")!.Value.Trim().Split(' '), Has.Length.EqualTo(4));
        });
    }

    [Test]
    public void Html_EscapesStepText()
    {
        var report = new DrillReport("<x>", [new DrillStepReport(1, "steady <&>", TimeSpan.Zero, TimeSpan.FromSeconds(1))], [], []);
        Assert.That(report.ToHtml(), Does.Contain("steady &lt;&amp;&gt;").And.Not.Contain("<x>"));
    }
}
