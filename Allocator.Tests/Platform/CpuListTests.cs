using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
public class CpuListTests
{
    [TestCase("0", new[] { 0 })]
    [TestCase("0-3", new[] { 0, 1, 2, 3 })]
    [TestCase("0-3,8-11", new[] { 0, 1, 2, 3, 8, 9, 10, 11 })]
    [TestCase("0,2,4", new[] { 0, 2, 4 })]
    [TestCase("0-1\n", new[] { 0, 1 })]
    [TestCase("  5 \n", new[] { 5 })]
    [TestCase("4,0-1,1", new[] { 0, 1, 4 })]
    public void Parse_OfKernelCpulist_GivesAscendingDistinctIds(string text, int[] expected)
    {
        Assert.That(CpuList.Parse(text), Is.EqualTo(expected));
    }

    [TestCase("")]
    [TestCase("\n")]
    [TestCase("   ")]
    public void Parse_OfEmptyList_GivesEmptyArray(string text)
    {
        Assert.That(CpuList.Parse(text), Is.Empty);
    }

    [TestCase("3-1", "runs backwards")]
    [TestCase("a", "'a' is not a digit")]
    [TestCase("1-", "missing")]
    [TestCase(",", "missing")]
    [TestCase("0,,2", "missing")]
    [TestCase("-1", "missing")]
    [TestCase("0-3:2", "not a digit")]
    [TestCase("0 - 3", "not a digit")]
    [TestCase("99999999", "exceeds")]
    public void Parse_OfMalformedList_ThrowsFormatExceptionSayingWhy(string text, string reason)
    {
        Assert.That(
            () => CpuList.Parse(text),
            Throws.TypeOf<FormatException>().With.Message.Contains(reason).And.Message.Contains(text.Trim()));
    }

    [TestCase("0-3", 4)]
    [TestCase("0-7,16-23", 24)]
    [TestCase("0\n", 1)]
    [TestCase("", 0)]
    public void HighestIdPlusOne_IsTheSizeOfATableIndexedByTheIds(string text, int expected)
    {
        Assert.That(CpuList.HighestIdPlusOne(text), Is.EqualTo(expected));
    }

    [Test]
    public void Format_WritesRunsTheWayTheKernelDoes() =>
        Assert.That(CpuList.Format([8, 0, 1, 2, 3, 10, 11]), Is.EqualTo("0-3,8,10-11"));

    [Test]
    public void Format_ThenParse_RoundTrips() =>
        Assert.That(CpuList.Parse(CpuList.Format([5, 1, 2, 3, 9])), Is.EqualTo(new[] { 1, 2, 3, 5, 9 }));
}
