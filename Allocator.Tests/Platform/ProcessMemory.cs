using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Numalloc.Tests.Platform;

/// <summary>
/// Looks at this process's address space from outside the memory itself, so a test can prove
/// a range is inaccessible without touching it (a touch would kill the test host).
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe class ProcessMemory
{
    /// <summary>The permissions ("rw-p", "---p") of the mapping containing <paramref name="address"/>, or null if unmapped.</summary>
    public static string? ProtectionAt(nint address)
    {
        foreach (var (start, end, permissions) in ReadMaps())
        {
            if ((nuint)address >= start && (nuint)address < end)
            {
                return permissions;
            }
        }

        return null;
    }

    /// <summary>The permissions of every page of a range, from /proc/self/maps (null where unmapped).</summary>
    public static string?[] ProtectionOfPages(void* address, nuint sizeBytes, nuint pageSize)
    {
        var maps = ReadMaps();
        var result = new string?[(int)(sizeBytes / pageSize)];
        for (int i = 0; i < result.Length; i++)
        {
            nuint page = (nuint)address + ((nuint)i * pageSize);
            foreach (var (start, end, permissions) in maps)
            {
                if (page >= start && page < end)
                {
                    result[i] = permissions;
                    break;
                }
            }
        }

        return result;
    }

    /// <summary>True when any mapping in /proc/self/maps overlaps the range.</summary>
    public static bool IsAnyPartMapped(void* address, nuint sizeBytes)
    {
        nuint first = (nuint)address;
        nuint last = first + sizeBytes;
        foreach (var (start, end, _) in ReadMaps())
        {
            if (start < last && end > first)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The /proc/self/maps entries that overlap the range, as the kernel reports them now.</summary>
    public static List<(nuint Start, nuint End, string Permissions)> MappingsOverlapping(void* address, nuint sizeBytes)
    {
        nuint first = (nuint)address;
        nuint last = first + sizeBytes;
        return ReadMaps().Where(m => m.Start < last && m.End > first).ToList();
    }

    /// <summary>How many pages of the range are resident, by mincore.</summary>
    public static int ResidentPageCount(void* address, nuint sizeBytes, nuint pageSize)
    {
        int pages = (int)(sizeBytes / pageSize);
        byte[] vector = new byte[pages];
        fixed (byte* residency = vector)
        {
            if (Interop.Libc.Mincore(address, sizeBytes, residency) != 0)
            {
                throw new InvalidOperationException($"mincore failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        int resident = 0;
        foreach (byte b in vector)
        {
            resident += b & 1;
        }

        return resident;
    }

    /// <summary>This process's resident set in bytes: the second field of /proc/self/statm, in pages.</summary>
    public static long ResidentBytes()
    {
        string[] fields = File.ReadAllText("/proc/self/statm").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(fields[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
    }

    private static List<(nuint Start, nuint End, string Permissions)> ReadMaps()
    {
        var result = new List<(nuint, nuint, string)>();
        foreach (string line in File.ReadAllLines("/proc/self/maps"))
        {
            // "7f2c4a000000-7f2c4a200000 ---p 00000000 00:00 0"
            string[] fields = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            string[] bounds = fields[0].Split('-');
            result.Add((
                nuint.Parse(bounds[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                nuint.Parse(bounds[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                fields[1]));
        }

        return result;
    }
}
