using Numalloc.Bench.Benchmarks;

namespace Numalloc.Tests.Bench;

public sealed class BatchOrderTests
{
    [Test]
    public void Shuffled_IsAPermutationOfTheIndices()
    {
        int[] order = BatchOrder.Shuffled(1000, seed: 7);

        Assert.That(order.Order(), Is.EqualTo(Enumerable.Range(0, 1000)));
    }

    [Test]
    public void Shuffled_IsTheSameForTheSameSeedAndDiffersForAnother()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BatchOrder.Shuffled(1000, seed: 7), Is.EqualTo(BatchOrder.Shuffled(1000, seed: 7)));
            Assert.That(BatchOrder.Shuffled(1000, seed: 7), Is.Not.EqualTo(BatchOrder.Shuffled(1000, seed: 8)));
        });
    }

    [Test]
    public void Shuffled_MovesMostIndices()
    {
        int[] order = BatchOrder.Shuffled(1000, seed: 7);

        // A random permutation fixes one index on average; allocation order would fix all of them.
        Assert.That(order.Where((value, index) => value == index).Count(), Is.LessThan(10));
    }
}
