namespace Numalloc.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        Console.WriteLine("numalloc bench: nothing yet");
        return args.Length;
    }
}
