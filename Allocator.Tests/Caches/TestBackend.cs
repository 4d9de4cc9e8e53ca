using Numalloc.Caches;

namespace Numalloc.Tests.Caches;

/// <summary>
/// A backend holding <c>itemCount</c> unique items (address-like values 16, 32, …), under a lock, that
/// records every misuse: a flush of an item it already holds (a double free), or of an item that
/// is not its own.
/// </summary>
internal sealed class TestBackend : ICacheBackend
{
    private readonly Lock _lock = new();
    private readonly nint[] _free;
    private readonly bool[] _isFree;
    private readonly bool[] _isolated;
    private readonly nint _firstItem;
    private int _freeCount;
    private int _errors;

    public TestBackend(int itemCount, int firstId = 0)
    {
        _free = new nint[itemCount];
        _isFree = new bool[itemCount];
        _isolated = new bool[itemCount];
        _firstItem = (nint)(firstId + 1) * 16;
        for (int i = 0; i < itemCount; i++)
        {
            // Hand out low items last, so the first refills take the high ones (any order would do).
            _free[i] = ItemAt(i);
            _isFree[i] = true;
        }

        _freeCount = itemCount;
    }

    public int ItemCount => _free.Length;

    public int FreeCount
    {
        get
        {
            lock (_lock)
            {
                return _freeCount;
            }
        }
    }

    public int Errors => Volatile.Read(ref _errors);

    public int RefillCalls { get; private set; }

    public int FlushCalls { get; private set; }

    public int ItemsFlushed { get; private set; }

    public int IsolatedFlushed { get; private set; }

    public nint ItemAt(int index) => _firstItem + (nint)index * 16;

    public int IndexOf(nint item) => (int)((item - _firstItem) / 16);

    public bool Holds(nint item)
    {
        lock (_lock)
        {
            return _isFree[IndexOf(item)];
        }
    }

    public void Isolate(nint item)
    {
        lock (_lock)
        {
            _isolated[IndexOf(item)] = true;
        }
    }

    public int RefillBatch(int cpu, Span<nint> into)
    {
        lock (_lock)
        {
            RefillCalls++;
            int produced = 0;
            while (produced < into.Length && _freeCount > 0)
            {
                nint item = _free[--_freeCount];
                _isFree[IndexOf(item)] = false;
                into[produced++] = item;
            }

            return produced;
        }
    }

    public void FlushBatch(ReadOnlySpan<nint> items)
    {
        lock (_lock)
        {
            FlushCalls++;
            foreach (nint item in items)
            {
                int index = IndexOf(item);
                if ((uint)index >= (uint)_free.Length || item % 16 != 0 || _isFree[index])
                {
                    _errors++;
                    continue;
                }

                if (_isolated[index])
                {
                    IsolatedFlushed++;
                }

                _isFree[index] = true;
                _free[_freeCount++] = item;
                ItemsFlushed++;
            }
        }
    }

    public bool IsCacheable(nint item) => !Volatile.Read(ref _isolated[IndexOf(item)]);
}
