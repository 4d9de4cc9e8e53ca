#!/usr/bin/env bash
# Benchmarks: the BenchmarkDotNet suites (Allocator.Bench) and the C boundary-crossing harness.
# Usage: eng/bench.sh [--quick] [filter]   e.g. eng/bench.sh --quick '*Page*', or a bare word
# (eng/bench.sh --quick Object), which selects every benchmark whose name contains it.
# Tables land in artifacts/bench/ (BenchmarkDotNet's results/ as GitHub markdown and JSON,
# crossing.txt for the C harness); the script prints where.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
quick=() filter='*'
for arg in "$@"; do
    case "$arg" in
        --quick) quick=(--quick) ;;
        *) filter="$arg" ;;
    esac
done
# A bare word (no glob character) means "every benchmark whose full name contains it".
[[ "$filter" == *[*?]* ]] || filter="*$filter*"
out="$REPO_ROOT/artifacts/bench"
mkdir -p "$out"
dotnet run -c Release --project Allocator.Bench -- bench "${quick[@]}" --artifacts "$out" --filter "$filter"
if [ "$filter" = '*' ]; then
    iterations=50000000
    [ ${#quick[@]} -gt 0 ] && iterations=10000000
    Allocator.Native/bench/run-crossing.sh "$iterations" | tee "$out/crossing.txt"
fi
echo "bench: tables in $out/results/ (markdown, JSON) and $out/crossing.txt"
