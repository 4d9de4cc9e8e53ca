using System.Collections.Immutable;
using System.Globalization;
using Numalloc.Pages;

namespace Numalloc.Hotplug;

/// <summary>The result of a hotplug operation (the design's table; C return in brackets).</summary>
public enum HotplugStatus
{
    /// <summary>Done (0).</summary>
    Ok = 0,

    /// <summary>Unmovable pages still in use after the short grace; rolled back (-EBUSY).</summary>
    Busy = 1,

    /// <summary>Another hotplug operation is running; nothing was done (-EAGAIN).</summary>
    InProgress = 2,

    /// <summary>A listener vetoed the offline; nothing changed (-ECANCELED).</summary>
    Cancelled = 3,

    /// <summary>Pinned movable buffers were not unpinned in time; rolled back (-ETIMEDOUT).</summary>
    TimedOut = 4,

    /// <summary>Unknown target, wrong state, or the last online Normal memory; nothing changed (-EINVAL).</summary>
    Invalid = 5,
}

/// <summary>What a hotplug operation is aimed at.</summary>
public enum HotplugTargetKind
{
    /// <summary>One memory block.</summary>
    Block = 0,

    /// <summary>One zone of one node (all its online blocks).</summary>
    Zone = 1,

    /// <summary>Every zone of one node.</summary>
    Node = 2,
}

