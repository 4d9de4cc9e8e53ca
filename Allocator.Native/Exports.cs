namespace Numalloc.Native;

internal static class Exports
{
}
