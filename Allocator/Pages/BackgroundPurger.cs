namespace Numalloc.Pages;

/// <summary>
/// The heap's purger thread (like jemalloc's background_thread): every <see cref="IntervalMs"/> it runs
/// one <see cref="PageHeap.PurgeTick()"/>. It holds the heap weakly, so a heap nobody disposed does
/// not keep a thread alive forever; <see cref="Dispose"/> stops it and waits for a tick in progress.
/// </summary>
internal sealed class BackgroundPurger : IDisposable
{
    private readonly WeakReference<PageHeap> _heap;
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;
    private int _disposed;

    /// <summary>Starts the thread.</summary>
    public BackgroundPurger(PageHeap heap, int intervalMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(intervalMs);
        _heap = new WeakReference<PageHeap>(heap);
        IntervalMs = intervalMs;
        _thread = new Thread(Run) { IsBackground = true, Name = "numalloc purger" };
        _thread.UnsafeStart();
    }

    /// <summary>The tick period in ms.</summary>
    public int IntervalMs { get; }

    /// <summary>
    /// The tick for <paramref name="decayMs"/>: an eighth of it, so a block is purged within an eighth
    /// of the decay of its due time, but at least 10 ms (no busy thread) and at most 1 s.
    /// </summary>
    public static int IntervalFor(int decayMs) => Math.Clamp(decayMs / 8, 10, 1000);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) // once only, even if two threads race
            return;
        _stop.Set();
        if (Thread.CurrentThread == _thread)
            return;
        _thread.Join();
        _stop.Dispose();
    }

    private void Run()
    {
        while (!_stop.Wait(IntervalMs))
        {
            if (!_heap.TryGetTarget(out PageHeap? heap))
                return; // the heap was collected without Dispose: nothing left to purge
            heap.PurgeTick();
        }
    }
}