/// <summary>The target of a hotplug operation.</summary>
/// <param name="Kind">Block, zone or node.</param>
/// <param name="Id">The block id (Block) or node id (Zone, Node).</param>
/// <param name="Zone">The zone (Zone; for an online of a Block, the zone it joins).</param>
public readonly record struct HotplugTarget(HotplugTargetKind Kind, int Id, ZoneType Zone)
{
    /// <summary>A memory block.</summary>
    public static HotplugTarget Block(int block, ZoneType zone = ZoneType.Normal) => new(HotplugTargetKind.Block, block, zone);

    /// <summary>A zone of a node.</summary>
    public static HotplugTarget ZoneOf(int node, ZoneType zone) => new(HotplugTargetKind.Zone, node, zone);

    /// <summary>A whole node.</summary>
    public static HotplugTarget Node(int node) => new(HotplugTargetKind.Node, node, ZoneType.Normal);

    /// <summary>"block 5", "node 1 movable", "node 2".</summary>
    public override string ToString() => Kind switch
    {
        HotplugTargetKind.Block => string.Create(CultureInfo.InvariantCulture, $"block {Id}"),
        HotplugTargetKind.Zone => string.Create(CultureInfo.InvariantCulture, $"node {Id} {Zone.ToString().ToLowerInvariant()}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"node {Id}"),
    };
}

/// <summary>The outcome of one hotplug operation.</summary>
/// <param name="Status">Ok, Busy, InProgress, Cancelled, TimedOut or Invalid.</param>
/// <param name="Count">Busy: unmovable pages still in use; TimedOut: movable buffers not migrated (pinned); else 0.</param>
/// <param name="Message">What happened, in words (why it is Invalid, who vetoed).</param>
/// <param name="Blocks">The blocks taken offline or onlined (empty when nothing changed).</param>
/// <param name="PagesMigrated">Pages of movable buffers moved by this operation.</param>
/// <param name="Rounds">Drain-and-migrate rounds an offline ran.</param>
/// <param name="Duration">How long the operation took.</param>
public sealed record HotplugResult(HotplugStatus Status, long Count, string Message, ImmutableArray<int> Blocks, long PagesMigrated, int Rounds, TimeSpan Duration)
{
    /// <summary>Whether the status is <see cref="HotplugStatus.Ok"/>.</summary>
    public bool IsOk => Status == HotplugStatus.Ok;

    /// <summary>The C ABI's return value (0, -EBUSY, -EAGAIN, -ECANCELED, -ETIMEDOUT, -EINVAL).</summary>
    public int ErrnoValue => Status switch
    {
        HotplugStatus.Ok => 0,
        HotplugStatus.Busy => -16,
        HotplugStatus.InProgress => -11,
        HotplugStatus.Cancelled => -125,
        HotplugStatus.TimedOut => -110,
        _ => -22,
    };
}

/// <summary>The phase an offline is in, as reported to the progress callback.</summary>
public enum HotplugPhase
{
    /// <summary>The blocks are isolated (and the zonelists rebuilt if a zone lost its last block).</summary>
    Isolated = 0,

    /// <summary>Every cache holding memory of the blocks was drained.</summary>
    Drained = 1,

    /// <summary>Movable buffers are being migrated (reported between buffers, never while one is pending).</summary>
    Migrating = 2,

    /// <summary>The blocks are Offline, decommitted and inaccessible.</summary>
    Committed = 3,

    /// <summary>The offline was undone.</summary>
    RolledBack = 4,
}

/// <summary>Progress of an offline.</summary>
/// <param name="Phase">The phase.</param>
/// <param name="Round">The drain-and-migrate round (1-based; 0 before the first).</param>
/// <param name="PagesToMigrate">Pages of movable buffers found in the blocks this round.</param>
/// <param name="PagesMigrated">Pages migrated so far by this operation.</param>
/// <param name="PagesRemaining">Pages of the blocks still in use (movable or not) at the last scan.</param>
public readonly record struct HotplugProgress(HotplugPhase Phase, int Round, long PagesToMigrate, long PagesMigrated, long PagesRemaining);

/// <summary>The events listeners receive, after the kernel's memory notifier (MEM_GOING_OFFLINE and friends).</summary>
public enum HotplugEvent
{
    /// <summary>An offline is about to start; a listener may veto it.</summary>
    GoingOffline = 0,

    /// <summary>The blocks are offline.</summary>
    Offline = 1,

    /// <summary>An offline that was announced was vetoed or rolled back.</summary>
    CancelOffline = 2,

    /// <summary>Blocks came online.</summary>
    Online = 3,
}

/// <summary>One notification to listeners.</summary>
/// <param name="Event">What happened.</param>
/// <param name="Target">The operation's target.</param>
/// <param name="Blocks">The blocks concerned (for GoingOffline: the blocks online in the target now).</param>
public sealed record HotplugNotification(HotplugEvent Event, HotplugTarget Target, ImmutableArray<int> Blocks);

/// <summary>
/// A hotplug listener (the kernel's memory notifier block). Called on the thread running the
/// operation, never while a movable buffer is MigratePending. Override what you need.
/// </summary>
public abstract class HotplugListener
{
    /// <summary>An offline is about to start. Return false to veto it (the offline then returns Cancelled). An exception counts as a veto.</summary>
    public virtual bool OnGoingOffline(HotplugNotification notification) => true;

    /// <summary>The offline committed. Exceptions are ignored.</summary>
    public virtual void OnOffline(HotplugNotification notification)
    {
    }

    /// <summary>An announced offline was vetoed or rolled back. Exceptions are ignored.</summary>
    public virtual void OnCancelOffline(HotplugNotification notification)
    {
    }

    /// <summary>Blocks came online. Exceptions are ignored.</summary>
    public virtual void OnOnline(HotplugNotification notification)
    {
    }
}

/// <summary>One finished hotplug operation, as kept in the history.</summary>
/// <param name="Operation">"offline" or "online".</param>
/// <param name="Target">The target.</param>
/// <param name="Result">The result.</param>
/// <param name="StartedUtc">When it began.</param>
public sealed record HotplugHistoryEntry(string Operation, HotplugTarget Target, HotplugResult Result, DateTime StartedUtc);

/// <summary>
/// The seam through which an offline empties the caches above the page allocator (step 5 of the
/// offline). Each layer that caches memory of the heap is one participant: the page caches
/// (magazines and per-CPU caches of <c>CachedPageAllocator</c>) now, the object layer (object caches
/// and slabs) when it is merged.
/// </summary>
/// <remarks>
/// When it is called, the blocks are already Isolated: every free, flush and refill of every layer
/// checks the block state, so nothing of those blocks enters a cache after the drain. A participant
/// must: return to the zones every item it caches that lies in the isolated blocks
/// (it may drain more), through the exactly-once deferred-work protocol for per-thread caches;
/// release its empty slabs in those blocks; take no hotplug lock; be callable again (an offline
/// repeats the drain every round); and not throw.
/// </remarks>
internal interface IOfflineDrainParticipant
{
    /// <summary>Drains everything this layer caches of <paramref name="isolatedBlocks"/> back to the zones.</summary>
    void DrainForOffline(ReadOnlySpan<int> isolatedBlocks);
}

/// <summary>The steps of an offline a test hook can stop at (<see cref="HotplugController.TestHookAtStep"/>).</summary>
internal enum OfflineStep
{
    /// <summary>After isolation and the zonelist rebuild, before the first drain.</summary>
    Isolated,

    /// <summary>The drain of a round has begun (called before the participants run).</summary>
    DrainBegun,

    /// <summary>The participants of a round have drained.</summary>
    Drained,

    /// <summary>The migration of a round is done, before the commit check.</summary>
    Migrated,
}
