#!/usr/bin/env bash
# C tests of libnumalloc: builds both libraries (eng/native.sh), then compiles and runs every
# tests/test_*.c against the shared library, the shared library with AddressSanitizer, and
# the static library (link line from LINK.txt); checks that the public header compiles as
# C89, C99 and C++; checks the InAllocator/Pending order in the libraries' machine code
# (check-fastpath-order.py). Ends with one line "c-tests: P passed, F failed" summing every check of
# every variant (a build failure counts as one failure); exits 1 on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
native="$root/artifacts/native"
build="$native/tests"
include="$root/Allocator.Native/include"
cflags=(-std=c99 -Wall -Wextra -Werror -O1 -g "-I$include")
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
    log="$(python3 "$order" --from-file "$here/fixtures/fastpath-reordered.objdump" 2>&1)"; rc=$?
    printf '%s\n' "$log"
    [[ $rc -eq 1 ]] && grep -q '^AllocPages: FAIL - the load of Pending comes BEFORE' <<<"$log" \
        && grep -q '^FreePages: ok' <<<"$log"
}
check "ILC fast-path checker rejects a reordered disassembly (fixtures/fastpath-reordered.objdump)" rejects_reordered

summary
