#!/usr/bin/env bash
# The classic allocator workloads (bench/workloads.c: larson, xmalloc, cache-scratch, mixed, and
# noalloc, the same kind of loop without allocator calls: the machine's scaling ceiling)
# against glibc, Debian's jemalloc, mimalloc and tcmalloc (LD_PRELOAD of their .so), and numalloc
# (na_malloc/na_free resolved with dlopen/dlsym from libnumalloc.so: never interposed, since the
# NativeAOT runtime inside the library calls malloc itself). Every workload runs for 1..nproc
# threads, RUNS times per allocator (interleaved, so drift in the machine's load hits every
# allocator alike); the tables take the median. Writes into artifacts/bench/peers/: peers.md
# (printed), peers.csv, peers.json, runs.csv, runs.jsonl and scaling.svg.
# Usage: run-peers.sh [--quick] [--runs N] [--threads "1 2 .."] [--workloads "larson mixed .."]
#                     [--settle-ms N]  (mixed: also read RSS N ms after the free-all; numalloc's
#                                       decay is 10 s, so 12000 shows what its purger gives back)
#   NUMALLOC_LIB=path overrides artifacts/native/shared/libnumalloc.so (built by eng/native.sh
#   when missing and dotnet is there).
# Exit status: 1 if any run reported an integrity error or crashed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/eng/common.sh"
out="$root/artifacts/bench/peers"
build="$root/artifacts/native/bench"
args="$*"
quick=() runs=3 threads="" workloads="noalloc larson xmalloc cache-scratch mixed" settle=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --runs) runs="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        --workloads) workloads="$2"; shift ;;
        --settle-ms) settle=(--settle-ms "$2"); shift ;;
        *) echo "usage: run-peers.sh [--quick] [--runs N] [--threads LIST] [--workloads LIST] [--settle-ms N]" >&2; exit 2 ;;
    esac
    shift
done
[[ -n "$threads" ]] || threads="$(seq 1 "$(nproc)" | tr '\n' ' ')"

ensure_apt gcc python3 libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4
mkdir -p "$build" "$out"
gcc -std=c11 -O2 -Wall -Wextra -Werror -pthread "-I$here" "$here/peers.c" "$here/workloads.c" -ldl -o "$build/peers"
peers="$build/peers"

# The .so of a Debian package: the loader cache first, then the package's file list. Prints
# nothing when neither has it. $1 = soname pattern (extended regex), $2 = package.
find_lib() {
    local lib
    lib="$(ldconfig -p 2>/dev/null | awk -v re="^($1)\$" '$1 ~ re && /x86-64|x86_64|64bit/ { print $NF; exit }')"
    [[ -n "$lib" ]] || lib="$(dpkg -L "$2" 2>/dev/null | grep -E "/($1)\$" | head -n1 || true)"
    [[ -n "$lib" && -f "$lib" ]] && echo "$lib"
    return 0
}

# Allocators: label and LD_PRELOAD value (empty for glibc). A preload is kept only when the
# program, started with it, reports that its malloc comes from that very file.
labels=(glibc) preloads=("") unavailable=()
for spec in "jemalloc|libjemalloc\\.so\\.2|libjemalloc2" "mimalloc|libmimalloc\\.so\\.2(\\.[0-9]+)?|libmimalloc2.0" \
            "tcmalloc|libtcmalloc_minimal\\.so\\.4|libtcmalloc-minimal4"; do
    IFS='|' read -r label re pkg <<<"$spec"
    lib="$(find_lib "$re" "$pkg")"
    if [[ -z "$lib" ]]; then
        unavailable+=("$label: not available (no ${re//\\/} from $pkg)"); continue
    fi
    got="$(LD_PRELOAD="$lib" "$peers" --which)"
    if [[ "$(readlink -f "$got")" != "$(readlink -f "$lib")" ]]; then
        unavailable+=("$label: not available (LD_PRELOAD=$lib, but malloc comes from $got)"); continue
    fi
    labels+=("$label"); preloads+=("$lib")
done

# numalloc: usable once libnumalloc.so exports na_malloc and na_free.
numalloc_lib="${NUMALLOC_LIB:-$root/artifacts/native/shared/libnumalloc.so}"
if [[ -z "${NUMALLOC_LIB:-}" && ! -f "$numalloc_lib" ]] && command -v dotnet >/dev/null; then
    bash "$root/eng/native.sh" >&2 || true
fi
numalloc=0
probe="$("$peers" --alloc numalloc --lib "$numalloc_lib" --iterations 100 mixed 2>&1)" && numalloc=1 || true
if [[ $numalloc -eq 0 ]]; then
    unavailable+=("$(grep -m1 'not available' <<<"$probe" || echo "numalloc: not available (probe failed: ${probe//$'\n'/ })")")
fi

[[ ${#unavailable[@]} -eq 0 ]] || printf '%s\n' "${unavailable[@]}" >&2
echo "peers: ${labels[*]}$([[ $numalloc -eq 1 ]] && echo ' numalloc'); threads: $threads; $runs runs each${quick:+ (quick)}" >&2

jsonl="$out/runs.jsonl"
: >"$jsonl"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
failures=0
# run_one LABEL PRELOAD WORKLOAD THREADS [peers args...]
run_one() {
    local label="$1" preload="$2" workload="$3" t="$4" line rc=0 extra=(); shift 4
    [[ "$workload" != mixed ]] || extra=("${settle[@]}")
    line="$(LD_PRELOAD="$preload" "$peers" "${quick[@]}" --threads "$t" --label "$label" "${extra[@]}" "$@" "$workload" 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q '^{' <<<"$line"; then
        failures=$((failures + 1))
        echo "peers: FAILED $label $workload threads=$t (exit $rc): $line" >&2
    fi
    grep '^{' <<<"$line" >>"$jsonl" || true
}
for ((r = 1; r <= runs; ++r)); do
    echo "peers: run $r/$runs" >&2
    for w in $workloads; do
        for t in $threads; do
            for i in "${!labels[@]}"; do
                run_one "${labels[$i]}" "${preloads[$i]}" "$w" "$t"
                [[ "$w" != noalloc ]] || break # no allocator call: once, as glibc
            done
            if [[ $numalloc -eq 1 && "$w" != noalloc ]]; then
                run_one numalloc "" "$w" "$t" --alloc numalloc --lib "$numalloc_lib"
            fi
        done
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
machine="$(nproc) CPUs ($cpu), $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u '+%Y-%m-%d %H:%M UTC')"
notes=("load average (1/5/15 min) before: $load_before, after: $load_after")
for u in "${unavailable[@]}"; do notes+=("$u"); done
for i in "${!labels[@]}"; do
    [[ -n "${preloads[$i]}" ]] && notes+=("${labels[$i]}: LD_PRELOAD=${preloads[$i]}")
done
note_args=()
for n in "${notes[@]}"; do note_args+=(--note "$n"); done
python3 "$here/peers-report.py" "$jsonl" "$out" --machine "$machine" \
    --command "Allocator.Native/bench/run-peers.sh${args:+ $args}" "${note_args[@]}"
echo "peers: tables in $out/peers.md (CSV: peers.csv, runs.csv; JSON: peers.json), plot: $out/scaling.svg" >&2
[[ $failures -eq 0 ]]
