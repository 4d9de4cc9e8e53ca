namespace Numalloc.Bench.Benchmarks;

/// <summary>
/// The classic multi-thread allocator workloads, each a fixed number of operations per thread so
/// the benchmark reports time per operation: private churn; producer/consumer with every object
/// freed on another thread (after xmalloc-test, Lever and Boreham 2000); and server-style random
/// replacement in a slot array handed to the next thread each round (after larson, Larson and
/// Krishnan 1998).
/// </summary>
internal static unsafe class ThroughputWorkloads
{
    /// <summary>Operations (an allocation and its free) each thread does per invocation.</summary>
    public const int OpsPerThread = 16 * 1024;

    private const int Batch = 64;

    /// <summary>Each thread allocates a batch of random small sizes and frees it, its own objects only.</summary>
    public static void PrivateChurn<T>(T allocator, int worker) where T : struct, IRawAllocator
    {
        void** batch = stackalloc void*[Batch];
        uint state = (uint)(worker * 2654435761u) | 1;
        for (int done = 0; done < OpsPerThread; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
                Touch(batch[i] = allocator.Allocate(SmallSize(ref state)));
            for (int i = 0; i < Batch; i++)
                allocator.Free(batch[i]);
        }
    }

    /// <summary>
    /// Shared state of the producer/consumer workload: one single-producer single-consumer ring per
    /// pair of threads (producer 2k, consumer 2k+1; a lone thread plays both parts).
    /// </summary>
    internal sealed class ProducerConsumerRings
    {
        private const int Capacity = 1024; // power of two
        private readonly nint[][] _slots;
        private readonly long[] _heads, _tails; // 16 longs apart: no false sharing between rings

        public ProducerConsumerRings(int threads)
        {
            int rings = Math.Max(1, threads / 2);
            _slots = new nint[rings][];
            for (int i = 0; i < rings; i++)
                _slots[i] = new nint[Capacity];
            _heads = new long[rings * 16];
            _tails = new long[rings * 16];
        }

        public void Run<T>(T allocator, int worker, int threads) where T : struct, IRawAllocator
        {
            uint state = (uint)(worker * 2654435761u) | 1;
            if (threads == 1)
            {
                for (int i = 0; i < OpsPerThread; i++)
                {
                    void* p = allocator.Allocate(SmallSize(ref state));
                    Touch(p);
                    allocator.Free(p);
                }
                return;
            }
            if (worker >= (threads / 2) * 2)
            {
                PrivateChurn(allocator, worker); // the odd thread out keeps busy on its own objects
                return;
            }

            int ring = worker / 2;
            nint[] slots = _slots[ring];
            ref long head = ref _heads[ring * 16];
            ref long tail = ref _tails[ring * 16];
            if (worker % 2 == 0)
            {
                for (long i = 0; i < OpsPerThread; i++)
                {
                    void* p = allocator.Allocate(SmallSize(ref state));
                    Touch(p);
                    // Wait for room: the consumer frees as fast as it can.
                    while (i - Volatile.Read(ref tail) >= Capacity)
                        Thread.SpinWait(8);
                    slots[i & (Capacity - 1)] = (nint)p;
                    Volatile.Write(ref head, i + 1); // publishes the slot written above
                }
            }
            else
            {
                for (long i = 0; i < OpsPerThread; i++)
                {
                    while (Volatile.Read(ref head) <= i) // acquire: the slot is written
                        Thread.SpinWait(8);
                    allocator.Free((void*)slots[i & (Capacity - 1)]);
                    Volatile.Write(ref tail, i + 1);
                }
            }
        }

        public void Reset()
        {
            Array.Clear(_heads);
            Array.Clear(_tails);
        }
    }

    /// <summary>
    /// State of the larson-style workload: one slot array per thread, each full of live objects;
    /// every invocation hands array k to thread k + round, which replaces random slots (freeing
    /// objects another thread allocated).
    /// </summary>
    internal sealed class LarsonSlots
    {
        public const int SlotsPerThread = 1024;
        private readonly nint[][] _arrays;
        private int _round;

        public LarsonSlots(int threads)
        {
            _arrays = new nint[threads][];
            for (int i = 0; i < threads; i++)
                _arrays[i] = new nint[SlotsPerThread];
        }

        public void Fill<T>(T allocator) where T : struct, IRawAllocator
        {
            uint state = 12345;
            foreach (nint[] array in _arrays)
            {
                for (int i = 0; i < array.Length; i++)
                    array[i] = (nint)allocator.Allocate(SmallSize(ref state));
            }
        }

        /// <summary>Moves every array on to the next thread; call between invocations.</summary>
        public void NextRound() => _round++;

        public void Run<T>(T allocator, int worker) where T : struct, IRawAllocator
        {
            nint[] array = _arrays[(worker + _round) % _arrays.Length];
            uint state = (uint)((worker + 1) * 2654435761u) ^ (uint)_round | 1;
            for (int i = 0; i < OpsPerThread; i++)
            {
                uint slot = NextRandom(ref state) & (SlotsPerThread - 1);
                allocator.Free((void*)array[slot]);
                void* p = allocator.Allocate(SmallSize(ref state));
                Touch(p);
                array[slot] = (nint)p;
            }
        }

        public void Release<T>(T allocator) where T : struct, IRawAllocator
        {
            foreach (nint[] array in _arrays)
            {
                foreach (nint p in array)
                    allocator.Free((void*)p);
                Array.Clear(array);
            }
        }
    }

    private static uint NextRandom(ref uint state)
    {
        // xorshift32: cheap and deterministic per thread.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        return state;
    }

    private static nuint SmallSize(ref uint state)
    {
        // Sizes 16..1024, skewed small like real heaps.
        uint r = NextRandom(ref state) & 1023;
        return 16 + (r * r >> 10);
    }

    private static void Touch(void* p) => *(byte*)p = 1;
}
