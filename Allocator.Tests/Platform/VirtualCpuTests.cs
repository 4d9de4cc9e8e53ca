using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
[NonParallelizable]
public class VirtualCpuTests
{
    [TearDown]
    public void TearDown() => VirtualCpu.Clear();

    [Test]
    public void Set_MakesCurrentCpuReturnTheSetValue()
    {
        VirtualCpu.Set(37);

        Assert.That(PlatformCpu.Current(), Is.EqualTo(37));
        Assert.That(VirtualCpu.TryGet(out int cpu), Is.True);
        Assert.That(cpu, Is.EqualTo(37));
    }

    [Test]
    [Platform("Linux")]
    [SupportedOSPlatform("linux")]
    public void Set_IsWhatThePlatformReportsAsCurrentCpu()
    {
        IPlatform platform = PlatformFactory.CreateDefault();
        VirtualCpu.Set(0);
        Assert.That(platform.CurrentCpu, Is.Zero);
        VirtualCpu.Set(1234);
        Assert.That(platform.CurrentCpu, Is.EqualTo(1234));
    }

    [Test]
    public void Set_OnOneThread_DoesNotLeakToAnother()
    {
        VirtualCpu.Set(5);
        bool otherHasVirtualCpu = true;
        int otherCpu = 0;
        var other = new Thread(() => otherHasVirtualCpu = VirtualCpu.TryGet(out otherCpu));
        other.Start();
        other.Join();

        Assert.That(otherHasVirtualCpu, Is.False);
        Assert.That(otherCpu, Is.EqualTo(-1));
        Assert.That(PlatformCpu.Current(), Is.EqualTo(5), "still set on this thread");
    }

    [Test]
    public void Set_OnAnotherThread_DoesNotChangeThisThread()
    {
        var other = new Thread(() => VirtualCpu.Set(9));
        other.Start();
        other.Join();

        Assert.That(VirtualCpu.TryGet(out _), Is.False);
    }

    [Test]
    public void Clear_RestoresTheRealProcessorIdPath()
    {
        // A virtual id no real machine here has, so the real path cannot return it by chance.
        VirtualCpu.Set(100_000);
        VirtualCpu.Clear();

        Assert.That(VirtualCpu.TryGet(out int cpu), Is.False);
        Assert.That(cpu, Is.EqualTo(-1));
        Assert.That(PlatformCpu.Current(), Is.Not.EqualTo(100_000));
        Assert.That(PlatformCpu.Current(), Is.InRange(0, Environment.ProcessorCount * 64));
    }

    [Test]
    public void Set_WithNegativeCpu_Throws()
    {
        Assert.That(() => VirtualCpu.Set(-1), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(VirtualCpu.TryGet(out _), Is.False);
    }
}
