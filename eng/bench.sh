#!/usr/bin/env bash
# Benchmarks. Today: the C-to-NativeAOT boundary-crossing harness. Results under artifacts/bench/.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
mkdir -p artifacts/bench
if [ -x Allocator.Native/bench/run-crossing.sh ]; then
    Allocator.Native/bench/run-crossing.sh | tee artifacts/bench/crossing.txt
    echo "bench: results in artifacts/bench/"
else
    echo "bench: no benchmark suites yet" >&2
    exit 2
fi
