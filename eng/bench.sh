#!/usr/bin/env bash
# Benchmarks: the BenchmarkDotNet suites (Allocator.Bench), the C boundary-crossing harness, the
# C ABI against glibc/jemalloc/mimalloc/tcmalloc (abi.md) and the C harness against the peer
# allocators (glibc, jemalloc, mimalloc, tcmalloc, numalloc).
# Usage: eng/bench.sh [--quick] [--c] [filter]   e.g. eng/bench.sh --quick '*Page*'
#   a bare word (eng/bench.sh --quick Object) selects every benchmark whose name contains it
#   --c   only the C harnesses (crossing, abi and peers), no BenchmarkDotNet
# Tables land in artifacts/bench/ (BenchmarkDotNet's results/ as GitHub markdown and JSON, with the
# allocator's counters per operation as columns; managed-scaling.svg for the multi-thread suites;
# crossing.txt for the crossing harness, abi.md for the C ABI table, peers/ for the peer
# workloads: peers.md, CSV, JSON and scaling.svg); the script prints where.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
quick=() filter='*' c_only=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=(--quick) ;;
        --c) c_only=1 ;;
        *) filter="$arg" ;;
    esac
done
# A bare word (no glob character) means "every benchmark whose full name contains it".
[[ "$filter" == *[*?]* ]] || filter="*$filter*"
out="$REPO_ROOT/artifacts/bench"
mkdir -p "$out"
if [ "$c_only" -eq 0 ]; then
    dotnet run -c Release --project Allocator.Bench -- bench "${quick[@]}" --artifacts "$out" --filter "$filter"
    # One compact table per suite, contenders side by side, with the counters: artifacts/bench/summary.md.
    python3 eng/bench-summary.py "$out"
fi
if [ "$filter" = '*' ]; then
    iterations=50000000
    [ ${#quick[@]} -gt 0 ] && iterations=10000000
    Allocator.Native/bench/run-crossing.sh "$iterations" | tee "$out/crossing.txt"
    Allocator.Native/bench/run-abi.sh "${quick[@]}"
    Allocator.Native/bench/run-peers.sh "${quick[@]}"
fi
if [ "$c_only" -eq 0 ]; then
    echo "bench: tables in $out/summary.md (one per suite), $out/results/ (BenchmarkDotNet's markdown, JSON), $out/managed-scaling.svg (when a multi-thread suite ran), $out/crossing.txt, $out/abi.md and $out/peers/"
else
    echo "bench: tables in $out/crossing.txt, $out/abi.md and $out/peers/"
fi
