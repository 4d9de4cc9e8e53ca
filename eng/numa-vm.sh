#!/usr/bin/env bash
# Proof on real NUMA: boots the Debian kernel under qemu (TCG; KVM is not available here) with
# 4 NUMA nodes, one vCPU each, an asymmetric distance matrix and one small node, and runs the
# NativeAOT probe (eng/vm/probe) in a busybox initramfs. The probe drives the page allocator with
# topology=os and checks with move_pages where memory really lands. Its serial output comes back
# here; the last line is "vm-probe: N passed, N failed" and the exit status is the probe's.
#
# Usage: bash eng/numa-vm.sh [PROBE-ARGS...]   e.g. --misbind, the negative control that binds
# every block one node off (the placement checks must then fail).
# Where the VM cannot run (not x86-64, no qemu or kernel and no way to install them) it says why
# and prints "vm-probe: 0 passed, 0 failed, 1 skipped". NUMA_VM_TIMEOUT (s, default 300) bounds qemu;
# NUMA_VM_KERNEL picks a kernel image (default: the newest /boot/vmlinuz-*).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
OUT="$REPO_ROOT/artifacts/vm"
mkdir -p "$OUT"

# The guest. Node 3 is small so the full-node checks can fill it; its distance row is what the
# kernel's fallback follows. Asymmetric on purpose (d(i,j) != d(j,i)): discovery must read the
# matrix as the kernel reports it, row by row, not mirror it.
NODES=4
MEM_MIB=(256 256 256 128)
FULL_NODE=3
DISTANCES=(
    10 16 22 28
    17 10 16 22
    23 17 10 16
    29 23 17 10
)
TIMEOUT_S="${NUMA_VM_TIMEOUT:-300}"

skip() {
    echo "numa-vm: skipped: $1"
    echo "vm-probe: 0 passed, 0 failed, 1 skipped"
    exit 0
}

[ "$(uname -m)" = x86_64 ] || skip "the guest kernel and probe are x86-64; this machine is $(uname -m)"
if ! ensure_apt qemu-system-x86 linux-image-amd64 busybox-static numactl cpio; then
    skip "could not install qemu-system-x86, linux-image-amd64, busybox-static, numactl, cpio"
fi
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
KERNEL="${NUMA_VM_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)}"
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || skip "no readable /boot/vmlinuz-* (linux-image-amd64)"
[ -x /bin/busybox ] || skip "no /bin/busybox (busybox-static)"
command -v dotnet >/dev/null || { echo "numa-vm: dotnet not found on PATH" >&2; exit 1; }

