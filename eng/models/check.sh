#!/usr/bin/env bash
# Exhaustive spin checks of numalloc's concurrency protocols (see README.md).
# Every model must verify (errors: 0, search complete); every mutant must be
# rejected (errors > 0 and a trail file). Prints one line per item and a last
# line "models: N passed, N failed"; exits non-zero if anything failed.
#
# Environment: MODELS_WORKDIR=dir  work here instead of a fresh temp dir
#              MODELS_KEEP=0       delete the work dir (and the trails) at the end
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v spin >/dev/null 2>&1; then
    echo "spin not found: installing it with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    { $SUDO apt-get update && $SUDO apt-get install -y spin; } >&2 || {
        echo "FAIL setup: could not install spin"; echo "models: 0 passed, 1 failed"; exit 1; }
fi
command -v gcc >/dev/null 2>&1 || { echo "FAIL setup: gcc not found"; echo "models: 0 passed, 1 failed"; exit 1; }

work="${MODELS_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/numalloc-models.XXXXXX")}"
mkdir -p "$work"
passed=0
failed=0
t_all0=$(date +%s.%N)

# Per-run memory cap for pan, in MB (a search that hits it is incomplete -> FAIL).
MEMLIM=4096

# item KIND MODEL NAME MODE "SPIN_DEFINES" "CC_DEFINES" "PAN_ARGS"
#   KIND   model | mutant
#   MODE   safety (-DSAFETY: assertions + invalid end states)
#          ltl    (acceptance cycles under weak fairness: pan -a -f -N claim)
item() {
    local kind=$1 model=$2 name=$3 mode=$4 sdefs=$5 cdefs=$6 pargs=$7
    local label dir out t0 t1 secs rc
    if [ "$kind" = model ]; then label="model $name"; else label="mutant $model/$name"; fi
    dir="$work/$kind-$model-$name"
    rm -rf "$dir"; mkdir -p "$dir"
    cp "$here/$model.pml" "$dir/"
    out="$dir/pan.out"
    t0=$(date +%s.%N)
    (
        cd "$dir" || exit 97
        # shellcheck disable=SC2086
        spin $sdefs -a "$model.pml" >spin.out 2>&1 || exit 98
        if [ "$mode" = safety ]; then cc_mode="-DSAFETY -DNOCLAIM"; else cc_mode=""; fi
        # shellcheck disable=SC2086
        gcc -O2 -w -DMEMLIM=$MEMLIM $cc_mode $cdefs -o pan pan.c >cc.out 2>&1 || exit 99
        # shellcheck disable=SC2086
        ./pan $pargs >"$out" 2>&1
        exit 0
    )
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 98 ]; then echo "FAIL $label: spin -a failed: $(head -3 "$dir/spin.out" | tr '\n' ' ')"; failed=$((failed+1)); return; fi
    if [ $rc -eq 99 ]; then echo "FAIL $label: gcc failed: $(grep -m1 error "$dir/cc.out")"; failed=$((failed+1)); return; fi
    if [ $rc -ne 0 ]; then echo "FAIL $label: could not run"; failed=$((failed+1)); return; fi

    local errors states incomplete=""
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -1)
    grep -q "max search depth too small" "$out" && incomplete="max search depth too small"
    grep -q -- "-DMEMLIM bound" "$out" && incomplete="memory limit reached"
    grep -qi "out of memory" "$out" && incomplete="out of memory"
    grep -q "Search not completed" "$out" && incomplete="search not completed"
    if [ -z "$errors" ]; then
        echo "FAIL $label: no result from pan (see $out)"; failed=$((failed+1)); return
    fi
    if [ "$kind" = model ]; then
        if [ "$errors" = 0 ] && [ -z "$incomplete" ] && grep -q "Full statespace search" "$out"; then
            echo "PASS model $name: verified ($states states, $secs s)"; passed=$((passed+1))
        else
            local why="errors: $errors"
            [ -n "$incomplete" ] && why="$why, $incomplete"
            local msg; msg=$(grep -m1 '^pan:1:' "$out")
            [ -n "$msg" ] && why="$why, $msg"
            echo "FAIL model $name: $why (see $dir)"; failed=$((failed+1))
        fi
    else
        local trail; trail=$(ls "$dir"/*.trail 2>/dev/null | head -1)
        if [ "$errors" -gt 0 ] && [ -n "$trail" ]; then
            local msg; msg=$(grep -m1 '^pan:1:' "$out" | sed 's/^pan:1: //; s/ (at depth [0-9]*)//')
            echo "PASS mutant $model/$name: rejected (trail: $trail; $msg; $secs s)"; passed=$((passed+1))
        else
            echo "FAIL mutant $model/$name: not rejected (errors: $errors, trail: ${trail:-none}; $secs s)"; failed=$((failed+1))
        fi
    fi
}

S="-m1000000"            # safety runs: depth bound far above the reachable depth
L="-a -f -m1000000"      # liveness runs: acceptance cycles, weak fairness
W="-w24"

# --- zonelist seqcount -------------------------------------------------------
item model  zonelist zonelist              safety ""                                   ""          "$S $W"
item model  zonelist zonelist_writer_stall ltl    "-DWRITER_STALL"                     "-DNFAIR=3" "$L $W -N readers_progress"
item mutant zonelist odd_cookie            safety "-DMUTANT_ODD_COOKIE"                ""          "$S $W"
item mutant zonelist no_recheck            safety "-DMUTANT_NO_RECHECK"                ""          "$S $W"
item mutant zonelist spin_on_odd           ltl    "-DWRITER_STALL -DMUTANT_SPIN_ODD"   "-DNFAIR=3" "$L $W -N readers_progress"

# --- magazine deferred work --------------------------------------------------
item model  magazine magazine              safety ""                                   ""          "$S $W"
item model  magazine magazine_liveness     ltl    ""                                   "-DNFAIR=3" "$L $W -N no_lost_request"
item mutant magazine no_barrier            safety "-DMUTANT_NO_BARRIER"                ""          "$S $W"
item mutant magazine no_busy               safety "-DMUTANT_NO_BUSY"                   ""          "$S $W"
item mutant magazine two_step_claim        safety "-DMUTANT_TWO_STEP"                  ""          "$S $W"
item mutant magazine nested_wait           safety "-DMUTANT_NESTED_WAIT"               ""          "$S $W"
item mutant magazine claim_any             safety "-DMUTANT_CLAIM_ANY"                 ""          "$S $W"

# --- movable handle ----------------------------------------------------------
item model  handle   handle                safety ""                                   ""          "$S $W"
item model  handle   handle_liveness       ltl    "-DNO_FREE"                          "-DNFAIR=3" "$L $W -N migration_completes"
item mutant handle   free_no_generation    safety "-DMUTANT_FREE_NO_GEN"               ""          "$S $W"
item mutant handle   no_window             safety "-DNO_FREE -DMUTANT_NO_WINDOW"       ""          "$S $W"
item mutant handle   retry_now             ltl    "-DNO_FREE -DMUTANT_RETRY_NOW"       "-DNFAIR=3" "$L $W -N migration_completes"

t_all1=$(date +%s.%N)
total=$(awk -v a="$t_all0" -v b="$t_all1" 'BEGIN { printf "%.0f", b - a }')
if [ "${MODELS_KEEP:-1}" = 0 ]; then rm -rf "$work"; else echo "work dir (outputs, trails): $work, total ${total} s"; fi
echo "models: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
