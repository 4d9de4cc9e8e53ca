#!/usr/bin/env bash
# Publishes the NativeAOT C library twice:
#   artifacts/native/shared/  libnumalloc.so (needs only the system's C runtime libraries)
#   artifacts/native/static/  libnumalloc.a  + LINK.txt, the exact line to link a C program
# Skips both publishes when no input changed since the last successful run (NATIVE_FORCE=1
# republishes anyway). Prints the output folders on success.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/artifacts/native"
stamp="$out/.inputs.sha256"

command -v dotnet >/dev/null || { echo "native.sh: dotnet not found on PATH" >&2; exit 1; }
command -v gcc >/dev/null || (apt-get update && apt-get install -y gcc)

# Everything the publish reads from the tree: sources (native/ included), projects, shared props, SDK pin, this script.
inputs_hash() {
    {
        find Allocator Allocator.Native -type f \( -name '*.cs' -o -path 'Allocator.Native/native/*' -o -name '*.csproj' -o -name '*.props' -o -name '*.targets' \) \
            -not -path '*/obj/*' -not -path '*/bin/*' -print
        ls Directory.Build.props Directory.Packages.props global.json eng/native.sh 2>/dev/null
    } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
    dotnet --version
}

want="$(inputs_hash)"
if [[ "${NATIVE_FORCE:-0}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" \
      && -f "$out/shared/libnumalloc.so" && -f "$out/static/libnumalloc.a" && -f "$out/static/LINK.txt" ]]; then
    echo "native.sh: inputs unchanged, keeping $out/shared and $out/static"
    exit 0
fi
rm -f "$stamp"

publish() { # $1 = Shared | Static, $2 = output folder
    local start=$SECONDS
    rm -rf "$2"
    dotnet publish Allocator.Native -c Release -r linux-x64 -o "$2" -p:NativeLib="$1" -nologo -clp:NoSummary -v:q
    echo "native.sh: published $1 in $((SECONDS - start)) s"
}

publish Shared "$out/shared"
publish Static "$out/static"

# The ILCompiler runtime pack this publish used, from the restore's assets file.
assets="$root/artifacts/obj/Allocator.Native/project.assets.json"
pkgroot="${NUGET_PACKAGES:-$(sed -n '/"packageFolders"/{n;s/^ *"\([^"]*\)".*/\1/p;}' "$assets")}"
pkgroot="${pkgroot%/}"
ilcver="$(grep -o '"runtime.linux-x64.Microsoft.DotNet.ILCompiler/[^"]*"' "$assets" | head -n1 | sed 's/.*\/\(.*\)"/\1/')"
ilc="$pkgroot/runtime.linux-x64.microsoft.dotnet.ilcompiler/$ilcver"
[[ -n "$ilcver" && -d "$ilc/sdk" ]] || { echo "native.sh: ILCompiler runtime pack not found ($ilc)" >&2; exit 1; }

# What the .so needs at run time: its DT_NEEDED entries must all be system libraries. The
# native build takes the mmap family from libc (Allocator/Platform/MmapFamily.cs), so nothing
# is dlopened beside it and it carries no rpath; the C tests (test_linkage.sh) check both.
needed="$(readelf -d "$out/shared/libnumalloc.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
for lib in $needed; do
    case "$lib" in
        libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux-*) ;;
        *) echo "native.sh: libnumalloc.so needs $lib, not a system library" >&2; exit 1 ;;
    esac
done

# The static link line. Every archive is required (dropping any one leaves undefined
# symbols, checked against ILCompiler 9.0.20); libbootstrapperdll.o must be linked as an
# object, not from an archive: its constructor registers the managed module, and without it
# the first call aborts. InvariantGlobalization (Directory.Build.props) means no ICU and no
# libSystem.Globalization.Native.a; nothing uses compression, TLS or OpenSSL, so no
# libSystem.IO.Compression/Net.Security/Cryptography archives and no zlib. -ldl and -lrt
# are empty on glibc >= 2.34 but needed on older ones.
link="$out/static/libnumalloc.a"
for f in sdk/libbootstrapperdll.o sdk/libRuntime.WorkstationGC.a sdk/libeventpipe-disabled.a \
         sdk/libstandalonegc-disabled.a sdk/libRuntime.VxsortEnabled.a sdk/libstdc++compat.a \
         framework/libSystem.Native.a; do
    [[ -f "$ilc/$f" ]] || { echo "native.sh: missing $ilc/$f" >&2; exit 1; }
    link+=" $ilc/$f"
done
link+=" -pthread -ldl -lrt -lm -Wl,--gc-sections"
{
    echo "# Link a C program against libnumalloc.a (ILCompiler $ilcver): append this after your objects."
    echo "# Example: gcc -Iinclude main.c \$(grep -v '^#' LINK.txt) -o main"
    echo "# The program must call at least one na_* function, or libnumalloc.a is not pulled in and the runtime objects fail to link."
    echo "# The program then needs only the system's C runtime libraries at run time (libc, libm; libstdc++ is not needed)."
    echo "$link"
} > "$out/static/LINK.txt"

echo "$want" > "$stamp"
echo "native.sh: shared -> $out/shared (NEEDED: ${needed% })"
echo "native.sh: static -> $out/static (link line in LINK.txt)"
