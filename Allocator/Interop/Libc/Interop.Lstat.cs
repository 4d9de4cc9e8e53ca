using System.Runtime.InteropServices;

namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000;

        /// <summary><c>int lstat(const char *path, struct stat *buf)</c> (a glibc symbol since 2.33); 0 or -1 and errno.</summary>
        [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static unsafe partial int Lstat(string path, byte* statBuffer);

        /// <summary>The <c>st_mode</c> of <paramref name="path"/> (not following a link), or null when lstat fails.</summary>
        internal static unsafe uint? FileModeOf(string path)
        {
            // struct stat is 144 bytes on x86-64 and 128 on arm64; st_mode sits after st_dev and st_ino
            // (and st_nlink on x86-64).
            byte* buffer = stackalloc byte[256];
            if (Lstat(path, buffer) != 0)
                return null;
            int offset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
            return *(uint*)(buffer + offset);
        }
    }
}
