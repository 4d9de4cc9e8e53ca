using Numalloc.Movable;

namespace Numalloc.VmProbe;

/// <summary>
/// The load of the VM drill: one thread pinned to one CPU that allocates, fills, checks and frees
/// small and large allocations and movable buffers (local policy, so on its CPU's node) until told
/// to stop. Every allocation carries a pattern derived from a seed, checked before it is freed and,
/// for movable buffers, whenever they are pinned: a migration that loses or tears bytes shows up as
/// a mismatch. An allocation that returns null is a failure: the drill must cause none.
/// </summary>
internal sealed unsafe class DrillWorker(NumaAllocator allocator, int cpu, int seed)
{
    // Live allocations a worker keeps: enough that an offline finds buffers of every worker in the zone.
    private const int MaxLiveObjects = 48;
    private const int MaxLiveBuffers = 16;

    private readonly Random _random = new(seed);
    private readonly List<(nint Address, int Bytes, int Seed)> _objects = [];
    private readonly List<(MovableBuffer Buffer, int Seed)> _buffers = [];
    private volatile bool _stop;
    private Thread? _thread;

    /// <summary>Operations done (allocations, frees and checks).</summary>
    public long Operations { get; private set; }

    /// <summary>Allocations that returned null.</summary>
    public long Failures { get; private set; }

    /// <summary>Checks that found other bytes than were written.</summary>
    public long Mismatches { get; private set; }

    /// <summary>What went wrong (exceptions, first mismatches), for the diagnostic.</summary>
    public List<string> Problems { get; } = [];

    /// <summary>Operations so far, read by the main thread while the worker runs (a progress hint).</summary>
    public long OperationsSoFar => Volatile.Read(ref _progress); // Acquire: pairs with the worker's release.

    private long _progress;

    /// <summary>Starts the worker's thread.</summary>
    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "drill-" + cpu };
        _thread.Start();
    }

    /// <summary>Tells the worker to stop, and waits for it to check and free what it holds.</summary>
    public void StopAndJoin()
    {
        _stop = true;
        _thread?.Join();
    }

    private void Run()
    {
        try
        {
            Native.PinCurrentThread(cpu);
            while (!_stop)
            {
                Step();
                Volatile.Write(ref _progress, Operations); // Release: a progress hint for the main thread.
            }

            foreach ((nint address, int bytes, int s) in _objects)
                FreeObject(address, bytes, s);
            foreach ((MovableBuffer buffer, int s) in _buffers)
                FreeBuffer(buffer, s);
            _objects.Clear();
            _buffers.Clear();
            allocator.FlushCurrentThread();
        }
#pragma warning disable CA1031 // Reported by the drill as this worker's problem.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Problems.Add($"cpu {cpu}: {ex}");
        }
    }

    private void Step()
    {
        Operations++;
        switch (_random.Next(8))
        {
            case < 4:
                // Small objects: most of the traffic, through magazines and per-CPU caches.
                if (_objects.Count >= MaxLiveObjects)
                    FreeRandomObject();
                AllocateObject(_random.Next(1, 2049));
                break;
            case < 6:
                // Large: page runs of the buddy allocator.
                if (_objects.Count >= MaxLiveObjects)
                    FreeRandomObject();
                AllocateObject(_random.Next(33 << 10, 257 << 10));
                break;
            case 6:
                if (_buffers.Count >= MaxLiveBuffers)
                    FreeRandomBuffer();
                AllocateBuffer(_random.Next(1, 129 << 10));
                break;
            default:
                // Pin a buffer a migration may be moving, and check it came through intact.
                if (_buffers.Count > 0)
                {
                    (MovableBuffer buffer, int s) = _buffers[_random.Next(_buffers.Count)];
                    using MovablePin pin = buffer.Pin();
                    Check(pin.Span, s, "movable buffer (pinned)");
                }

                break;
        }
    }

    private void AllocateObject(int bytes)
    {
        void* p = allocator.TryAllocate((nuint)bytes);
        if (p == null)
        {
            Failures++;
            return;
        }

        int s = _random.Next();
        Fill(new Span<byte>(p, bytes), s);
        _objects.Add(((nint)p, bytes, s));
    }

    private void FreeRandomObject()
    {
        int i = _random.Next(_objects.Count);
        (nint address, int bytes, int s) = _objects[i];
        _objects[i] = _objects[^1];
        _objects.RemoveAt(_objects.Count - 1);
        FreeObject(address, bytes, s);
    }

    private void FreeObject(nint address, int bytes, int s)
    {
        Check(new ReadOnlySpan<byte>((void*)address, bytes), s, "object");
        allocator.Free((void*)address);
    }

    private void AllocateBuffer(int bytes)
    {
        MovableBuffer? buffer = allocator.TryAllocateMovable(bytes);
        if (buffer is null)
        {
            Failures++;
            return;
        }

        int s = _random.Next();
        using (MovablePin pin = buffer.Pin())
            Fill(pin.Span, s);
        _buffers.Add((buffer, s));
    }

    private void FreeRandomBuffer()
    {
        int i = _random.Next(_buffers.Count);
        (MovableBuffer buffer, int s) = _buffers[i];
        _buffers[i] = _buffers[^1];
        _buffers.RemoveAt(_buffers.Count - 1);
        FreeBuffer(buffer, s);
    }

    private void FreeBuffer(MovableBuffer buffer, int s)
    {
        using (MovablePin pin = buffer.Pin())
            Check(pin.Span, s, "movable buffer");
        buffer.Free();
    }

    private void Check(ReadOnlySpan<byte> bytes, int s, string what)
    {
        int bad = Pattern.FirstMismatch(bytes, s);
        if (bad < 0)
            return;
        Mismatches++;
        if (Problems.Count < 8)
            Problems.Add($"cpu {cpu}: {what} of {bytes.Length} B differs at byte {bad}");
    }

    private static void Fill(Span<byte> bytes, int s) => Pattern.Fill(bytes, s);
}

/// <summary>The bytes the drill writes: a cheap function of a seed and the offset, so any moved, lost or torn byte is seen.</summary>
internal static class Pattern
{
    public static void Fill(Span<byte> bytes, int seed)
    {
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] = At(seed, i);
    }

    /// <summary>The first offset whose byte is not the pattern's, or -1.</summary>
    public static int FirstMismatch(ReadOnlySpan<byte> bytes, int seed)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != At(seed, i))
                return i;
        }

        return -1;
    }

    // The offset's high bits too, so a page copied to the wrong offset does not match.
    private static byte At(int seed, int offset) => (byte)(seed + (offset * 31) + (offset >> 12));
}
