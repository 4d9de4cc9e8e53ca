using System.Collections.Concurrent;
using System.Diagnostics;

namespace Numalloc.Bench.Drill;

/// <summary>
/// The drill's load: one thread per worker, each on a node of its own (round robin), making small
/// and large raw allocations (some strictly on a random node), movable buffers it pins, checks and
/// unpins, and frees, a share of them on another worker's thread. Every object is filled with a
/// pattern derived from its tag and checked before it is freed, and movable buffers at every pin,
/// so a byte lost in a migration or a drain shows up named.
/// </summary>
internal sealed unsafe class DrillWorkload : IDisposable
{
    private const int MaxLivePerWorker = 512, MaxLargePerWorker = 4, MaxMovablePerWorker = 64, MaxInbox = 1024;
    private const int CounterStride = 16; // longs: one cache line and a half apart, no false sharing

    private enum Kind : byte { Small, Large, Movable }

    private sealed class Entry
    {
        public Kind Kind;
        public byte* Pointer;
        public IDrillMovable? Movable;
        public int Size;
        public ulong Tag;
        public long Id;
        public int Owner;
    }

    private readonly IDrillHeap _heap;
    private readonly DrillOptions _options;
    private readonly int _nodes;
    private readonly Thread[] _threads;
    private readonly ConcurrentQueue<Entry>[] _inboxes;
    private readonly long[] _ops;
    private readonly LatencyHistogram[,] _latency;
    private readonly long[,] _expectedFailures, _spuriousFailures;
    private readonly ConcurrentQueue<string> _mismatches = new();
    private volatile bool _stop;
    private volatile int _step;
    private int _corruptRequested;
    private long _nextId;

    /// <param name="heap">Where the load allocates.</param>
    /// <param name="options">Threads, sizes and seed.</param>
    /// <param name="nodes">Nodes of the heap.</param>
    /// <param name="steps">Steps of the scenario (latency and failures are kept per step).</param>
    public DrillWorkload(IDrillHeap heap, DrillOptions options, int nodes, int steps)
    {
        _heap = heap;
        _options = options;
        _nodes = nodes;
        int workers = options.Threads;
        _threads = new Thread[workers];
        _inboxes = new ConcurrentQueue<Entry>[workers];
        _ops = new long[workers * CounterStride];
        _latency = new LatencyHistogram[steps + 1, workers];
        _expectedFailures = new long[steps + 1, workers];
        _spuriousFailures = new long[steps + 1, workers];
        for (int w = 0; w < workers; w++)
        {
            _inboxes[w] = new ConcurrentQueue<Entry>();
            for (int s = 0; s <= steps; s++)
                _latency[s, w] = new LatencyHistogram();
        }
    }

    /// <summary>The step workers account to now (1-based; 0 before the first).</summary>
    public int Step
    {
        get => _step;
        set => _step = value;
    }

    /// <summary>Operations done so far by every worker (racy: a sample).</summary>
    public long Operations
    {
        get
        {
            long total = 0;
            for (int w = 0; w < _threads.Length; w++)
                total += Volatile.Read(ref _ops[w * CounterStride]);
            return total;
        }
    }

    /// <summary>Failures so far over every step (racy: a sample).</summary>
    public long Failures
    {
        get
        {
            long total = 0;
            foreach (long n in _spuriousFailures)
                total += n;
            foreach (long n in _expectedFailures)
                total += n;
            return total;
        }
    }

    /// <summary>Every object found changed, named.</summary>
    public IReadOnlyList<string> Mismatches => [.. _mismatches];

    /// <summary>Test hook: one worker flips a byte of one of its live objects (a movable buffer if it has one) and keeps going.</summary>
    public void CorruptOneObject() => Volatile.Write(ref _corruptRequested, 1);

    /// <summary>Starts the workers.</summary>
    public void Start()
    {
        for (int w = 0; w < _threads.Length; w++)
        {
            int worker = w;
            _threads[w] = new Thread(() => Work(worker)) { IsBackground = true, Name = $"drill worker {w}" };
            _threads[w].Start();
        }
    }

    /// <summary>Stops the workers; each checks and frees everything it holds; then the inboxes are emptied the same way.</summary>
    public void Stop()
    {
        _stop = true;
        foreach (Thread thread in _threads)
            thread?.Join();
        for (int w = 0; w < _inboxes.Length; w++)
        {
            while (_inboxes[w].TryDequeue(out Entry? entry))
                CheckAndFree(entry, w);
        }
    }

