using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public unsafe class BindingTests
{
    private LinuxPlatform _platform = null!;
    private nuint _size;
    private byte* _range;

    [SetUp]
    public void SetUp()
    {
        _platform = new LinuxPlatform();
        _size = _platform.PageSize * 4;
        _range = (byte*)_platform.Reserve(_size, 0);
        _platform.Commit(_range, _size);
    }

    [TearDown]
    public void TearDown() => _platform.Release(_range, _size);

    // BindMode is internal, so the cases pass its value: 1 Preferred, 2 Strict.
    [TestCase(1)]
    [TestCase(2)]
    public void Bind_ToNodeZero_IsReadBackByGetMempolicy(int modeValue)
    {
        var mode = (BindMode)modeValue;
        _platform.Bind(_range, _size, 0, mode);

        Assert.That(_platform.TryQueryBinding(_range, out BindMode actualMode, out int node), Is.True);
        Assert.That(actualMode, Is.EqualTo(mode));
        Assert.That(node, Is.Zero);
    }

    [Test]
    public void TryQueryBinding_OfUnboundRange_ReturnsFalse()
    {
        Assert.That(_platform.TryQueryBinding(_range, out _, out int node), Is.False);
        Assert.That(node, Is.EqualTo(-1));
    }

    [TestCase(63, 1)]
    [TestCase(1000, 1)]
    [TestCase(63, 2)]
    [TestCase(5000, 2)]
    public void Bind_ToNodeThatDoesNotExist_ThrowsPlatformExceptionNamingMbindAndEinval(int node, int modeValue)
    {
        var mode = (BindMode)modeValue;
        var exception = Assert.Throws<PlatformException>(() => _platform.Bind(_range, _size, node, mode));

        Assert.That(exception!.CallName, Is.EqualTo("mbind"));
        Assert.That(exception.ErrorCode, Is.EqualTo(22));
        Assert.That(exception.IsWin32Error, Is.False);
        Assert.That(exception.IsInjected, Is.False);
        Assert.That(exception.Message, Does.StartWith($"mbind(0x{(nuint)_range:x}, {_size}, node {node}, {mode}) failed: EINVAL (22)"));
    }

    [Test]
    public void QueryNodeOfPages_ForUntouchedPage_ReportsMinusEnoent()
    {
        _range[0] = 1;
        nint[] pages = [(nint)_range, (nint)(_range + _platform.PageSize)];
        int[] nodes = new int[2];

        _platform.QueryNodeOfPages(pages, nodes);

        Assert.That(nodes, Is.EqualTo(new[] { 0, -2 }));
    }

    [Test]
    public void QueryNodeOfPages_WithShortOutput_ThrowsArgumentException()
    {
        nint[] pages = [(nint)_range, (nint)(_range + _platform.PageSize)];

        Assert.That(() => _platform.QueryNodeOfPages(pages, new int[1]), Throws.ArgumentException);
    }
}
