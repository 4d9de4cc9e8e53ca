using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public class LinuxCpuTests
{
    [Test]
    public void PossibleCpuCount_IsHighestPossibleIdPlusOne()
    {
        // Parsed independently of CpuList: the last number in the file is the highest id.
        string text = File.ReadAllText(LinuxPlatform.PossibleCpusPath).Trim();
        int highest = int.Parse(text.Split(',', '-')[^1], System.Globalization.CultureInfo.InvariantCulture);

        Assert.That(new LinuxPlatform().PossibleCpuCount, Is.EqualTo(highest + 1));
    }

    [Test]
    public void QueryCurrentCpu_ReturnsAPossibleCpuOnAnOnlineNode()
    {
        var platform = new LinuxPlatform();

        int cpu = platform.QueryCurrentCpu(out int node);

        Assert.That(cpu, Is.InRange(0, platform.PossibleCpuCount - 1));
        Assert.That(Directory.Exists($"/sys/devices/system/node/node{node}"), Is.True, $"node {node}");
    }

    [Test]
    public void QueryCurrentCpu_IgnoresTheVirtualCpu()
    {
        var platform = new LinuxPlatform();
        VirtualCpu.Set(100_000);
        try
        {
            Assert.That(platform.QueryCurrentCpu(out _), Is.InRange(0, platform.PossibleCpuCount - 1));
        }
        finally
        {
            VirtualCpu.Clear();
        }
    }

    [Test]
    public void PageSize_MatchesTheRuntimes()
    {
        Assert.That(new LinuxPlatform().PageSize, Is.EqualTo((nuint)Environment.SystemPageSize));
    }

    [Test]
    public void CreateDefault_OnLinux_GivesTheLinuxPlatform()
    {
        Assert.That(PlatformFactory.CreateDefault(), Is.TypeOf<LinuxPlatform>());
        Assert.That(PlatformFactory.Default, Is.SameAs(PlatformFactory.Default));
    }
}