    /// <summary>Allocation latency of one step, all workers merged.</summary>
    public LatencyHistogram LatencyOf(int step)
    {
        var merged = new LatencyHistogram();
        for (int w = 0; w < _threads.Length; w++)
            merged.Add(_latency[step, w]);
        return merged;
    }

    /// <summary>Failures of one step: explained (the node had nothing online to serve) and spurious.</summary>
    public (long Expected, long Spurious) FailuresOf(int step)
    {
        long expected = 0, spurious = 0;
        for (int w = 0; w < _threads.Length; w++)
        {
            expected += Volatile.Read(ref _expectedFailures[step, w]);
            spurious += Volatile.Read(ref _spuriousFailures[step, w]);
        }
        return (expected, spurious);
    }

    private void Work(int worker)
    {
        _heap.RunOn(worker % _nodes);
        var random = new Random(unchecked(_options.Seed * 7919 + worker));
        var live = new List<Entry>(MaxLivePerWorker);
        int large = 0, movable = 0;
        ConcurrentQueue<Entry> inbox = _inboxes[worker];
        ConcurrentQueue<Entry> neighbour = _inboxes[(worker + 1) % _inboxes.Length];
        try
        {
            while (!_stop)
            {
                for (int i = 0; i < 8 && inbox.TryDequeue(out Entry? foreign); i++)
                    CheckAndFree(foreign, worker);

                if (Volatile.Read(ref _corruptRequested) == 1 && live.Count > 0 && Interlocked.Exchange(ref _corruptRequested, 0) == 1)
                    Corrupt(live, worker);

                int roll = random.Next(100);
                if (roll < 70 || (roll < 75 && large >= MaxLargePerWorker) || (roll < 85 && movable >= MaxMovablePerWorker))
                {
                    if (live.Count >= MaxLivePerWorker)
                        FreeRandom(live, random, worker, neighbour, ref large, ref movable);
                    int size = random.Next(_options.SmallMin, _options.SmallMax + 1);
                    int strictNode = random.Next(8) == 0 ? random.Next(_nodes) : -1;
                    Allocate(live, Kind.Small, size, strictNode, worker);
                }
                else if (roll < 75)
                {
                    if (Allocate(live, Kind.Large, random.Next(_options.LargeMin, _options.LargeMax + 1), -1, worker))
                        large++;
                }
                else if (roll < 85)
                {
                    Entry? existing = movable > 0 && random.Next(2) == 0 ? PickMovable(live, random) : null;
                    if (existing is not null)
                        Repin(existing, worker);
                    else if (Allocate(live, Kind.Movable, random.Next(4096, 65537), -1, worker))
                        movable++;
                }
                else if (live.Count > 0)
                {
                    FreeRandom(live, random, worker, neighbour, ref large, ref movable);
                }
                // Owner-only counter; an aligned 64-bit store the sampler reads whole.
                Volatile.Write(ref _ops[worker * CounterStride], _ops[worker * CounterStride] + 1);
            }
        }
        finally
        {
            foreach (Entry entry in live)
                CheckAndFree(entry, worker);
            _heap.FlushThread();
        }
    }

    private bool Allocate(List<Entry> live, Kind kind, int size, int strictNode, int worker)
    {
        int step = _step;
        long start = Stopwatch.GetTimestamp();
        byte* p = null;
        IDrillMovable? buffer = null;
        bool failureExpected = false;
        if (kind == Kind.Movable)
            buffer = _heap.TryAllocateMovable(size);
        else
            p = strictNode >= 0 ? (byte*)_heap.TryAllocateOnNode((nuint)size, strictNode, out failureExpected) : (byte*)_heap.TryAllocate((nuint)size);
        long elapsed = Stopwatch.GetTimestamp() - start;
        _latency[step, worker].Record(elapsed * 1_000_000_000 / Stopwatch.Frequency);

        if (p == null && buffer is null)
        {
            // A strict request to a node with nothing online for it was bound to fail.
            if (failureExpected)
                Interlocked.Increment(ref _expectedFailures[step, worker]);
            else
                Interlocked.Increment(ref _spuriousFailures[step, worker]);
            return false;
        }

        var entry = new Entry { Kind = kind, Pointer = p, Movable = buffer, Size = size, Id = Interlocked.Increment(ref _nextId), Owner = worker };
        entry.Tag = (ulong)entry.Id * 0x9E3779B97F4A7C15UL;
        if (buffer is not null)
        {
            byte* pinned = buffer.Pin();
            Fill(pinned, size, entry.Tag);
            buffer.Unpin();
        }
        else
        {
            Fill(p, size, entry.Tag);
        }
        live.Add(entry);
        return true;
    }

