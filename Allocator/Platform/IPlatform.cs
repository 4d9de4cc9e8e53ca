namespace Numalloc.Platform;

/// <summary>Placeholder until the platform seam lands.</summary>
internal interface IPlatform
{
}
