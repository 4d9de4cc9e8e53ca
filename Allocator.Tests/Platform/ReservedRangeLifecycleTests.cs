using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

// Once per mmap family: Mono.Posix (the managed library's) and libc (the native build's).
[TestFixture("Mono.Posix")]
[TestFixture("libc")]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public unsafe class ReservedRangeLifecycleTests
{
    private const int PageCount = 8;

    private readonly IMmapFamily _mmap;
    private LinuxPlatform _platform = null!;
    private nuint _page;
    private nuint _size;

    public ReservedRangeLifecycleTests(string mmapFamily)
    {
        _mmap = MmapFamilies.Named(mmapFamily);
    }

    [SetUp]
    public void SetUp()
    {
        _platform = new LinuxPlatform(_mmap);
        _page = _platform.PageSize;
        _size = _page * PageCount;
    }

    [Test]
    public void Reserve_Commit_Bind_Decommit_Release_MovesThroughEveryState()
    {
        byte* range = (byte*)_platform.Reserve(_size, 0);
        Assert.That(ProcessMemory.ProtectionOfPages(range, _size, _page), Is.All.EqualTo("---p"), "reserved");
        Assert.That(ProcessMemory.ResidentPageCount(range, _size, _page), Is.Zero, "reserved");

        _platform.Commit(range, _size);
        Assert.That(ProcessMemory.ProtectionOfPages(range, _size, _page), Is.All.EqualTo("rw-p"), "committed");

        _platform.Bind(range, _size, 0, BindMode.Preferred);
        var pattern = new Span<byte>(range, (int)_size);
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)(i * 31);
        }

        for (int i = 0; i < pattern.Length; i++)
        {
            Assert.That(pattern[i], Is.EqualTo((byte)(i * 31)), $"byte {i}");
        }

        nint[] pages = new nint[PageCount];
        int[] nodes = new int[PageCount];
        for (int i = 0; i < PageCount; i++)
        {
            pages[i] = (nint)(range + ((nuint)i * _page));
        }

        _platform.QueryNodeOfPages(pages, nodes);
        Assert.That(nodes, Is.All.EqualTo(0), "move_pages after touching");
        Assert.That(ProcessMemory.ResidentPageCount(range, _size, _page), Is.EqualTo(PageCount), "touched");

        _platform.Decommit(range, _size);
        Assert.That(ProcessMemory.ProtectionOfPages(range, _size, _page), Is.All.EqualTo("---p"), "decommitted: a touch would fault");
        Assert.That(ProcessMemory.ResidentPageCount(range, _size, _page), Is.Zero, "decommitted: pages returned");

        var ours = ProcessMemory.MappingsOverlapping(range, _size);
        _platform.Release(range, _size);
        // Released: nothing is there, or not what we left (another thread may map the freed range at once).
        var after = ProcessMemory.MappingsOverlapping(range, _size);
        Assert.That(after.Count == 0 || !after.SequenceEqual(ours), Is.True,
            $"released (before: {string.Join(", ", ours)}; after: {string.Join(", ", after)})");
    }

    [Test]
    public void Reserve_WithLargeAlignment_ReturnsAlignedInaccessibleRange()
    {
        nuint alignment = 2 * 1024 * 1024;
        void* range = _platform.Reserve(_size, alignment);
        try
        {
            Assert.That((ulong)((nuint)range % alignment), Is.Zero);
            Assert.That(ProcessMemory.ProtectionOfPages(range, _size, _page), Is.All.EqualTo("---p"));
        }
        finally
        {
            _platform.Release(range, _size);
        }
    }

    [Test]
    public void Reserve_OfMoreAddressSpaceThanExists_ThrowsPlatformExceptionNamingMmap()
    {
        // 2^60 bytes: beyond any x86-64 or arm64 user address space, even with MAP_NORESERVE.
        nuint size = (nuint)1 << 60;

        var exception = Assert.Throws<PlatformException>(() => _platform.Reserve(size, 0));

        Assert.That(exception!.CallName, Is.EqualTo("mmap"));
        Assert.That(exception.ErrorCode, Is.EqualTo(12));
        Assert.That(exception.Message, Does.Contain("ENOMEM (12)"));
    }

    [Test]
    public void Reserve_WhosePaddingWouldWrap_ThrowsInsteadOfMappingLess()
    {
        nuint size = nuint.MaxValue & ~(_page - 1);

        Assert.That(() => _platform.Reserve(size, 1024 * 1024), Throws.TypeOf<PlatformException>().With.Property(nameof(PlatformException.ErrorCode)).EqualTo(12));
    }

    [Test]
    public void Decommit_ThenCommit_ReadsBackZero()
    {
        byte* range = (byte*)_platform.Reserve(_size, 0);
        try
        {
            _platform.Commit(range, _size);
            new Span<byte>(range, (int)_size).Fill(0xAB);
            _platform.Decommit(range, _size);
            _platform.Commit(range, _size);

            Assert.That(new Span<byte>(range, (int)_size).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        }
        finally
        {
            _platform.Release(range, _size);
        }
    }

    [Test]
    public void Decommit_OfOnePage_LeavesItsNeighboursAccessible()
    {
        byte* range = (byte*)_platform.Reserve(_size, 0);
        try
        {
            _platform.Commit(range, _size);
            _platform.Decommit(range + _page, _page);

            string?[] protections = ProcessMemory.ProtectionOfPages(range, _size, _page);
            Assert.That(protections[0], Is.EqualTo("rw-p"));
            Assert.That(protections[1], Is.EqualTo("---p"));
            Assert.That(protections[2..], Is.All.EqualTo("rw-p"));
        }
        finally
        {
            _platform.Release(range, _size);
        }
    }

    [Test]
    public void Commit_OfUnalignedAddress_ThrowsArgumentExceptionBeforeAnyOsCall()
    {
        byte* range = (byte*)_platform.Reserve(_size, 0);
        try
        {
            Assert.That(() => _platform.Commit(range + 1, _page), Throws.ArgumentException);
            Assert.That(() => _platform.Commit(range, _page + 1), Throws.ArgumentException);
            Assert.That(ProcessMemory.ProtectionOfPages(range, _size, _page), Is.All.EqualTo("---p"));
        }
        finally
        {
            _platform.Release(range, _size);
        }
    }
}
