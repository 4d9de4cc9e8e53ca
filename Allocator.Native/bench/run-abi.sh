#!/usr/bin/env bash
# The C ABI against the system's and Debian's allocators, with one program (bench/abi-bench.c):
# builds it against libnumalloc.so and libnumalloc.a (after eng/native.sh), runs both plainly
# (malloc = glibc), then the shared build with LD_PRELOAD of libjemalloc2, libmimalloc2.0 and
# libtcmalloc-minimal4 (malloc = that peer; a preload counts only when the program reports that
# its malloc comes from that very file). Writes artifacts/bench/abi.md (printed) and the raw
# outputs beside it (abi-*.txt).
# Usage: run-abi.sh [--quick] [--iterations N]   (default 10,000,000 per loop, --quick 2,000,000)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/eng/common.sh"
native="$root/artifacts/native"
build="$native/bench"
out="$root/artifacts/bench"
iterations=10000000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) iterations=2000000 ;;
        --iterations) iterations="$2"; shift ;;
        *) echo "usage: run-abi.sh [--quick] [--iterations N]" >&2; exit 2 ;;
    esac
    shift
done

ensure_apt gcc python3 libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4
bash "$root/eng/native.sh" >&2
mkdir -p "$build" "$out"
read -r -a static_link < <(grep -v '^#' "$native/static/LINK.txt")
cflags=(-std=c99 -O2 -Wall -Wextra -Werror -pthread "-I$here" "-I$root/Allocator.Native/include")
gcc "${cflags[@]}" -DNA_LINK='"shared"' "$here/abi-bench.c" -o "$build/abi-bench.shared" \
    "-L$native/shared" -lnumalloc "-Wl,-rpath,\$ORIGIN/../shared" -ldl
gcc "${cflags[@]}" -DNA_LINK='"static"' "$here/abi-bench.c" -o "$build/abi-bench.static" "${static_link[@]}"

# The .so of a Debian package, as in run-peers.sh: the loader cache, then the package's files.
find_lib() {
    local lib
    lib="$(ldconfig -p 2>/dev/null | awk -v re="^($1)\$" '$1 ~ re && /x86-64|x86_64|64bit/ { print $NF; exit }')"
    [[ -n "$lib" ]] || lib="$(dpkg -L "$2" 2>/dev/null | grep -E "/($1)\$" | head -n1 || true)"
    [[ -n "$lib" && -f "$lib" ]] && echo "$lib"
    return 0
}

rm -f "$out"/abi-*.txt
echo "run-abi: $iterations iterations per loop, best of 3" >&2
"$build/abi-bench.shared" "$iterations" | tee "$out/abi-glibc-shared.txt" | grep -v '^ROW' >&2
"$build/abi-bench.static" "$iterations" | tee "$out/abi-glibc-static.txt" | grep -v '^ROW' >&2
for spec in "jemalloc|libjemalloc\\.so\\.2|libjemalloc2" "mimalloc|libmimalloc\\.so\\.2(\\.[0-9]+)?|libmimalloc2.0" \
            "tcmalloc|libtcmalloc_minimal\\.so\\.4|libtcmalloc-minimal4"; do
    IFS='|' read -r label re pkg <<<"$spec"
    lib="$(find_lib "$re" "$pkg")"
    if [[ -z "$lib" ]]; then
        echo "run-abi: $label not available (no ${re//\\/} from $pkg)" >&2; continue
    fi
    got="$(LD_PRELOAD="$lib" "$build/abi-bench.shared" --which)"
    if [[ "$(readlink -f "$got")" != "$(readlink -f "$lib")" ]]; then
        echo "run-abi: $label not available (LD_PRELOAD=$lib, but malloc comes from $got)" >&2; continue
    fi
    LD_PRELOAD="$lib" "$build/abi-bench.shared" "$iterations" | tee "$out/abi-$label-shared.txt" | grep -v '^ROW' >&2
done

python3 - "$out" "$iterations" "$(nproc)" <<'EOF' | tee "$out/abi.md"
import os, sys
out, iterations, cpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {}
for name in ("glibc-shared", "glibc-static", "jemalloc-shared", "mimalloc-shared", "tcmalloc-shared"):
    path = os.path.join(out, f"abi-{name}.txt")
    if not os.path.exists(path):
        continue
    rows = {}
    for line in open(path):
        f = line.split()
        if f and f[0] == "ROW":
            rows[(int(f[1]), int(f[2]))] = dict(zip(("cross", "malloc", "na", "work", "bulk", "guarded", "workg"), map(float, f[3:10])))
    runs[name] = rows
sh, st = runs["glibc-shared"], runs["glibc-static"]
peers = [p for p in ("jemalloc", "mimalloc", "tcmalloc") if f"{p}-shared" in runs]
def r(a, b): return f"{a / b:.2f}"
print(f"ns per operation per thread, best of 3 loops of {iterations:,} ({cpus} CPUs); shared / static build."
      " Peer pairs and ratios come from the shared build run with LD_PRELOAD of that peer (the same run's na figures).\n")
head = ["thr", "size", "crossing", "na pair", "work (pair − 2 crossings)", "guarded crossing", "work (pair − 2 guarded)", "bulk/obj", "glibc pair",
        "na ÷ glibc", "bulk ÷ glibc"]
for p in peers:
    head += [f"{p} pair", f"na ÷ {p}", f"bulk ÷ {p}"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for key in sorted(sh):
    a, b = sh[key], st[key]
    cells = [str(key[0]), str(key[1]),
             f"{a['cross']:.1f} / {b['cross']:.1f}", f"{a['na']:.1f} / {b['na']:.1f}",
             f"{a['work']:.1f} / {b['work']:.1f}", f"{a['guarded']:.1f} / {b['guarded']:.1f}",
             f"{a['workg']:.1f} / {b['workg']:.1f}", f"{a['bulk']:.1f} / {b['bulk']:.1f}",
             f"{a['malloc']:.1f} / {b['malloc']:.1f}",
             f"{r(a['na'], a['malloc'])} / {r(b['na'], b['malloc'])}",
             f"{r(a['bulk'], a['malloc'])} / {r(b['bulk'], b['malloc'])}"]
    for p in peers:
        c = runs[f"{p}-shared"][key]
        cells += [f"{c['malloc']:.1f}", r(c["na"], c["malloc"]), r(c["bulk"], c["malloc"])]
    print("| " + " | ".join(cells) + " |")
EOF
