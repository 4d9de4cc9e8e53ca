using System.Globalization;
using System.Xml.Linq;
using Numalloc.Bench.Benchmarks;

namespace Numalloc.Tests.Bench;

public sealed class ScalingPlotTests
{
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    [Test]
    public void Build_TurnsTimePerInvocationIntoTotalOperationsPerSecond()
    {
        // 2 threads x 16 384 operations in 1 ms.
        IReadOnlyList<ScalingSeries> series = ScalingReport.Build(
            [new ScalingMeasurement(nameof(MultiThreadBenchmarks), nameof(MultiThreadBenchmarks.ChurnNumaAllocator), 2, 1_000_000)]);

        Assert.That(series, Has.Count.EqualTo(1));
        Assert.Multiple(() =>
        {
            Assert.That(series[0].Workload, Is.EqualTo("private churn"));
            Assert.That(series[0].Allocator, Is.EqualTo("NumaAllocator"));
            Assert.That(series[0].Points, Is.EqualTo(new[] { new ScalingPoint(2, 2.0 * ThroughputWorkloads.OpsPerThread / 1e-3) }));
        });
    }

    [Test]
    public void Build_GroupsByWorkloadAndAllocatorSortsByThreadsAndSkipsOtherBenchmarks()
    {
        IReadOnlyList<ScalingSeries> series = ScalingReport.Build(
        [
            new(nameof(ObjectScalingBenchmarks), nameof(ObjectScalingBenchmarks.AllocateFree), 2, 80_000_000),
            new(nameof(ObjectScalingBenchmarks), nameof(ObjectScalingBenchmarks.NoAllocation), 1, 4_000_000),
            new(nameof(ObjectScalingBenchmarks), nameof(ObjectScalingBenchmarks.AllocateFree), 1, 40_000_000),
            new(nameof(ObjectBenchmarks), nameof(ObjectBenchmarks.NumaAllocatorPair), 1, 20),
        ]);

        Assert.That(series.Select(s => (s.Workload, s.Allocator)), Is.EqualTo(new[] { ("64 B pairs", "NumaAllocator"), ("64 B pairs", "loop without allocation") }));
        Assert.That(series[0].Points.Select(p => p.Threads), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(series[0].Points[0].OpsPerSecond, Is.EqualTo(ObjectScalingBenchmarks.PairsPerThread / 0.04).Within(1e-6));
    }

    [Test]
    public void ToSvg_IsXmlWithAPanelPerWorkloadAndALinePerAllocator()
    {
        XDocument svg = XDocument.Parse(ScalingPlot.ToSvg(SampleSeries(), "scaling <test> & more"));

        XElement[] panels = svg.Root!.Elements(s_svg + "g").Where(g => (string?)g.Attribute("class") == "panel").ToArray();
        Assert.That(panels.Select(p => (string?)p.Attribute("data-workload")), Is.EqualTo(new[] { "larson", "producer/consumer" }));
        foreach (XElement panel in panels)
        {
            string[] lines = panel.Elements(s_svg + "polyline").Select(l => (string)l.Attribute("data-allocator")!).ToArray();
            Assert.That(lines, Is.EquivalentTo(new[] { "NativeMemory", "ArrayPool<byte>" }), (string?)panel.Attribute("data-workload"));
        }
        Assert.That(svg.Root.Value, Does.Contain("scaling <test> & more"));
    }

    [Test]
    public void ToSvg_PlacesPointsOnTheAxes()
    {
        XDocument svg = XDocument.Parse(ScalingPlot.ToSvg(SampleSeries(), "t"));
        XElement larson = svg.Root!.Elements(s_svg + "g").First(g => (string?)g.Attribute("data-workload") == "larson");
        (double X, double Y) At(string allocator, int threads)
        {
            XElement point = larson.Elements(s_svg + "circle").Single(c =>
                (string?)c.Attribute("data-allocator") == allocator && (string?)c.Attribute("data-threads") == threads.ToString(CultureInfo.InvariantCulture));
            return (double.Parse((string)point.Attribute("cx")!, CultureInfo.InvariantCulture), double.Parse((string)point.Attribute("cy")!, CultureInfo.InvariantCulture));
        }

        // The larson panel peaks at 20 Mops/s (a "nice" top of 20): threads 1..4 span the plot's width.
        Assert.Multiple(() =>
        {
            Assert.That(At("NativeMemory", 1).X, Is.EqualTo(ScalingPlot.PlotLeft).Within(0.01));
            Assert.That(At("NativeMemory", 4).X, Is.EqualTo(ScalingPlot.PlotLeft + ScalingPlot.PlotWidth).Within(0.01));
            Assert.That(At("NativeMemory", 4).Y, Is.EqualTo(ScalingPlot.PlotTop).Within(0.01));
            Assert.That(At("NativeMemory", 1).Y, Is.EqualTo(ScalingPlot.PlotTop + (ScalingPlot.PlotHeight * 0.75)).Within(0.01));
            Assert.That(At("ArrayPool<byte>", 2).Y, Is.EqualTo(ScalingPlot.PlotTop + (ScalingPlot.PlotHeight / 2)).Within(0.01));
        });
    }

    [TestCase(0, 1)]
    [TestCase(0.7, 1)]
    [TestCase(1, 1)]
    [TestCase(1.2, 2)]
    [TestCase(3, 5)]
    [TestCase(20, 20)]
    [TestCase(51, 100)]
    public void NiceCeiling_IsTheNextOneTwoOrFiveTimesAPowerOfTen(double value, double expected)
    {
        Assert.That(ScalingPlot.NiceCeiling(value), Is.EqualTo(expected).Within(1e-9));
    }

    private static ScalingSeries[] SampleSeries() =>
    [
        new("larson", "NativeMemory", [new(1, 5e6), new(2, 10e6), new(4, 20e6)]),
        new("larson", "ArrayPool<byte>", [new(1, 6e6), new(2, 10e6)]),
        new("producer/consumer", "NativeMemory", [new(1, 1e6), new(2, 1.5e6)]),
        new("producer/consumer", "ArrayPool<byte>", [new(1, 2e6), new(2, 3e6)]),
    ];
}
