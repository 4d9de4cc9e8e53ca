#!/usr/bin/env python3
"""Checks how na_malloc and na_free reach the calling thread's magazine set in libnumalloc.so.

A managed [ThreadStatic] in a NativeAOT shared library compiles to the general-dynamic TLS model,
a call to __tls_get_addr on every access. The shared library keeps the fast paths' pointer in an
initial-exec slot of its own instead (Allocator.Native/native/thread_slot.c, reached through
NativeThreadSlot in Allocator/Caches/MagazineRegistry.cs). For each export body this script
passes only when it calls the slot function (numalloc_thread_set_slot, address from the .so.dbg
beside the library) and calls nothing named __tls_get_addr.

Usage:
  check-thread-slot.py LIBRARY.so
  check-thread-slot.py --from-file PATH --slot-address HEX   objdump text (a fixture)

Exit status: 0 both exports use the slot; 1 one does not; 2 usage or tool error.
"""
import importlib.util
import os
import re
import sys

SLOT = "numalloc_thread_set_slot"
EXPORTS = [
    "libnumalloc_Numalloc_Native_Exports__Malloc",
    "libnumalloc_Numalloc_Native_Exports__Free",
]
# A direct call's operand: "d4b0 <...>" / "93d0 <__tls_get_addr@plt>"
TARGET_RE = re.compile(r"^([0-9a-f]+)(?:\s+<([^>]*)>)?$")


def load_disassembler():
    """The objdump helpers of check-fastpath-order.py (a file name with dashes: loaded by path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-fastpath-order.py")
    spec = importlib.util.spec_from_file_location("check_fastpath_order", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_export(order, name, insns, slot_address):
    """Returns (ok, message lines)."""
    short = name.rsplit("__", 1)[-1]
    calls = []
    for address, text in insns:
        mnemonic, operands = order.decode(text)
        m = TARGET_RE.match(operands[0]) if mnemonic.startswith("call") and operands else None
        if m:
            calls.append((address, int(m.group(1), 16), m.group(2) or "", text))
    tls = [c for c in calls if "__tls_get_addr" in c[2]]
    slot = [c for c in calls if c[1] == slot_address]
    lines = ["    %x:\t%s" % (c[0], c[3]) for c in calls]
    if tls:
        return False, ["%s: FAIL - calls __tls_get_addr (a general-dynamic thread-static); its calls:" % short] + lines
    if not slot:
        return False, ["%s: FAIL - never calls the thread slot (0x%x); its calls:" % (short, slot_address)] + lines
    return True, ["%s: ok - calls the thread slot at 0x%x, no __tls_get_addr (%d calls)" % (short, slot_address, len(calls))]


def main(argv):
    order = load_disassembler()
    ap = order.source_arguments(__doc__.split("\n", 1)[0], "libnumalloc.so (its .so.dbg beside it)")
    ap.add_argument("--slot-address", metavar="HEX", help="the slot function's address (with --from-file)")
    args = ap.parse_args(argv)
    try:
        if args.from_file:
            if not args.slot_address:
                ap.error("--from-file needs --slot-address")
            with open(args.from_file, encoding="utf-8") as f:
                funcs = order.parse_functions(f.read().splitlines())
            slot_address = int(args.slot_address, 16)
        else:
            rng = order.symbol_range(args.binary, SLOT)
            if rng is None:
                raise order.ToolError("%s not found in %s nor its .dbg" % (SLOT, args.binary))
            slot_address = rng[0]
            funcs = {s: order.disassemble(args.binary, s) for s in EXPORTS}
    except (order.ToolError, OSError) as e:
        print("check-thread-slot: %s" % e, file=sys.stderr)
        return 2

    failures = 0
    for name in EXPORTS:
        if not funcs.get(name):
            print("%s: FAIL - function not found" % name)
            failures += 1
            continue
        ok, msg = check_export(order, name, funcs[name], slot_address)
        print("\n".join(msg))
        failures += 0 if ok else 1
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
