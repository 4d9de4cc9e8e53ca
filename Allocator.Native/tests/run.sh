#!/usr/bin/env bash
# C tests of libnumalloc: builds both libraries (eng/native.sh), then compiles and runs every
# tests/test_*.c against the shared library, the shared library with AddressSanitizer, and
# the static library (link line from LINK.txt); checks how both libraries link and what they
# need at run time (linkage.c, from other directories, with no LD_LIBRARY_PATH; NEEDED lists
# of system libraries only); checks that the public header compiles as C89, C99 and C++;
# checks the InAllocator/Pending order in the libraries' machine code (check-fastpath-order.py)
# and that every export is guarded (check-export-guard.py). Ends with one line
# "c-tests: P passed, F failed" summing every check of every variant (a build failure counts
# as one failure); exits 1 on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
native="$root/artifacts/native"
build="$native/tests"
include="$root/Allocator.Native/include"
cflags=(-std=c99 -Wall -Wextra -Werror -O1 -g -pthread "-I$include" "-I$root/Allocator.Native/bench")
passed=0
failed=0

# What the checks need on a fresh Debian machine, installed from apt when missing.
source "$root/eng/common.sh"
set +e
ensure_apt gcc g++ binutils python3

summary() {
    echo "c-tests: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit $?
}

# One check outside a test program: $1 = description, rest = command.
check() {
    local what="$1"; shift
    local log
    if log="$("$@" 2>&1)"; then
        passed=$((passed + 1)); echo "ok - $what"
    else
        failed=$((failed + 1)); echo "not ok - $what"; printf '%s\n' "$log" | sed 's/^/#   /'
    fi
}

# Runs a compiled test; adds the counts from its "c-tests:" line. A crash, a missing summary
# or a non-zero exit with no failed check counts as one more failure.
run_test() { # $1 = variant label, $2 = binary, environment assignments may follow
    local label="$1" bin="$2"; shift 2
    local log rc p f
    echo "# $label"
    log="$(env "$@" "$bin" 2>&1)"; rc=$?
    printf '%s\n' "$log" | grep -v '^c-tests:' | sed 's/^/  /'
    read -r p f < <(printf '%s\n' "$log" | sed -n 's/^c-tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -n1)
    if [[ -z "${p:-}" ]]; then
        failed=$((failed + 1)); echo "not ok - $label: no summary line (exit $rc)"; return
    fi
    passed=$((passed + p)); failed=$((failed + f))
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        failed=$((failed + 1)); echo "not ok - $label: exit $rc with no failed check"
    fi
}

# Compiles, then runs; a compile failure is one failure. $1 = label, $2 = binary, rest = gcc args.
build_and_run() {
    local label="$1" bin="$2"; shift 2
    local log
    if ! log="$(gcc "$@" -o "$bin" 2>&1)"; then
        failed=$((failed + 1)); echo "not ok - $label: build failed"; printf '%s\n' "$log" | sed 's/^/#   /'
        return
    fi
    run_test "$label" "$bin" "${run_env[@]}"
}

if ! bash "$root/eng/native.sh"; then
    failed=$((failed + 1)); echo "not ok - eng/native.sh failed"; summary
fi
mkdir -p "$build"
read -r -a static_link < <(grep -v '^#' "$native/static/LINK.txt")

# ASan: the runtime's process-lifetime mallocs look leaked to LeakSanitizer (lsan.supp says
# why); its signal handlers coexist with ASan's default options.
asan_env=("LSAN_OPTIONS=suppressions=$here/lsan.supp")

shopt -s nullglob
for src in "$here"/test_*.c; do
    name="$(basename "$src" .c)"
    # Binaries live in artifacts/native/tests/: $ORIGIN/../shared finds libnumalloc.so and
    # keeps the tree relocatable, as a program placed beside the .so would use $ORIGIN.
    run_env=()
    build_and_run "$name (shared)" "$build/$name" "${cflags[@]}" "$src" \
        "-L$native/shared" -lnumalloc "-Wl,-rpath,\$ORIGIN/../shared"
    run_env=("${asan_env[@]}")
    build_and_run "$name (shared, ASan)" "$build/$name.asan" "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer \
        "$src" "-L$native/shared" -lnumalloc "-Wl,-rpath,\$ORIGIN/../shared"
    run_env=()
    build_and_run "$name (static)" "$build/$name.static" "${cflags[@]}" "$src" "${static_link[@]}"
done

# Linkage: what each library needs at run time. The native build takes the mmap family from
# libc (Allocator/Platform/MmapFamily.cs), so neither library may load anything beyond the
# system's C runtime: no libMonoPosixHelper.so, nothing found through LD_LIBRARY_PATH.
echo "# linkage"
# $1 = ELF file; succeeds when every DT_NEEDED entry is a system C runtime library.
needs_only_system_libs() {
    local needed lib
    needed="$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')" || return 1
    [[ -n "$needed" ]] || { echo "no NEEDED entries read from $1"; return 1; }
    echo "NEEDED: $(tr '\n' ' ' <<<"$needed")"
    for lib in $needed; do
        case "$lib" in
            libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux-*) ;;
            *) echo "$1 needs $lib"; return 1 ;;
        esac
    done
}
# $1 = file; succeeds when it names no Mono.Posix helper (which would be dlopened at run time).
names_no_mono_posix_helper() {
    ! grep -c -a 'MonoPosixHelper' "$1"
}
check "libnumalloc.so: NEEDED lists system C runtime libraries only" needs_only_system_libs "$native/shared/libnumalloc.so"
check "libnumalloc.so: does not name libMonoPosixHelper (nothing to dlopen beside it)" names_no_mono_posix_helper "$native/shared/libnumalloc.so"
check "libnumalloc.a: does not name libMonoPosixHelper" names_no_mono_posix_helper "$native/static/libnumalloc.a"
check "artifacts/native/shared ships no libMonoPosixHelper.so" test ! -e "$native/shared/libMonoPosixHelper.so"
# ILC compiled the libc family and folded the Mono.Posix one away (symbols of the .so.dbg).
libc_family_only() {
    local syms
    syms="$(nm "$native/shared/libnumalloc.so.dbg")" || return 1
    grep -q 'Numalloc_Platform_LibcMmapFamily__MapInaccessible' <<<"$syms" || { echo "no LibcMmapFamily code"; return 1; }
    ! grep -E 'MonoPosixMmapFamily|Mono_Unix' <<<"$syms" | head -n 5 | grep .
}
check "libnumalloc.so: the libc mmap family compiled in, no Mono.Posix code (ILC folded the switch)" libc_family_only

