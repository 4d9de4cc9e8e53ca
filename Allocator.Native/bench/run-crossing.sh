#!/usr/bin/env bash
# Builds bench/crossing.c against libnumalloc.so and libnumalloc.a (after eng/native.sh),
# runs both (crossings, malloc, and the page fast path from C and inside the library), then the
# C model of the object fast path (bench/floor.c: what its work costs without the runtime), then
# shows how na_bench_tls reaches its thread-static in each build (__tls_get_addr or not).
# Usage: run-crossing.sh [iterations]   (default 50,000,000)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
native="$root/artifacts/native"
build="$native/bench"
iterations="${1:-50000000}"

command -v gcc >/dev/null || (apt-get update && apt-get install -y gcc)
bash "$root/eng/native.sh"
mkdir -p "$build"
read -r -a static_link < <(grep -v '^#' "$native/static/LINK.txt")

cflags=(-std=c99 -O2 -Wall -Wextra -Werror "-I$here" "-I$root/Allocator.Native/include")
gcc "${cflags[@]}" -DNA_LINK='"shared"' "$here/crossing.c" -o "$build/crossing.shared" \
    "-L$native/shared" -lnumalloc "-Wl,-rpath,\$ORIGIN/../shared"
gcc "${cflags[@]}" -DNA_LINK='"static"' "$here/crossing.c" -o "$build/crossing.static" "${static_link[@]}"
# Both builds take the mmap family from libc: nothing to put on LD_LIBRARY_PATH for either.

"$build/crossing.shared" "$iterations"
"$build/crossing.static" "$iterations"

# The floor: the object fast path's work modelled in C (bench/floor.c), no runtime around it.
gcc "${cflags[@]}" "$here/floor.c" -o "$build/floor"
"$build/floor" "$iterations"

# The thread-static access: in the .so it is the general-dynamic model (a call to
# __tls_get_addr); linked into an executable the linker may relax it to a %fs-relative load.
# Disassembled by address: na_bench_tls shares it with the compiler's own symbol name.
for bin in "$native/shared/libnumalloc.so" "$build/crossing.static"; do
    addr="$( { nm -D --defined-only "$bin" 2>/dev/null; nm --defined-only "$bin" 2>/dev/null; } |
        awk '$3 ~ /^na_bench_tls(@|$)/ { print $1 }' | head -n1 || true)"
    [[ -n "$addr" ]] || { echo "--- na_bench_tls: no symbol in ${bin#"$root"/}"; continue; }
    code="$(objdump -d --no-show-raw-insn --start-address="0x$addr" --stop-address="$(printf '0x%x' $((0x$addr + 0x60)))" "$bin" |
        grep -E '^ +[0-9a-f]+:' | sed -n '1,/ret/p')"
    echo "--- na_bench_tls in ${bin#"$root"/} (at 0x$addr), up to its ret:"
    printf '%s\n' "$code"
    if grep -q '__tls_get_addr' <<<"$code"; then
        echo "=> the thread-static goes through __tls_get_addr"
    else
        echo "=> no __tls_get_addr in na_bench_tls"
    fi
done
