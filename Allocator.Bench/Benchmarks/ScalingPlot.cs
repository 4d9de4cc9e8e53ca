using System.Globalization;
using System.Xml;

namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Draws throughput against threads as SVG: one panel per workload, one line per allocator (the same
/// colour in every panel), a shared legend. Each point carries its data as attributes, so the plot can
/// be checked without rendering it.
/// </summary>
internal static class ScalingPlot
{
    /// <summary>Left edge of a panel's plot area, from the panel's left edge.</summary>
    public const double PlotLeft = 60;

    /// <summary>Top of a panel's plot area, from the top of the image.</summary>
    public const double PlotTop = 50;

    /// <summary>Width of a panel's plot area.</summary>
    public const double PlotWidth = 260;

    /// <summary>Height of a panel's plot area.</summary>
    public const double PlotHeight = 200;

    /// <summary>Width of one panel: its plot area and margins.</summary>
    public const double PanelWidth = PlotLeft + PlotWidth + 30;

    private const double LegendRowHeight = 18;

    private static readonly string[] s_colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

    /// <summary>The SVG document for <paramref name="series"/> under <paramref name="title"/>.</summary>
    public static string ToSvg(IReadOnlyList<ScalingSeries> series, string title)
    {
        string[] workloads = series.Select(s => s.Workload).Distinct().ToArray();
        string[] allocators = series.Select(s => s.Allocator).Distinct().ToArray();
        double width = Math.Max(1, workloads.Length) * PanelWidth;
        double legendTop = PlotTop + PlotHeight + 45;
        double height = legendTop + (allocators.Length * LegendRowHeight) + 10;

        var text = new StringWriter(CultureInfo.InvariantCulture);
        using (var xml = XmlWriter.Create(text, new XmlWriterSettings { Indent = true, OmitXmlDeclaration = true }))
        {
            xml.WriteStartElement("svg", "http://www.w3.org/2000/svg");
            xml.WriteAttributeString("width", Num(width));
            xml.WriteAttributeString("height", Num(height));
            xml.WriteAttributeString("viewBox", $"0 0 {Num(width)} {Num(height)}");
            xml.WriteAttributeString("font-family", "sans-serif");
            xml.WriteAttributeString("font-size", "12");
            Rect(xml, 0, 0, width, height, "white");
            Text(xml, 10, 20, title, "start", bold: true);

            for (int w = 0; w < workloads.Length; w++)
                Panel(xml, w * PanelWidth, workloads[w], series.Where(s => s.Workload == workloads[w]).ToArray(), allocators);

            for (int a = 0; a < allocators.Length; a++)
            {
                double y = legendTop + (a * LegendRowHeight);
                Rect(xml, PlotLeft, y - 9, 12, 12, s_colours[a % s_colours.Length]);
                Text(xml, PlotLeft + 18, y + 1, allocators[a], "start");
            }
            xml.WriteEndElement();
        }
        return text.ToString();
    }

    /// <summary>The smallest 1, 2 or 5 times a power of ten at or above <paramref name="value"/> (1 for nothing positive): the y axis' top.</summary>
    public static double NiceCeiling(double value)
    {
        if (!(value > 0))
            return 1;
        double power = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (double step in (ReadOnlySpan<double>)[1, 2, 5, 10])
        {
            if (step * power >= value * (1 - 1e-12))
                return step * power;
        }
        return 10 * power;
    }

    /// <summary>The x of <paramref name="threads"/> inside a panel whose axis runs from <paramref name="minThreads"/> to <paramref name="maxThreads"/>.</summary>
    public static double X(double panelLeft, int threads, int minThreads, int maxThreads) =>
        panelLeft + PlotLeft + (maxThreads == minThreads ? PlotWidth / 2 : PlotWidth * (threads - minThreads) / (maxThreads - minThreads));

    /// <summary>The y of <paramref name="value"/> on an axis from 0 to <paramref name="top"/>.</summary>
    public static double Y(double value, double top) => PlotTop + (PlotHeight * (1 - (value / top)));

    private static void Panel(XmlWriter xml, double left, string workload, ScalingSeries[] series, string[] allocators)
    {
        int[] threads = series.SelectMany(s => s.Points).Select(p => p.Threads).Distinct().Order().ToArray();
        if (threads.Length == 0)
            return;
        int minThreads = threads[0], maxThreads = threads[^1];
        double top = NiceCeiling(series.SelectMany(s => s.Points).Max(p => p.OpsPerSecond) / 1e6);

        xml.WriteStartElement("g");
        xml.WriteAttributeString("class", "panel");
        xml.WriteAttributeString("data-workload", workload);
        Text(xml, left + PlotLeft + (PlotWidth / 2), PlotTop - 12, workload, "middle", bold: true);
        for (int i = 0; i <= 4; i++)
        {
            double value = top * i / 4;
            double y = Y(value, top);
            Line(xml, left + PlotLeft, y, left + PlotLeft + PlotWidth, y, "#dddddd");
            Text(xml, left + PlotLeft - 6, y + 4, value.ToString("G3", CultureInfo.InvariantCulture), "end");
        }
        // Axes after the grid, so the grid's bottom line does not cover the x axis.
        Line(xml, left + PlotLeft, PlotTop + PlotHeight, left + PlotLeft + PlotWidth, PlotTop + PlotHeight, "black");
        Line(xml, left + PlotLeft, PlotTop, left + PlotLeft, PlotTop + PlotHeight, "black");
        foreach (int t in threads)
            Text(xml, X(left, t, minThreads, maxThreads), PlotTop + PlotHeight + 16, t.ToString(CultureInfo.InvariantCulture), "middle");
        Text(xml, left + PlotLeft + (PlotWidth / 2), PlotTop + PlotHeight + 32, "threads", "middle");
        Text(xml, left + 14, PlotTop + (PlotHeight / 2), "Mops/s, all threads", "middle", rotate: true);

        foreach (ScalingSeries s in series)
        {
            string colour = s_colours[Array.IndexOf(allocators, s.Allocator) % s_colours.Length];
            xml.WriteStartElement("polyline");
            xml.WriteAttributeString("class", "series");
            xml.WriteAttributeString("data-allocator", s.Allocator);
            xml.WriteAttributeString("fill", "none");
            xml.WriteAttributeString("stroke", colour);
            xml.WriteAttributeString("stroke-width", "2");
            xml.WriteAttributeString("points", string.Join(" ", s.Points.Select(p => $"{Num(X(left, p.Threads, minThreads, maxThreads))},{Num(Y(p.OpsPerSecond / 1e6, top))}")));
            xml.WriteEndElement();
            foreach (ScalingPoint p in s.Points)
            {
                xml.WriteStartElement("circle");
                xml.WriteAttributeString("class", "point");
                xml.WriteAttributeString("data-allocator", s.Allocator);
                xml.WriteAttributeString("data-threads", p.Threads.ToString(CultureInfo.InvariantCulture));
                xml.WriteAttributeString("data-ops-per-second", p.OpsPerSecond.ToString("R", CultureInfo.InvariantCulture));
                xml.WriteAttributeString("cx", Num(X(left, p.Threads, minThreads, maxThreads)));
                xml.WriteAttributeString("cy", Num(Y(p.OpsPerSecond / 1e6, top)));
                xml.WriteAttributeString("r", "3");
                xml.WriteAttributeString("fill", colour);
                xml.WriteEndElement();
            }
        }
        xml.WriteEndElement();
    }

    private static void Rect(XmlWriter xml, double x, double y, double width, double height, string fill)
    {
        xml.WriteStartElement("rect");
        xml.WriteAttributeString("x", Num(x));
        xml.WriteAttributeString("y", Num(y));
        xml.WriteAttributeString("width", Num(width));
        xml.WriteAttributeString("height", Num(height));
        xml.WriteAttributeString("fill", fill);
        xml.WriteEndElement();
    }

    private static void Line(XmlWriter xml, double x1, double y1, double x2, double y2, string stroke)
    {
        xml.WriteStartElement("line");
        xml.WriteAttributeString("x1", Num(x1));
        xml.WriteAttributeString("y1", Num(y1));
        xml.WriteAttributeString("x2", Num(x2));
        xml.WriteAttributeString("y2", Num(y2));
        xml.WriteAttributeString("stroke", stroke);
        xml.WriteEndElement();
    }

    private static void Text(XmlWriter xml, double x, double y, string content, string anchor, bool bold = false, bool rotate = false)
    {
        xml.WriteStartElement("text");
        xml.WriteAttributeString("x", Num(x));
        xml.WriteAttributeString("y", Num(y));
        xml.WriteAttributeString("text-anchor", anchor);
        if (bold)
            xml.WriteAttributeString("font-weight", "bold");
        if (rotate)
            xml.WriteAttributeString("transform", $"rotate(-90 {Num(x)} {Num(y)})");
        xml.WriteString(content); // XmlWriter escapes '<' and '&' in names like ArrayPool<byte>
        xml.WriteEndElement();
    }

    private static string Num(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
