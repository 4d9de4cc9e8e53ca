using Numalloc.Bench.Drill;

namespace Numalloc.Tests.Drill;

public sealed class LatencyHistogramTests
{
    [Test]
    public void Percentiles_AreWithinOneSixteenthOfTheTrueValue()
    {
        var histogram = new LatencyHistogram();
        for (int i = 1; i <= 100_000; i++)
            histogram.Record(i);

        Assert.Multiple(() =>
        {
            Assert.That(histogram.Count, Is.EqualTo(100_000));
            Assert.That(histogram.Percentile(50), Is.InRange(50_000, 50_000 * 17 / 16));
            Assert.That(histogram.Percentile(99), Is.InRange(99_000, 99_000 * 17 / 16));
            Assert.That(histogram.Percentile(99.9), Is.InRange(99_900, 100_000));
            Assert.That(histogram.Percentile(100), Is.EqualTo(100_000));
        });
    }

    [Test]
    public void SmallValuesAreExact_AndMergeAddsCounts()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        for (int i = 0; i < 10; i++)
            a.Record(3);
        for (int i = 0; i < 10; i++)
            b.Record(7);
        a.Add(b);

        Assert.Multiple(() =>
        {
            Assert.That(a.Count, Is.EqualTo(20));
            Assert.That(a.Percentile(50), Is.EqualTo(3));
            Assert.That(a.Percentile(51), Is.EqualTo(7));
            Assert.That(new LatencyHistogram().Percentile(99), Is.Zero);
        });
    }

    [Test]
    public void Buckets_AreMonotonicAndCoverEveryValue()
    {
        long[] values = [0, 15, 16, 17, 31, 32, 1000, 123_456_789, long.MaxValue];
        int previous = -1;
        foreach (long value in values)
        {
            int bucket = LatencyHistogram.BucketOf(value);
            Assert.That(bucket, Is.GreaterThanOrEqualTo(previous));
            Assert.That(LatencyHistogram.UpperBoundOf(bucket), Is.GreaterThanOrEqualTo(value));
            previous = bucket;
        }
    }
}

public sealed class DrillOptionsTests
{
    [Test]
    public void Defaults_WorkWithNoOptions()
    {
        var options = DrillOptions.Parse([]);
        Assert.Multiple(() =>
        {
            Assert.That(options.Nodes, Is.EqualTo(4));
            Assert.That(options.Threads, Is.EqualTo(Environment.ProcessorCount + 1));
            Assert.That(options.ScenarioPath, Is.Null);
        });
    }

    [Test]
    public void Parse_ReadsEveryOption()
    {
        var options = DrillOptions.Parse(["--duration", "3s", "--nodes", "6", "--threads", "2", "--sizes", "16-256,40000-80000",
            "--scenario", "s.txt", "--seed", "9", "--report", "r.html", "--plain", "--attach", "/tmp/s"]);
        Assert.That(options, Is.EqualTo(new DrillOptions
        {
            Duration = TimeSpan.FromSeconds(3), Nodes = 6, Threads = 2, SmallMin = 16, SmallMax = 256, LargeMin = 40000, LargeMax = 80000,
            ScenarioPath = "s.txt", Seed = 9, ReportPath = "r.html", Plain = true, AttachSocket = "/tmp/s",
        }));
    }

    [TestCase("--nodes", "1", "--nodes must be a number from 2")]
    [TestCase("--threads", "0", "--threads must be a number from 1")]
    [TestCase("--sizes", "64-8", "size range '64-8'")]
    [TestCase("--sizes", "8-40000", "within 1..32768")]
    [TestCase("--bogus", "1", "unknown option '--bogus'")]
    public void Parse_RejectsBadValues(string name, string value, string reason)
    {
        var error = Assert.Throws<FormatException>(() => DrillOptions.Parse([name, value]));
        Assert.That(error!.Message, Does.Contain(reason));
    }

    [Test]
    public void Parse_RejectsAMissingValue() =>
        Assert.That(() => DrillOptions.Parse(["--seed"]), Throws.TypeOf<FormatException>().With.Message.Contains("--seed needs a value"));
}

public sealed class DrillProgressTests
{
    [Test]
    public void Plain_WritesLinesWithoutEscapes_AndThrottlesWithinAStep()
    {
        var writer = new StringWriter();
        var progress = new DrillProgress(writer, interactive: false, TimeSpan.FromHours(1));
        var state = new DrillProgressState(2, 7, "offline zone 3 movable", 50, 200, 1_000_000, 0);
        progress.Update(state);
        progress.Update(state with { PagesMigrated = 100 });
        progress.Update(state with { StepNumber = 3, Step = "online all", PagesToMigrate = 0 });

        string[] lines = writer.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "[2/7] offline zone 3 movable  migrated 50/200 pages  1.00M alloc/s  failures 0",
            "[3/7] online all  1.00M alloc/s  failures 0",
        }));
    }

    [Test]
    public void Interactive_RedrawsOneLineWithABar()
    {
        var writer = new StringWriter();
        var progress = new DrillProgress(writer, interactive: true, TimeSpan.Zero);
        progress.Update(new DrillProgressState(2, 7, "offline", 150, 200, 10, 1));
        progress.StepDone(new DrillStepReport(2, "offline", TimeSpan.Zero, TimeSpan.FromSeconds(1)));

        string text = writer.ToString();
        Assert.Multiple(() =>
        {
            Assert.That(text, Does.StartWith("\r\u001b[2K[2/7] offline  [###############.....] 150/200 pages"));
            Assert.That(text, Does.Contain("step 2: offline -> ok in 1.00s"));
        });
    }
}