    private static Entry? PickMovable(List<Entry> live, Random random)
    {
        for (int tries = 0; tries < 8; tries++)
        {
            Entry candidate = live[random.Next(live.Count)];
            if (candidate.Kind == Kind.Movable)
                return candidate;
        }
        return null;
    }

    // Pin, check, write a new pattern, unpin: the buffer may have moved since the last pin.
    private void Repin(Entry entry, int worker)
    {
        byte* p = entry.Movable!.Pin();
        try
        {
            // A mismatch is reported once: the new pattern below makes the buffer whole again.
            Check(p, entry, worker);
            entry.Tag = unchecked(entry.Tag + 0x2545F4914F6CDD1DUL);
            Fill(p, entry.Size, entry.Tag);
        }
        finally
        {
            entry.Movable.Unpin();
        }
    }

    private void FreeRandom(List<Entry> live, Random random, int worker, ConcurrentQueue<Entry> neighbour, ref int large, ref int movable)
    {
        int index = random.Next(live.Count);
        Entry entry = live[index];
        live[index] = live[^1];
        live.RemoveAt(live.Count - 1);
        if (entry.Kind == Kind.Large)
            large--;
        else if (entry.Kind == Kind.Movable)
            movable--;

        // A quarter of the frees happen on another thread.
        if (random.Next(4) == 0 && neighbour.Count < MaxInbox)
            neighbour.Enqueue(entry);
        else
            CheckAndFree(entry, worker);
    }

    private void CheckAndFree(Entry entry, int worker)
    {
        if (entry.Movable is not null)
        {
            byte* p = entry.Movable.Pin();
            Check(p, entry, worker);
            entry.Movable.Unpin();
            entry.Movable.Free();
            return;
        }
        Check(entry.Pointer, entry, worker);
        _heap.Free(entry.Pointer);
    }

    private void Corrupt(List<Entry> live, int worker)
    {
        Entry entry = live.Find(e => e.Kind == Kind.Movable) ?? live[^1];
        if (entry.Movable is not null)
        {
            byte* p = entry.Movable.Pin();
            p[entry.Size / 2] ^= 0x5A;
            entry.Movable.Unpin();
        }
        else
        {
            entry.Pointer[entry.Size / 2] ^= 0x5A;
        }
        _ = worker;
    }

    private static void Fill(byte* p, int size, ulong tag)
    {
        ulong* words = (ulong*)p;
        int count = size / 8;
        for (int i = 0; i < count; i++)
            words[i] = tag ^ ((ulong)i * 0xD6E8FEB86659FD93UL);
        for (int i = count * 8; i < size; i++)
            p[i] = (byte)(tag >> (i & 7));
    }

    private bool Check(byte* p, Entry entry, int worker)
    {
        ulong* words = (ulong*)p;
        int count = entry.Size / 8;
        for (int i = 0; i < count; i++)
        {
            ulong expected = entry.Tag ^ ((ulong)i * 0xD6E8FEB86659FD93UL);
            if (words[i] != expected)
                return Mismatch(entry, worker, i * 8);
        }
        for (int i = count * 8; i < entry.Size; i++)
        {
            if (p[i] != (byte)(entry.Tag >> (i & 7)))
                return Mismatch(entry, worker, i);
        }
        return true;
    }

    private bool Mismatch(Entry entry, int worker, int offset)
    {
        string kind = entry.Kind switch { Kind.Movable => "movable buffer", Kind.Large => "large allocation", _ => "small allocation" };
        _mismatches.Enqueue($"{kind} #{entry.Id} ({entry.Size} B, allocated by worker {entry.Owner}) checked by worker {worker} at step {_step}: first difference at byte {offset}");
        return false;
    }

    public void Dispose()
    {
        if (!_stop)
            Stop();
    }
}
