using Numalloc.Sync;

namespace Numalloc.Tests.Sync;

public class SeqCountTests
{
    [Test]
    public void ReadRetry_WithNoWriter_IsFalse()
    {
        var seq = new SeqCount();
        int cookie = seq.ReadBegin();
        Assert.That(seq.ReadRetry(cookie), Is.False);
    }

    [Test]
    public void ReadRetry_WhenCookieTakenInsideWriteSection_IsTrue()
    {
        var seq = new SeqCount();
        int cookie;
        using (seq.BeginWrite())
        {
            cookie = seq.ReadBegin();
            Assert.That(cookie & 1, Is.EqualTo(1), "count is odd inside a write section");
        }
        Assert.That(seq.ReadRetry(cookie), Is.True, "an odd cookie is never authoritative, even after the write ended");
    }

    [Test]
    public void ReadRetry_WhenWriteSectionRanSinceCookie_IsTrue()
    {
        var seq = new SeqCount();
        int cookie = seq.ReadBegin();
        using (seq.BeginWrite())
        {
        }
        Assert.That(seq.ReadRetry(cookie), Is.True);
        Assert.That(seq.Sequence, Is.EqualTo(cookie + 2));
    }

    [Test]
    public void WriteScope_DisposedTwice_ClosesTheSectionOnce()
    {
        var seq = new SeqCount();
        var scope = seq.BeginWrite();
        scope.Dispose();
        scope.Dispose();
        Assert.That(seq.Sequence, Is.EqualTo(2));
    }

    /// <summary>
    /// Writers keep two fields equal inside their sections; readers that accept a read only when
    /// ReadRetry says so must never see them differ. Bounded by iterations, not time.
    /// </summary>
    [Test, Category("Stress"), NonParallelizable]
    public void Readers_ThatPassReadRetry_NeverSeeATornPair()
    {
        var seq = new SeqCount();
        var pair = new long[2];
        const int writes = 200_000;
        int writersDone = 0;
        long accepted = 0, torn = 0;

        var writers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < writes; i++)
            {
                using (seq.BeginWrite())
                {
                    long v = Volatile.Read(ref pair[0]) + 1;
                    Volatile.Write(ref pair[0], v);
                    Volatile.Write(ref pair[1], v);
                }
            }
            Interlocked.Increment(ref writersDone);
        })).ToList();
        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            long localAccepted = 0, localTorn = 0;
            while (Volatile.Read(ref writersDone) < 2 || localAccepted == 0)
            {
                int cookie = seq.ReadBegin();
                long a = Volatile.Read(ref pair[0]);
                long b = Volatile.Read(ref pair[1]);
                if (!seq.ReadRetry(cookie))
                {
                    localAccepted++;
                    if (a != b) localTorn++;
                }
            }
            Interlocked.Add(ref accepted, localAccepted);
            Interlocked.Add(ref torn, localTorn);
        })).ToList();

        readers.ForEach(t => t.Start());
        writers.ForEach(t => t.Start());
        writers.ForEach(t => t.Join());
        readers.ForEach(t => t.Join());

        Assert.That(torn, Is.Zero);
        Assert.That(accepted, Is.GreaterThan(0));
        Assert.That(pair[0], Is.EqualTo(2L * writes), "writers are serialized: no increment lost");
        Assert.That(seq.Sequence, Is.EqualTo(2 * 2 * writes));
    }
}
