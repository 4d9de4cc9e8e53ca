namespace Numalloc.Tests.Topology;

/// <summary>Finds the captured sysfs trees in <c>shared/fixtures/sysfs</c>, beside the repository or inside it.</summary>
internal static class SysfsFixtures
{
    private static readonly Lazy<string?> s_root = new(Find);

    /// <summary>The <c>sys/devices/system</c> directory of one captured tree; fails the test if the fixtures are missing.</summary>
    public static string SystemRoot(string tree)
    {
        string? root = s_root.Value;
        if (root is null)
        {
            Assert.Fail($"The sysfs fixtures were not found: no 'shared/fixtures/sysfs' in any directory above {TestContext.CurrentContext.TestDirectory}. Clone the repository beside 'shared/' (X/main and X/shared), or put 'shared/' inside it.");
        }

        string system = Path.Combine(root!, tree, "sys", "devices", "system");
        Assert.That(Directory.Exists(system), Is.True, $"fixture tree {system} is missing");
        return system;
    }

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "fixtures", "sysfs");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>A hand-written sysfs tree in a temporary directory, in the kernel's formats.</summary>
internal sealed class SysfsTree : IDisposable
{
    public SysfsTree()
    {
        Root = Path.Combine(Path.GetTempPath(), "numalloc-sysfs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    /// <summary>The <c>devices/system</c> equivalent: holds <c>node/</c> and <c>cpu/</c>.</summary>
    public string Root { get; }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    public SysfsTree Write(string relative, string content)
    {
        string path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return this;
    }

    /// <summary>Writes one node directory the way the kernel prints it.</summary>
    public SysfsTree Node(int osId, string cpulist, string distanceRow, long memTotalKib)
    {
        string dir = $"node/node{osId}/";
        Write(dir + "cpulist", cpulist + "\n");
        Write(dir + "distance", distanceRow + "\n");
        Write(dir + "meminfo", $"Node {osId} MemTotal:       {memTotalKib,8} kB\nNode {osId} MemFree:        {memTotalKib / 2,8} kB\n");
        return this;
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
