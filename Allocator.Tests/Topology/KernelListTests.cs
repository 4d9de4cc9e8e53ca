using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

public class KernelListTests
{
    [TestCase("0", new[] { 0 })]
    [TestCase("0-3,8-11\n", new[] { 0, 1, 2, 3, 8, 9, 10, 11 })]
    [TestCase("5,1-2", new[] { 1, 2, 5 })]
    [TestCase("7-7", new[] { 7 })]
    public void Parse_KernelListFormat_ReturnsAscendingIds(string text, int[] expected) =>
        Assert.That(KernelList.Parse(text), Is.EqualTo(expected));

    [TestCase("")]
    [TestCase("\n")]
    public void Parse_EmptyList_ReturnsNoIds(string text) =>
        Assert.That(KernelList.Parse(text), Is.Empty);

    [TestCase("3-1")]
    [TestCase("a")]
    [TestCase("1-")]
    [TestCase(",,")]
    [TestCase("0,")]
    [TestCase("-1")]
    [TestCase("0-99999999")]
    [TestCase("1 2")]
    public void Parse_MalformedList_ThrowsFormatExceptionNamingTheText(string text)
    {
        var ex = Assert.Throws<FormatException>(() => KernelList.Parse(text));
        Assert.That(ex!.Message, Does.Contain($"'{text}'"));
    }

    [Test]
    public void Format_WritesRunsTheWayTheKernelDoes() =>
        Assert.That(KernelList.Format([8, 0, 1, 2, 3, 10, 11]), Is.EqualTo("0-3,8,10-11"));
}