# --- the probe: NativeAOT publish, skipped when no input changed (as eng/native.sh does) ------
PROBE_DIR="$OUT/probe"
STAMP="$OUT/.probe-inputs.sha256"
inputs_hash() {
    {
        find Allocator eng/vm/probe -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.targets' \) \
            -not -path '*/obj/*' -not -path '*/bin/*' -print
        ls Directory.Build.props Directory.Packages.props global.json 2>/dev/null
    } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
    dotnet --version
}
want="$(inputs_hash)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$PROBE_DIR/NumaVmProbe" ]]; then
    echo "numa-vm: probe inputs unchanged, keeping $PROBE_DIR"
else
    rm -f "$STAMP"
    start=$SECONDS
    rm -rf "$PROBE_DIR"
    dotnet publish eng/vm/probe/NumaVmProbe.csproj -c Release -r linux-x64 -o "$PROBE_DIR" -nologo -clp:NoSummary -v:q
    echo "$want" > "$STAMP"
    echo "numa-vm: published the probe in $((SECONDS - start)) s"
fi

# --- the initramfs: busybox, the probe, numactl, and every shared library they load ----------
ROOT="$OUT/initramfs"
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,probe,proc,sys,dev,tmp}
cp /bin/busybox "$ROOT/bin/busybox"
cp "$PROBE_DIR/NumaVmProbe" "$PROBE_DIR/libMonoPosixHelper.so" "$ROOT/probe/"
cp "$(command -v numactl)" "$ROOT/bin/numactl"
# ldd names each library by the path the loader resolved; copy it (links followed) to that path.
for elf in "$ROOT/probe/NumaVmProbe" "$ROOT/probe/libMonoPosixHelper.so" "$ROOT/bin/numactl"; do
    ldd "$elf" | grep -oE '/[^ ]+' | while read -r lib; do
        [ -e "$ROOT$lib" ] || { mkdir -p "$ROOT$(dirname "$lib")"; cp -L "$lib" "$ROOT$lib"; }
    done
done

probe_args="--nodes $NODES --distances $(IFS=,; echo "${DISTANCES[*]}") --cpus '$(seq -s ' ' 0 $((NODES - 1)))'"
probe_args+=" --mem-mib $(IFS=,; echo "${MEM_MIB[*]}") --full-node $FULL_NODE"
for arg in "$@"; do probe_args+=" $(printf '%q' "$arg")"; done
cat > "$ROOT/init" <<INIT
#!/bin/busybox sh
# PID 1 of the guest: mount the kernel's views, run the probe, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "vm-init: kernel \$(uname -r), \$(nproc) cpus"
numactl --hardware
/probe/NumaVmProbe $probe_args
rc=\$?
echo "vm-init: probe exit \$rc"
# The OOM kill the strict full-node check expects, in the kernel's words (quiet keeps it off the console).
dmesg | grep -E 'oom-kill:|Killed process' | sed 's/^/vm-init: kernel: /'
poweroff -f
INIT
chmod +x "$ROOT/init"
INITRD="$OUT/initramfs.cpio.gz"
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -1 > "$INITRD"
echo "numa-vm: initramfs $(( $(stat -c %s "$INITRD") / 1024 )) KiB, kernel $KERNEL"

# --- the guest -----------------------------------------------------------------------------------
qemu_args=(-accel tcg -cpu max -smp "$NODES,sockets=$NODES,cores=1,threads=1")
total=0
for ((i = 0; i < NODES; i++)); do
    total=$((total + MEM_MIB[i]))
    qemu_args+=(-object "memory-backend-ram,id=mem$i,size=${MEM_MIB[i]}M" -numa "node,nodeid=$i,cpus=$i,memdev=mem$i")
done
for ((i = 0; i < NODES; i++)); do
    for ((j = 0; j < NODES; j++)); do
        [ "$i" -ne "$j" ] && qemu_args+=(-numa "dist,src=$i,dst=$j,val=${DISTANCES[i * NODES + j]}")
    done
done
qemu_args+=(-m "${total}M" -kernel "$KERNEL" -initrd "$INITRD"
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init mitigations=off"
    -nodefaults -display none -serial stdio -no-reboot)

LOG="$OUT/serial.log"
echo "numa-vm: booting $NODES nodes (${MEM_MIB[*]} MiB), timeout ${TIMEOUT_S} s; serial log $LOG"
start=$SECONDS
rc=0
timeout -k 10 "$TIMEOUT_S" qemu-system-x86_64 "${qemu_args[@]}" </dev/null 2>&1 | tr -d '\r' | tee "$LOG" || rc=$?
elapsed=$((SECONDS - start))
[ "$rc" -eq 124 ] && echo "numa-vm: qemu did not finish within ${TIMEOUT_S} s"
echo "numa-vm: guest ran ${elapsed} s (qemu exit $rc)"

result="$(grep -E '^vm-probe: [0-9]+ passed, [0-9]+ failed' "$LOG" | tail -n 1 || true)"
probe_rc="$(sed -n 's/^vm-init: probe exit \([0-9]*\).*/\1/p' "$LOG" | tail -n 1)"
if [ -z "$result" ]; then
    echo "numa-vm: the probe printed no result line (probe exit ${probe_rc:-unknown})"
    exit 1
fi
echo "$result"
[ "${probe_rc:-1}" -eq 0 ]
