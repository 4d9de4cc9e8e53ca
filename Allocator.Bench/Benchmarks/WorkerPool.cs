namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// Threads made once per benchmark (not per invocation) that run one body together: the
/// multi-thread suites time the work, not thread start-up.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    private readonly Thread[] _threads;
    private readonly Barrier _start;
    private readonly Barrier _done;
    private Action<int>? _body;
    private volatile bool _disposed;

    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _threads = new Thread[threads];
        _start = new Barrier(threads + 1);
        _done = new Barrier(threads + 1);
        for (int i = 0; i < threads; i++)
        {
            int index = i;
            _threads[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"bench worker {i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Workers in the pool.</summary>
    public int Count => _threads.Length;

    /// <summary>Runs <paramref name="body"/>(worker index) on every worker at once and waits for all of them.</summary>
    public void Run(Action<int> body)
    {
        _body = body;
        _start.SignalAndWait();
        _done.SignalAndWait();
    }

    private void Loop(int index)
    {
        while (true)
        {
            _start.SignalAndWait();
            if (_disposed)
                return;
            _body!(index);
            _done.SignalAndWait();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _start.SignalAndWait();
        foreach (Thread thread in _threads)
            thread.Join();
        _start.Dispose();
        _done.Dispose();
    }
}

/// <summary>A raw allocator as the multi-thread suites call it; structs, so each suite is specialized per allocator.</summary>
internal unsafe interface IRawAllocator
{
    void* Allocate(nuint size);

    void Free(void* p);
}

/// <summary>glibc's malloc through NativeMemory.</summary>
internal readonly unsafe struct NativeMemoryAllocator : IRawAllocator
{
    public void* Allocate(nuint size) => System.Runtime.InteropServices.NativeMemory.Alloc(size);

    public void Free(void* p) => System.Runtime.InteropServices.NativeMemory.Free(p);
}

/// <summary>numalloc through <see cref="NumaAllocator.Shared"/>-style use of one instance the suite creates.</summary>
internal readonly unsafe struct NumaRawAllocator : IRawAllocator
{
    /// <summary>The instance the multi-thread suites allocate from (set up and disposed by them).</summary>
    public static NumaAllocator Instance { get; set; } = null!;

    public void* Allocate(nuint size) => Instance.Allocate(size);

    public void Free(void* p) => Instance.Free(p);
}
