namespace Numalloc;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>Pages may not be accessed.</summary>
        internal const int PROT_NONE = 0x0;

        /// <summary>Pages may be read.</summary>
        internal const int PROT_READ = 0x1;

        /// <summary>Pages may be written.</summary>
        internal const int PROT_WRITE = 0x2;

        /// <summary>Private copy-on-write mapping.</summary>
        internal const int MAP_PRIVATE = 0x02;

        /// <summary>Not backed by a file; reads back zero.</summary>
        internal const int MAP_ANONYMOUS = 0x20;

        /// <summary>Do not reserve swap (no overcommit charge) for the mapping.</summary>
        internal const int MAP_NORESERVE = 0x4000;

        /// <summary>What <c>mmap</c> returns on failure: <c>(void *)-1</c>.</summary>
        internal static readonly nint MAP_FAILED = -1;

        /// <summary>
        /// <c>void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)</c>;
        /// <see cref="MAP_FAILED"/> and errno on failure. off_t is 64-bit on every LP64 Linux.
        /// The flag values above are the x86-64 and arm64 ones (asm-generic/mman-common.h).
        /// </summary>
        [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
        internal static unsafe partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

        /// <summary><c>int munmap(void *addr, size_t length)</c>; 0 or -1 and errno.</summary>
        [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
        internal static unsafe partial int Munmap(void* address, nuint length);

        /// <summary><c>int mprotect(void *addr, size_t length, int prot)</c>; 0 or -1 and errno.</summary>
        [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
        internal static unsafe partial int Mprotect(void* address, nuint length, int protection);
    }
}
