using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

// The seam's contract, checked on both implementations: 0 or the call's errno, never a throw.
[TestFixture("Mono.Posix")]
[TestFixture("libc")]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public unsafe class MmapFamilyTests
{
    private const int EINVAL = 22;
    private const int ENOMEM = 12;

    private readonly IMmapFamily _mmap;

    public MmapFamilyTests(string mmapFamily)
    {
        _mmap = MmapFamilies.Named(mmapFamily);
    }

    [Test]
    public void QueryPageSize_AgreesWithTheRuntime()
    {
        Assert.That(_mmap.QueryPageSize(out nuint pageSize), Is.Zero);
        Assert.That(pageSize, Is.EqualTo((nuint)Environment.SystemPageSize));
    }

    [Test]
    public void QueryConfiguredCpuCount_IsAtLeastTheOnlineCount()
    {
        Assert.That(_mmap.QueryConfiguredCpuCount(out int cpus), Is.Zero);
        Assert.That(cpus, Is.GreaterThanOrEqualTo(Environment.ProcessorCount));
    }

    [Test]
    public void MapInaccessible_ThenProtect_ThenUnmap_ChangesWhatTheKernelReports()
    {
        nuint page = (nuint)Environment.SystemPageSize;
        nuint size = 4 * page;

        Assert.That(_mmap.MapInaccessible(size, out void* start), Is.Zero);
        Assert.That((ulong)((nuint)start % page), Is.Zero);
        Assert.That(ProcessMemory.ProtectionOfPages(start, size, page), Is.All.EqualTo("---p"), "mapped");

        Assert.That(_mmap.Protect(start, page, readWrite: true), Is.Zero);
        *(long*)start = 0x1234_5678_9abc;
        Assert.That(*(long*)start, Is.EqualTo(0x1234_5678_9abc));
        Assert.That(ProcessMemory.ProtectionOfPages(start, size, page), Is.EqualTo(new[] { "rw-p", "---p", "---p", "---p" }), "first page read-write");

        Assert.That(_mmap.Protect(start, page, readWrite: false), Is.Zero);
        Assert.That(ProcessMemory.ProtectionOfPages(start, size, page), Is.All.EqualTo("---p"), "back to no access");

        var ours = ProcessMemory.MappingsOverlapping(start, size);
        Assert.That(_mmap.Unmap(start, size), Is.Zero);
        // Unmapped: nothing is there, or what is there is not what we left. Another thread of this
        // process (a test running beside this one, the runtime) may map the freed range at once, and
        // the kernel does reuse it: the last full run saw exactly that.
        var after = ProcessMemory.MappingsOverlapping(start, size);
        Assert.That(after.Count == 0 || !after.SequenceEqual(ours), Is.True,
            $"unmapped (before: {string.Join(", ", ours)}; after: {string.Join(", ", after)})");
    }

    [Test]
    public void MapInaccessible_OfMoreThanTheAddressSpace_ReturnsEnomemAndNull()
    {
        int errno = _mmap.MapInaccessible((nuint)1 << 60, out void* start);

        Assert.That(errno, Is.EqualTo(ENOMEM));
        Assert.That(start == null, Is.True);
    }

    [Test]
    public void Unmap_OfAnUnalignedAddress_ReturnsEinval()
    {
        nuint page = (nuint)Environment.SystemPageSize;
        Assert.That(_mmap.MapInaccessible(page, out void* start), Is.Zero);
        try
        {
            Assert.That(_mmap.Unmap((byte*)start + 1, page), Is.EqualTo(EINVAL));
            Assert.That(ProcessMemory.IsAnyPartMapped(start, page), Is.True, "the failed call unmapped nothing");
        }
        finally
        {
            _mmap.Unmap(start, page);
        }
    }

    [Test]
    public void Protect_OfAnUnmappedRange_ReturnsEnomem()
    {
        nuint page = (nuint)Environment.SystemPageSize;
        Assert.That(_mmap.MapInaccessible(page, out void* start), Is.Zero);
        Assert.That(_mmap.Unmap(start, page), Is.Zero);

        // mprotect on addresses not mapped in the process: ENOMEM (mprotect(2)).
        Assert.That(_mmap.Protect(start, page, readWrite: true), Is.EqualTo(ENOMEM));
    }

    [Test]
    public void LinuxPlatform_OnThisFamily_UsesIt()
    {
        Assert.That(new LinuxPlatform(_mmap).Mmap, Is.SameAs(_mmap));
    }
}

[TestFixture]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public class MmapFamilySelectionTests
{
    [Test]
    public void Default_InTheManagedLibrary_IsMonoPosix()
    {
        // The switch is set only by Allocator.Native's build; the managed library keeps Mono.Posix.
        Assert.That(AppContext.TryGetSwitch(MmapFamily.UseLibcSwitchName, out _), Is.False);
        Assert.That(MmapFamily.UseLibc, Is.False);
        Assert.That(MmapFamily.Default, Is.SameAs(MonoPosixMmapFamily.Instance));
        Assert.That(new LinuxPlatform().Mmap, Is.SameAs(MonoPosixMmapFamily.Instance));
    }

    [Test]
    public void Families_HaveDistinctNames()
    {
        Assert.That(LibcMmapFamily.Instance.Name, Is.EqualTo("libc"));
        Assert.That(MonoPosixMmapFamily.Instance.Name, Is.EqualTo("Mono.Posix"));
    }
}
