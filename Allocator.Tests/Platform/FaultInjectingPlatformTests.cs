using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public unsafe class FaultInjectingPlatformTests
{
    private FaultInjectingPlatform _platform = null!;
    private nuint _page;
    private byte* _range;
    private nuint _size;

    [SetUp]
    public void SetUp()
    {
        _platform = new FaultInjectingPlatform(new LinuxPlatform());
        _page = _platform.PageSize;
        _size = _page * 4;
        _range = (byte*)_platform.Reserve(_size, 0);
    }

    [TearDown]
    public void TearDown()
    {
        _platform.ClearFault(PlatformCall.Release);
        _platform.Release(_range, _size);
    }

    [Test]
    public void FailNth_OfCommit_FailsOnlyThatCommitWithAnInjectedEnomem()
    {
        _platform.FailNth(PlatformCall.Commit, 3);

        _platform.Commit(_range, _page);
        _platform.Commit(_range + _page, _page);
        var exception = Assert.Throws<PlatformException>(() => _platform.Commit(_range + (2 * _page), _page));
        _platform.Commit(_range + (3 * _page), _page);

        Assert.That(exception!.ErrorCode, Is.EqualTo(12));
        Assert.That(exception.IsInjected, Is.True);
        Assert.That(exception.CallName, Is.EqualTo("commit"));
        Assert.That(exception.Message, Does.Contain("ENOMEM (12)"));
        Assert.That(_platform.CallCount(PlatformCall.Commit), Is.EqualTo(4));
        Assert.That(
            ProcessMemory.ProtectionOfPages(_range, _size, _page),
            Is.EqualTo(new[] { "rw-p", "rw-p", "---p", "rw-p" }),
            "the failed commit did not reach the OS; the others did");
    }

    [Test]
    public void FailNth_OfBind_SurfacesThePlatformExceptionWithTheChosenErrno()
    {
        _platform.Commit(_range, _size);
        _platform.FailNth(PlatformCall.Bind, 1, errno: 22);

        var exception = Assert.Throws<PlatformException>(() => _platform.Bind(_range, _size, 0, BindMode.Preferred));
        _platform.Bind(_range, _size, 0, BindMode.Preferred);

        Assert.That(exception!.CallName, Is.EqualTo("mbind"));
        Assert.That(exception.ErrorCode, Is.EqualTo(22));
        Assert.That(_platform.TryQueryBinding(_range, out _, out int node), Is.True, "the second bind went through");
        Assert.That(node, Is.Zero);
    }

    [Test]
    public void FailNth_OfReserve_CountsTheReserveMadeInSetUp()
    {
        _platform.FailNth(PlatformCall.Reserve, 2);

        Assert.That(() => _platform.Reserve(_size, 0), Throws.TypeOf<PlatformException>().With.Property(nameof(PlatformException.CallName)).EqualTo("mmap"));
        Assert.That(_platform.CallCount(PlatformCall.Reserve), Is.EqualTo(2));
    }

    [Test]
    public void FailFrom_FailsEveryLaterCallUntilCleared()
    {
        _platform.FailFrom(PlatformCall.Decommit, 1);
        _platform.Commit(_range, _size);

        Assert.Throws<PlatformException>(() => _platform.Decommit(_range, _page));
        Assert.Throws<PlatformException>(() => _platform.Decommit(_range, _page));
        _platform.ClearFault(PlatformCall.Decommit);
        _platform.Decommit(_range, _page);

        Assert.That(_platform.CallCount(PlatformCall.Decommit), Is.EqualTo(3));
        Assert.That(ProcessMemory.ProtectionOfPages(_range, _page, _page)[0], Is.EqualTo("---p"));
    }

    [Test]
    public void CallCount_CountsEachKindSeparately()
    {
        _platform.Commit(_range, _size);
        _platform.Purge(_range, _size);
        _platform.Purge(_range, _size);
        _platform.QueryCurrentCpu(out _);

        Assert.That(_platform.CallCount(PlatformCall.Reserve), Is.EqualTo(1));
        Assert.That(_platform.CallCount(PlatformCall.Commit), Is.EqualTo(1));
        Assert.That(_platform.CallCount(PlatformCall.Purge), Is.EqualTo(2));
        Assert.That(_platform.CallCount(PlatformCall.QueryCurrentCpu), Is.EqualTo(1));
        Assert.That(_platform.CallCount(PlatformCall.Bind), Is.Zero);
    }

    [Test]
    public void CallCount_UnderConcurrentCalls_LosesNone()
    {
        const int Threads = 4;
        const int CallsPerThread = 1000;
        var workers = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                for (int i = 0; i < CallsPerThread; i++)
                {
                    _platform.QueryCurrentCpu(out _);
                }
            });
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        Assert.That(_platform.CallCount(PlatformCall.QueryCurrentCpu), Is.EqualTo(Threads * CallsPerThread));
    }
}
