namespace Numalloc.Pages;

/// <summary>The two zones of every node, as the kernel's ZONE_NORMAL and ZONE_MOVABLE.</summary>
public enum ZoneType : byte
{
    /// <summary>All unmovable memory: every raw pointer handed out lives here.</summary>
    Normal = 0,

    /// <summary>Only movable buffers, so every page can be migrated away and the zone taken offline.</summary>
    Movable = 1,
}
