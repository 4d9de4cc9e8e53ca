using System.Globalization;

namespace Numalloc.Platform;

/// <summary>
/// A test decorator over another platform: counts every call per <see cref="PlatformCall"/> and
/// fails chosen ones with a <see cref="PlatformException"/> (<see cref="PlatformException.IsInjected"/>
/// true), as if the OS had refused. A failed call does not reach the inner platform, so no
/// state changes, as for a real failure. Thread-safe.
/// </summary>
internal sealed unsafe class FaultInjectingPlatform : IPlatform
{
    private static readonly int s_callKinds = Enum.GetValues<PlatformCall>().Length;

    private readonly IPlatform _inner;

    // Calls started so far, per kind (including failed ones): the N in "the Nth call".
    private readonly int[] _callCounts = new int[s_callKinds];

    // Per kind: the first call number that fails (0 = none), the last (int.MaxValue = forever), the errno.
    private readonly int[] _failFrom = new int[s_callKinds];
    private readonly int[] _failTo = new int[s_callKinds];
    private readonly int[] _failErrno = new int[s_callKinds];

    private readonly Lock _configLock = new();

    /// <summary>Wraps <paramref name="inner"/>; the caller keeps owning it.</summary>
    public FaultInjectingPlatform(IPlatform inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
    }

    /// <inheritdoc/>
    public nuint PageSize => _inner.PageSize;

    /// <inheritdoc/>
    public int PossibleCpuCount => _inner.PossibleCpuCount;

    /// <inheritdoc/>
    public int CurrentCpu => _inner.CurrentCpu;

    /// <summary>
    /// Makes the <paramref name="nth"/> call of <paramref name="call"/> (1-based, counting from
    /// construction, failed calls included) throw with <paramref name="errno"/>; calls before and
    /// after go through. Replaces any earlier fault set for that call.
    /// </summary>
    public void FailNth(PlatformCall call, int nth, int errno = Interop.Libc.ENOMEM) => SetFault(call, nth, nth, errno);

    /// <summary>Makes every call of <paramref name="call"/> from the <paramref name="nth"/> on throw with <paramref name="errno"/>.</summary>
    public void FailFrom(PlatformCall call, int nth, int errno = Interop.Libc.ENOMEM) => SetFault(call, nth, int.MaxValue, errno);

    /// <summary>Removes the fault set for <paramref name="call"/>; counting goes on.</summary>
    public void ClearFault(PlatformCall call) => SetFault(call, 0, 0, 0);

    /// <summary>How many calls of <paramref name="call"/> were made so far, failed ones included.</summary>
    public int CallCount(PlatformCall call) =>
        Volatile.Read(ref _callCounts[(int)call]); // pairs with the Interlocked.Increment in Enter: sees every finished call

    /// <inheritdoc/>
    public void* Reserve(nuint sizeBytes, nuint alignmentBytes)
    {
        if (Enter(PlatformCall.Reserve, out int errno))
        {
            PlatformThrowHelper.ThrowErrno(
                "mmap",
                string.Create(CultureInfo.InvariantCulture, $"NULL, {sizeBytes}, align {alignmentBytes}"),
                errno,
                isInjected: true);
        }

        return _inner.Reserve(sizeBytes, alignmentBytes);
    }

    /// <inheritdoc/>
    public void Commit(void* address, nuint sizeBytes)
    {
        InjectRangeFault(PlatformCall.Commit, "commit", address, sizeBytes);
        _inner.Commit(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Decommit(void* address, nuint sizeBytes)
    {
        InjectRangeFault(PlatformCall.Decommit, "decommit", address, sizeBytes);
        _inner.Decommit(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Purge(void* address, nuint sizeBytes)
    {
        InjectRangeFault(PlatformCall.Purge, "madvise", address, sizeBytes);
        _inner.Purge(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Release(void* address, nuint sizeBytes)
    {
        InjectRangeFault(PlatformCall.Release, "munmap", address, sizeBytes);
        _inner.Release(address, sizeBytes);
    }

    /// <inheritdoc/>
    public void Bind(void* address, nuint sizeBytes, int node, BindMode mode)
    {
        if (Enter(PlatformCall.Bind, out int errno))
        {
            PlatformThrowHelper.ThrowBindFailed(address, sizeBytes, node, mode, errno, isInjected: true);
        }

        _inner.Bind(address, sizeBytes, node, mode);
    }

    /// <inheritdoc/>
    public bool TryQueryBinding(void* address, out BindMode mode, out int node)
    {
        if (Enter(PlatformCall.QueryBinding, out int errno))
        {
            PlatformThrowHelper.ThrowRangeCallFailed("get_mempolicy", address, PageSize, errno, isInjected: true);
        }

        return _inner.TryQueryBinding(address, out mode, out node);
    }

    /// <inheritdoc/>
    public void QueryNodeOfPages(ReadOnlySpan<nint> pages, Span<int> nodes)
    {
        if (Enter(PlatformCall.QueryNodeOfPages, out int errno))
        {
            PlatformThrowHelper.ThrowErrno(
                "move_pages",
                string.Create(CultureInfo.InvariantCulture, $"0, {pages.Length} pages, NULL"),
                errno,
                isInjected: true);
        }

        _inner.QueryNodeOfPages(pages, nodes);
    }

    /// <inheritdoc/>
    public int QueryCurrentCpu(out int node)
    {
        if (Enter(PlatformCall.QueryCurrentCpu, out int errno))
        {
            PlatformThrowHelper.ThrowErrno("getcpu", "&cpu, &node, NULL", errno, isInjected: true);
        }

        return _inner.QueryCurrentCpu(out node);
    }

    private void SetFault(PlatformCall call, int from, int to, int errno)
    {
        int kind = CheckCall(call);
        if (from != 0)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(from);
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(errno);
        }

        // The three words of one fault change together; Enter reads them under the same lock.
        lock (_configLock)
        {
            _failFrom[kind] = from;
            _failTo[kind] = to;
            _failErrno[kind] = errno;
        }
    }

    // Throws the injected failure of a range call, if this call is the one set to fail.
    private void InjectRangeFault(PlatformCall call, string callName, void* address, nuint sizeBytes)
    {
        if (Enter(call, out int errno))
        {
            PlatformThrowHelper.ThrowRangeCallFailed(callName, address, sizeBytes, errno, isInjected: true);
        }
    }

    /// <summary>Counts the call and says whether it must fail, and with which errno.</summary>
    private bool Enter(PlatformCall call, out int errno)
    {
        int kind = (int)call;

        // Atomic so concurrent callers each get a distinct call number and none is lost.
        int number = Interlocked.Increment(ref _callCounts[kind]);
        lock (_configLock)
        {
            int from = _failFrom[kind];
            bool fail = from != 0 && number >= from && number <= _failTo[kind];
            errno = fail ? _failErrno[kind] : 0;
            return fail;
        }
    }

    private static int CheckCall(PlatformCall call)
    {
        if ((uint)call >= (uint)s_callKinds)
        {
            throw new ArgumentOutOfRangeException(nameof(call));
        }

        return (int)call;
    }
}