# The .so copied alone into lib/, the program built in bin/ with an rpath to it: no
# LD_LIBRARY_PATH, and nothing else in lib/ for the loader to find.
link_dir="$build/linkage"
rm -rf "$link_dir"
mkdir -p "$link_dir/lib" "$link_dir/bin"
cp "$native/shared/libnumalloc.so" "$link_dir/lib/"
run_env=(-u LD_LIBRARY_PATH)
build_and_run "linkage.c (libnumalloc.so alone in another directory, no LD_LIBRARY_PATH)" "$link_dir/bin/linkage" \
    "${cflags[@]}" "$here/linkage.c" "-L$link_dir/lib" -lnumalloc "-Wl,-rpath,\$ORIGIN/../lib"
# The .a with the documented line, read back from LINK.txt the way a user would, run with an
# empty LD_LIBRARY_PATH from a directory that holds nothing else.
run_env=(LD_LIBRARY_PATH=)
build_and_run "linkage.c (libnumalloc.a, LINK.txt line, empty LD_LIBRARY_PATH)" "$link_dir/bin/linkage.static" \
    "${cflags[@]}" "$here/linkage.c" "${static_link[@]}"
check "linkage.c linked with libnumalloc.a: NEEDED lists system C runtime libraries only" \
    needs_only_system_libs "$link_dir/bin/linkage.static"

# The fast paths' thread slot (Allocator.Native/native/thread_slot.c): an initial-exec TLS
# variable, so the .so is marked STATIC_TLS and a dlopen() must still succeed (glibc's surplus);
# the program is not linked against the library. And the point of it: na_malloc and na_free
# reach their thread's set through the slot, with no call to __tls_get_addr of their own.
run_env=("NA_LIBRARY=$native/shared/libnumalloc.so")
build_and_run "dlopen_slot.c (libnumalloc.so dlopen()ed, the thread slot per thread)" "$build/dlopen_slot" \
    "${cflags[@]}" "$here/dlopen_slot.c" -ldl
check "libnumalloc.so: DF_STATIC_TLS set (the thread slot is initial-exec)" \
    bash -c "readelf -d '$native/shared/libnumalloc.so' | grep -q 'FLAGS).*STATIC_TLS'"
