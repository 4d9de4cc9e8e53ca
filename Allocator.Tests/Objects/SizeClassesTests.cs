using Numalloc.Objects;

namespace Numalloc.Tests.Objects;

public class SizeClassesTests
{
    [Test]
    public void Classes_RunFromEightBytesToThirtyTwoKiB_Ascending()
    {
        Assert.That(SizeClasses.SizeOf(0), Is.EqualTo(8));
        Assert.That(SizeClasses.SizeOf(SizeClasses.Count - 1), Is.EqualTo(32 * 1024));
        for (int c = 1; c < SizeClasses.Count; c++)
            Assert.That(SizeClasses.SizeOf(c), Is.GreaterThan(SizeClasses.SizeOf(c - 1)));
    }

    [Test]
    public void EverySize_MapsToTheSmallestClassThatHoldsIt()
    {
        for (int size = 1; size <= SizeClasses.MaxSmallSize; size++)
        {
            int c = SizeClasses.ClassOf((nuint)size);
            Assert.That(SizeClasses.SizeOf(c), Is.GreaterThanOrEqualTo(size), $"size {size}");
            if (c > 0)
                Assert.That(SizeClasses.SizeOf(c - 1), Is.LessThan(size), $"size {size} could use class {c - 1}");
        }
    }

    [Test]
    public void Waste_IsAtMostOneEighth_FromSixtyFourBytesUp_AndUnderTheEightByteQuantumBelow()
    {
        for (int size = 1; size <= SizeClasses.MaxSmallSize; size++)
        {
            int classSize = SizeClasses.SizeOf(SizeClasses.ClassOf((nuint)size));
            int waste = classSize - size;
            if (classSize >= 64)
                Assert.That(waste, Is.LessThanOrEqualTo(classSize / 8), $"size {size} in class {classSize}");
            else
                Assert.That(waste, Is.LessThan(8), $"size {size} in class {classSize}");
        }
    }

    [Test]
    public void EveryClass_IsAMultipleOfEight() =>
        Assert.That(Enumerable.Range(0, SizeClasses.Count).Select(SizeClasses.SizeOf), Has.All.Matches<int>(s => s % 8 == 0));

    [Test]
    public void NoClassFlag_CollidesWithTheFreeDirtyBitOrTheLargeRunFlag() =>
        Assert.That(Enumerable.Range(1, SizeClasses.Count), Has.None.Matches<int>(flag =>
            (flag & Numalloc.Pages.PageDescriptor.FreeDirty) != 0 || flag == Numalloc.Objects.ObjectHeap.LargeRunFlag));
}
