using System.Runtime.Versioning;
using Numalloc.Platform;

namespace Numalloc.Tests.Platform;

[TestFixture]
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public unsafe class PurgeTests
{
    [Test]
    public void Purge_LeavesMemoryAccessibleAndZeroFilled()
    {
        var platform = new LinuxPlatform();
        nuint size = platform.PageSize * 4;
        byte* range = (byte*)platform.Reserve(size, 0);
        try
        {
            platform.Commit(range, size);
            new Span<byte>(range, (int)size).Fill(0x5A);
            Assert.That(ProcessMemory.ResidentPageCount(range, size, platform.PageSize), Is.EqualTo(4));

            platform.Purge(range, size);

            Assert.That(ProcessMemory.ResidentPageCount(range, size, platform.PageSize), Is.Zero, "pages returned to the OS");
            Assert.That(ProcessMemory.ProtectionOfPages(range, size, platform.PageSize), Is.All.EqualTo("rw-p"), "still committed");
            Assert.That(new Span<byte>(range, (int)size).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "reads back zero");
            range[0] = 7;
            Assert.That(range[0], Is.EqualTo(7), "still writable");
        }
        finally
        {
            platform.Release(range, size);
        }
    }
}
