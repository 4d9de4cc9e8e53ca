namespace Numalloc.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        string verb = args.Length > 0 ? args[0] : "";
        switch (verb)
        {
            case "drill":
                // The drill needs the page allocator, hot-remove and the admin API (issues 4, 6, 8).
                Console.Error.WriteLine("drill: not available yet: the hot-remove drill lands with the hotplug work (see README, 'Status').");
                return 2;
            default:
                Console.Error.WriteLine("usage: Numalloc.Bench drill [options]");
                return 64;
        }
    }
}
