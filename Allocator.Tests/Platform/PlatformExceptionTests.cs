using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
public class PlatformExceptionTests
{
    [Test]
    public void FromErrno_NamesTheCallItsArgumentsAndTheErrno()
    {
        var exception = PlatformException.FromErrno("mbind", "0x7f0000000000, 4096, node 5, Preferred", 22);

        Assert.That(exception.Message, Is.EqualTo("mbind(0x7f0000000000, 4096, node 5, Preferred) failed: EINVAL (22)"));
        Assert.That(exception.CallName, Is.EqualTo("mbind"));
        Assert.That(exception.ErrorCode, Is.EqualTo(22));
        Assert.That(exception.IsWin32Error, Is.False);
    }

    [Test]
    public void FromErrno_WithUnnamedErrno_StillGivesTheNumber()
    {
        var exception = PlatformException.FromErrno("mmap", "NULL, 4096", 1234);

        Assert.That(exception.Message, Does.EndWith("failed: errno (1234)"));
    }

    [Test]
    public void FromWin32Error_SaysItIsAWin32Error()
    {
        var exception = PlatformException.FromWin32Error("VirtualAllocExNuma", "0x10000, 65536, node 1, Preferred", 87);

        Assert.That(exception.Message, Is.EqualTo("VirtualAllocExNuma(0x10000, 65536, node 1, Preferred) failed: Win32 error 87"));
        Assert.That(exception.IsWin32Error, Is.True);
        Assert.That(exception.ErrorCode, Is.EqualTo(87));
    }
}
