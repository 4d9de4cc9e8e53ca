namespace Numalloc.Movable;

/// <summary>What one <see cref="MovableHeap.MigrateOne"/> did.</summary>
internal enum MigrationOutcome
{
    /// <summary>Copied to the new location and republished; the old pages were freed.</summary>
    Migrated,

    /// <summary>The buffer was freed (by its user, or a pending free the migrator completed): nothing to move.</summary>
    Gone,

    /// <summary>Pins did not drain within the window: back to Normal, retry later (after its word changes or a window passes).</summary>
    Pinned,

    /// <summary>No node had room for the copy: back to Normal, retry later.</summary>
    NoRoom,
}
