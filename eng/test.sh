#!/usr/bin/env bash
# Runs every test runner and prints one closing line "N passed, N failed[, N skipped]" summed over
# all of them: NUnit (Allocator.Tests), the C tests of the native library, the spin models, and
# the VM test (eng/numa-vm.sh: the probe's checks inside a 4-node qemu guest; counted as 1 skipped
# where qemu cannot run).
# Exit status is non-zero when anything failed. Logs land in artifacts/test/.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
LOG_DIR="$REPO_ROOT/artifacts/test"
mkdir -p "$LOG_DIR"

total_passed=0 total_failed=0 total_skipped=0
summary=()

# record NAME PASSED FAILED SKIPPED
record() {
    total_passed=$((total_passed + $2)); total_failed=$((total_failed + $3)); total_skipped=$((total_skipped + $4))
    summary+=("$(printf '%-8s %5d passed, %d failed, %d skipped' "$1" "$2" "$3" "$4")")
}

# run_runner NAME PATTERN CMD...: runs CMD, tees its output to a log, and takes the counts from
# the last line matching "PATTERN N passed, N failed". A runner that prints no such line
# (it crashed or did not build) counts as one failure.
run_runner() {
    local name="$1" pattern="$2"; shift 2
    local log="$LOG_DIR/$name.log" rc=0
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$log" || rc=$?
    local line
    line=$(grep -E "^${pattern} *[0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1 || true)
    if [ -z "$line" ]; then
        echo "=== $name: no result line (exit $rc); counted as 1 failure"
        record "$name" 0 1 0
        return
    fi
    local p f s
    p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    record "$name" "$p" "$f" "$s"
}

# NUnit through dotnet test; its own summary line is turned into the common form.
nunit() {
    rm -f "$LOG_DIR/nunit.trx"
    dotnet build Allocator.sln -c Release -warnaserror -nologo -clp:ErrorsOnly || return 1
    local rc=0
    dotnet test Allocator.Tests/Allocator.Tests.csproj -c Release --no-build --nologo \
        --logger "console;verbosity=normal" --logger "trx;LogFileName=nunit.trx" \
        --results-directory "$LOG_DIR" --blame-hang --blame-hang-timeout 10m || rc=$?
    # The TRX counters are the runner's own account, whatever the console verbosity.
    local trx="$LOG_DIR/nunit.trx" counters
    [ -f "$trx" ] || return 1
    counters=$(grep -oE '<Counters [^>]*>' "$trx" | head -n 1)
    [ -n "$counters" ] || return 1
    local p f t e
    attr() { sed -E "s/.* $1=\"([0-9]+)\".*/\1/" <<<"$counters"; }
    p=$(attr passed); f=$(attr failed); t=$(attr total); e=$(attr executed)
    f=$((f + $(attr error) + $(attr timeout) + $(attr aborted)))
    echo "nunit: $p passed, $f failed, $((t - e)) skipped"
    return $rc
}

run_runner nunit "nunit:" nunit
[ -x Allocator.Native/tests/run.sh ] && run_runner c "c-tests:" Allocator.Native/tests/run.sh
[ -x eng/models/check.sh ] && run_runner models "models:" eng/models/check.sh
run_runner vm "vm-probe:" bash eng/numa-vm.sh

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ "$total_skipped" -gt 0 ]; then
    echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
else
    echo "$total_passed passed, $total_failed failed"
fi
[ "$total_failed" -eq 0 ]