check "libnumalloc.so: na_malloc and na_free call the thread slot, not __tls_get_addr" \
    python3 "$here/check-thread-slot.py" "$native/shared/libnumalloc.so"
# Rejected for the right reason: the exports as the build before the slot compiled them.
rejects_tls_get_addr() {
    local log rc
    log="$(python3 "$here/check-thread-slot.py" --from-file "$here/fixtures/exports-tls-get-addr.objdump" \
        --slot-address d4b0 2>&1)"; rc=$?
    printf '%s\n' "$log"
    [[ $rc -eq 1 && "$(grep -c ': FAIL - calls __tls_get_addr' <<<"$log")" -eq 2 ]]
}
check "thread-slot checker rejects exports that call __tls_get_addr (fixtures/exports-tls-get-addr.objdump)" rejects_tls_get_addr

# The export guard (Allocator.Native/ExportGuard.cs): every export's body is one try with a
# catch (Exception), so no exception reaches C; the checker must reject each way of breaking it.
echo "# export guard"
guard="$here/check-export-guard.py"
check "every [UnmanagedCallersOnly] export is guarded (check-export-guard.py)" python3 "$guard" "$root/Allocator.Native"
rejects_unguarded() {
    local log rc
    log="$(python3 "$guard" "$here/fixtures/export-unguarded.cs.txt" 2>&1)"; rc=$?
    printf '%s\n' "$log"
    [[ $rc -eq 1 && "$(grep -c '^FAIL ' <<<"$log")" -eq 5 && "$(grep -c '^ok ' <<<"$log")" -eq 2 ]] \
        && grep -q '^ok .*: Guarded$' <<<"$log" && grep -q '^ok .*: Constant$' <<<"$log"
}
check "export-guard checker rejects the 5 unguarded exports of fixtures/export-unguarded.cs.txt, accepts the 2 guarded" rejects_unguarded

echo "# headers"
for h in "$include/numalloc.h" "$root/Allocator.Native/bench/na_bench.h"; do
    hn="$(basename "$h")"
    check "$hn compiles as C89 (-pedantic)" gcc -x c -std=c89 -pedantic -Wall -Wextra -Werror -fsyntax-only "$h"
    check "$hn compiles as C99 (-pedantic)" gcc -x c -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only "$h"
    check "$hn compiles as C++ (-pedantic)" g++ -x c++ -pedantic -Wall -Wextra -Werror -fsyntax-only "$h"
done
# extern "C" works: a C++ program links against the C symbol and runs.
cxx_link() {
    printf '#include "numalloc.h"\nint main() { return na_node_count() >= 1 ? 0 : 1; }\n' |
        g++ -x c++ -Wall -Wextra -Werror "-I$include" - -o "$build/cxx_link" \
            "-L$native/shared" -lnumalloc "-Wl,-rpath,\$ORIGIN/../shared" && "$build/cxx_link"
}
check "numalloc.h: a C++ program links and calls na_node_count" cxx_link

# DESIGN.md "Caches" / "Memory ordering", the ILC half: in the NativeAOT machine code of the
# page fast paths (CachedPageAllocator.AllocPages/FreePages, MagazineSet.Enter inlined), the
# owner's InAllocator = 1 store comes before its Pending load. Checked in both libraries, and
# the checker must reject a fixture where the load comes first.
echo "# ILC fast-path memory order"
order="$here/check-fastpath-order.py"
check "ILC fast path: InAllocator store before Pending load (libnumalloc.a)" python3 "$order" "$native/static/libnumalloc.a"
check "ILC fast path: InAllocator store before Pending load (libnumalloc.so)" python3 "$order" "$native/shared/libnumalloc.so"
# Rejected for the right reason: exit 1 (not a tool error) and AllocPages named as reordered.
rejects_reordered() {
    local log rc
    log="$(python3 "$order" --from-file "$here/fixtures/fastpath-reordered.objdump" \
        --symbol Numalloc_Numalloc_Caches_CachedPageAllocator__AllocPages \
        --symbol Numalloc_Numalloc_Caches_CachedPageAllocator__FreePages 2>&1)"; rc=$?
    printf '%s\n' "$log"
    [[ $rc -eq 1 ]] && grep -q '^AllocPages: FAIL - the load of Pending comes BEFORE' <<<"$log" \
        && grep -q '^FreePages: ok' <<<"$log"
}
check "ILC fast-path checker rejects a reordered disassembly (fixtures/fastpath-reordered.objdump)" rejects_reordered

summary
