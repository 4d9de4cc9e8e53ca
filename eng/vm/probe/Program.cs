using System.Globalization;

// The probe only ever runs inside the Linux guest.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Numalloc.VmProbe;

/// <summary>
/// Entry point. Without <c>--child</c>: runs every check of <see cref="Checks"/> and prints
/// <c>ok N - ...</c> / <c>not ok N - ...</c> lines and a closing <c>vm-probe: N passed, N failed</c>;
/// the exit status is 0 only when every check passed. With <c>--child fill ...</c>: one step a check
/// runs in a separate process because the kernel may kill it (see <see cref="FillChild"/>).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        ProbeOptions options;
        try
        {
            options = ProbeOptions.Parse(args);
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine("vm-probe: " + ex.Message);
            Console.Error.WriteLine(ProbeOptions.Usage);
            return 2;
        }

        if (options.ChildFill is { } fill)
        {
            return FillChild.Run(options, fill);
        }

        var tap = new Tap(Console.Out);
        var checks = new Checks(options, tap);
        checks.RunAll();
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"vm-probe: {tap.Passed} passed, {tap.Failed} failed"));
        Console.Out.Flush();
        return tap.Failed == 0 && tap.Passed > 0 ? 0 : 1;
    }
}
