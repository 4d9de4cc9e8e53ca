using Numalloc.Platform;
using Numalloc.Topology;

namespace Numalloc.Tests.Topology;

/// <summary>Discovery of the machine the tests run on (Linux: /sys/devices/system).</summary>
public class LiveMachineDiscoveryTests
{
    [Test]
    public void Discover_ReadsThisMachine_AndEveryOnlineCpuBelongsToANode()
    {
        Assert.That(OperatingSystem.IsLinux(), Is.True, "these tests read the Linux sysfs; the project builds and tests on Linux");

        NumaTopology t = NumaTopology.Discover();
        int[] onlineCpus = CpuList.Parse(File.ReadAllText("/sys/devices/system/cpu/online"));

        Assert.Multiple(() =>
        {
            Assert.That(t.NodeCount, Is.GreaterThanOrEqualTo(1));
            Assert.That(t.PossibleCpuCount, Is.GreaterThanOrEqualTo(Environment.ProcessorCount));
            Assert.That(onlineCpus, Is.Not.Empty);
            foreach (int cpu in onlineCpus)
            {
                Assert.That(t.Nodes.Count(n => n.Cpus.Contains(cpu)), Is.EqualTo(1), $"online CPU {cpu} belongs to exactly one node");
                Assert.That(t.Nodes[t.NodeOfCpu(cpu)].Cpus, Does.Contain(cpu), $"NodeOfCpu({cpu})");
            }

            Assert.That(t.Nodes.Any(n => n.HasMemory), Is.True, "some node has memory");
        });
    }
}
