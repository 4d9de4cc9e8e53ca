using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Numalloc.Caches;

namespace Numalloc.Native;

/// <summary>
/// Where <c>na_malloc</c>, <c>na_free</c> and <c>na_free_sized</c> read the calling thread's magazine set.
/// In <c>libnumalloc.so</c> a managed thread-static is a call to <c>__tls_get_addr</c> on every access:
/// ILC compiles thread-statics in a shared library to the general-dynamic TLS model, and .NET 9 has no
/// switch for initial-exec (dotnet/runtime#87642). So the shared library also keeps the pointer in an
/// initial-exec slot of its own (<c>native/thread_slot.c</c>): a direct call and one <c>%fs</c>-relative
/// load. In <c>libnumalloc.a</c> the linker already relaxes the thread-static to a <c>%fs</c>-relative
/// load, and <see cref="Enabled"/> folds to false there.
/// </summary>
/// <remarks>
/// <para>The slot is a copy of <see cref="MagazineRegistry.ThreadSet"/>, which stays the truth. A copy
/// that is null or names another registry's set only sends the fast path to its slow path, which
/// ends in <see cref="Refresh"/>; the one thing that must never be left in it is a set that has been
/// freed, and the only call that frees the calling thread's own set is <c>na_thread_flush</c>, which
/// refreshes the slot too. Sets of other registries are never freed under a live owner (a disposed
/// registry keeps them).</para>
/// <para>The P/Invoke lives in this assembly, which only ILC compiles: the JIT binds a
/// <see cref="SuppressGCTransitionAttribute"/> P/Invoke when it compiles the caller, so in the managed
/// library (no <c>numalloc_thread_slot</c> to bind) the call could not even sit in dead code.</para>
/// </remarks>
internal static unsafe partial class ThreadSetSlot
{
    /// <summary>The AppContext switch (a <c>Trim="true"</c> RuntimeHostConfigurationOption, true in the shared build).</summary>
    internal const string SwitchName = "Numalloc.Native.ThreadSetSlot";

    /// <summary>True in the shared library only; fixed at build time.</summary>
    [FeatureSwitchDefinition(SwitchName)]
    internal static bool Enabled { get; } = AppContext.TryGetSwitch(SwitchName, out bool enabled) && enabled;

    /// <summary>The calling thread's set for a fast path: possibly stale (see the remarks), never freed.</summary>
    internal static MagazineSet* Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Enabled ? *Address() : MagazineRegistry.ThreadSet;
    }

    /// <summary>Copies the thread's set into the slot: at the end of every slow path and of <c>na_thread_flush</c>.</summary>
    internal static void Refresh()
    {
        if (Enabled)
            *Address() = MagazineRegistry.ThreadSet;
    }

    /// <summary>The calling thread's slot: no GC transition, the C function only returns an address.</summary>
    [LibraryImport("numalloc_thread_slot", EntryPoint = "numalloc_thread_set_slot")]
    [SuppressGCTransition]
    private static partial MagazineSet** Address();
}
