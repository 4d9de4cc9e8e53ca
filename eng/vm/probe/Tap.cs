using System.Globalization;

namespace Numalloc.VmProbe;

/// <summary>
/// Numbered TAP-like result lines: <c>ok 3 - description</c> or <c>not ok 3 - description</c>
/// followed by <c>#</c> diagnostic lines. eng/numa-vm.sh reads only the closing summary line;
/// the numbered lines are for the person reading the serial log.
/// </summary>
internal sealed class Tap(TextWriter output)
{
    private int _number;

    /// <summary>Lines that said ok.</summary>
    public int Passed { get; private set; }

    /// <summary>Lines that said not ok.</summary>
    public int Failed { get; private set; }

    /// <summary>Reports one result; <paramref name="diagnostic"/> (may be multi-line) is printed under it.</summary>
    public bool Report(bool ok, string description, string? diagnostic = null)
    {
        _number++;
        if (ok)
            Passed++;
        else
            Failed++;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(ok ? "ok" : "not ok")} {_number} - {description}"));
        if (!string.IsNullOrEmpty(diagnostic))
        {
            foreach (string line in diagnostic.Split('\n'))
                output.WriteLine("#   " + line);
        }

        // Flushed per line: if the guest dies mid-run, the serial log still shows how far it got.
        output.Flush();
        return ok;
    }

    /// <summary>A free-form comment line (context for the reader, never a result).</summary>
    public void Comment(string text)
    {
        foreach (string line in text.Split('\n'))
            output.WriteLine("# " + line);
        output.Flush();
    }
}
