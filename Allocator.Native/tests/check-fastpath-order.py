#!/usr/bin/env python3
"""Checks the owner's memory ordering in the NativeAOT (ILC) machine code of the fast paths.

DESIGN.md, "Caches" / "Memory ordering": the owner's InAllocator store must precede its Pending
load in the generated code (the requester's membarrier orders them only if the compiler keeps
them in program order). MagazineSet.Enter/EnterOutermost are inlined into
CachedPageAllocator.AllocPages and FreePages, the object fast paths into na_malloc and na_free, and
the bulk ones are functions of their own, so for each of those functions this script:

  1. finds the first `movl $0x1,(%REG)` - InAllocator = 1, offset 0 of the set in REG;
  2. finds the first instruction of the function that loads `0x8(%REG)` with the same REG -
     Pending, offset 8 (a cmp/test/mov-from/read-modify-write; a plain mov INTO it is a store);
  3. passes only when both exist and the store's address is below the load's.

The check is on address order within the function, which is program order on the fast path
(the outermost entry is one straight run of code from the store to the load).

Usage:
  check-fastpath-order.py BINARY             libnumalloc.a, libnumalloc.so (symbols from the
                                             .so or its .so.dbg beside it), or an object file
  check-fastpath-order.py --from-file PATH   `objdump -d --no-show-raw-insn` text (a fixture, or
                                             a hand-edited dump)
  --symbol NAME (repeatable)                 functions to check (default: the page fast paths,
                                             na_malloc, na_free and the two bulk fast paths)

Exit status: 0 all functions in order; 1 a store or load is missing or the load comes first;
2 usage or tool error (objdump/nm failed, symbol absent).
"""
import argparse
import os
import re
import subprocess
import sys

DEFAULT_SYMBOLS = [
    "Numalloc_Numalloc_Caches_CachedPageAllocator__AllocPages",
    "Numalloc_Numalloc_Caches_CachedPageAllocator__FreePages",
    # The object fast paths: na_malloc / na_free inline theirs; the bulk ones stay functions.
    "libnumalloc_Numalloc_Native_Exports__Malloc",
    "libnumalloc_Numalloc_Native_Exports__Free",
    "Numalloc_Numalloc_Objects_ObjectHeap__TryAllocateSmallBulkFast",
    "Numalloc_Numalloc_Objects_ObjectHeap__TryFreeBulkFast",
]

# "    ec10:\tpush   %rbp"  (objdump -d --no-show-raw-insn)
INSN_RE = re.compile(r"^\s*([0-9a-f]+):\s+(.*\S)\s*$")
# "000000000000ec10 <Numalloc_..._AllocPages>:"
FUNC_RE = re.compile(r"^([0-9a-f]+) <([^>]+)>:\s*$")
# InAllocator = 1: a 32-bit immediate store of 1 to offset 0 of a register.
STORE_RE = re.compile(r"^movl?\s+\$0x1,\s*(?:0x0)?\(%([a-z0-9]+)\)$")
PREFIXES = {"lock", "data16", "addr32", "rex", "rex.w", "rex.W", "notrack", "bnd", "ds", "cs", "ss", "es", "fs", "gs"}


class ToolError(Exception):
    pass


def split_operands(text):
    """Splits 'a,b(%x,%y,8),c' at the commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def decode(text):
    """Returns (mnemonic, operands) of an instruction's text, prefixes and '# comments' removed."""
    text = text.split("#", 1)[0].strip()
    tokens = text.split(None, 1)
    while tokens and tokens[0] in PREFIXES:
        tokens = tokens[1].split(None, 1) if len(tokens) > 1 else []
    if not tokens:
        return "", []
    return tokens[0], split_operands(tokens[1]) if len(tokens) > 1 else []


def is_pending_load(text, reg):
    """True when the instruction reads memory at exactly 0x8(%reg)."""
    mnemonic, operands = decode(text)
    target = "0x8(%" + reg + ")"
    if target not in operands or mnemonic.startswith("lea") or mnemonic.startswith("nop"):
        return False
    # AT&T: the destination is last. A plain move into memory only writes it.
    if mnemonic.startswith("mov") and operands[-1] == target and operands.count(target) == 1:
        return False
    return True


def parse_functions(lines):
    """objdump text -> {symbol: [(address, text), ...]}."""
    funcs, current = {}, None
    for line in lines:
        m = FUNC_RE.match(line)
        if m:
            current = funcs.setdefault(m.group(2), [])
            continue
        m = INSN_RE.match(line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(2)))
    return funcs


def fmt(insn):
    return "    %x:\t%s" % insn


def check_function(name, insns):
    """Returns (ok, message lines)."""
    short = name.rsplit("__", 1)[-1]
    store = None
    for insn in insns:
        mnemonic, operands = decode(insn[1])
        m = STORE_RE.match(mnemonic + " " + ",".join(operands))
        if m:
            store = (insn, m.group(1))
            break
    if store is None:
        cands = [i for i in insns if re.search(r"\(%[a-z0-9]+\)", i[1]) and i[1].lstrip().startswith("mov")]
        return False, ["%s: FAIL - no InAllocator = 1 store (movl $0x1,(%%reg)) in %s (%d instructions); stores to (%%reg):"
                       % (short, name, len(insns))] + [fmt(i) for i in cands[:20]]
    (s_insn, reg) = store
    load = next((i for i in insns if is_pending_load(i[1], reg)), None)
    refs = [fmt(i) for i in insns if "0x8(%" + reg + ")" in i[1] or i is s_insn]
    if load is None:
        return False, ["%s: FAIL - InAllocator store found but no load of Pending (0x8(%%%s)):" % (short, reg),
                       fmt(s_insn)] + refs
    if load[0] < s_insn[0]:
        return False, ["%s: FAIL - the load of Pending comes BEFORE the InAllocator = 1 store (register %%%s):" % (short, reg),
                       fmt(load) + "    <- Pending load (first)",
                       fmt(s_insn) + "    <- InAllocator store",
                       "  the store and every reference to 0x8(%%%s) in the function:" % reg] + refs
    return True, ["%s: ok - InAllocator store precedes the Pending load (register %%%s, %d bytes apart):"
                  % (short, reg, load[0] - s_insn[0]),
                  fmt(s_insn) + "    <- InAllocator = 1",
                  fmt(load) + "    <- Pending load"]


def run(cmd):
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    except OSError as e:
        raise ToolError("%s: %s" % (cmd[0], e)) from e
    if res.returncode != 0:
        raise ToolError("%s failed (%d): %s" % (" ".join(cmd), res.returncode, res.stderr.strip()))
    return res.stdout


def symbol_range(binary, symbol):
    """(start, end) of symbol from `nm -S` of binary or of binary.dbg."""
    for path in (binary, binary + ".dbg"):
        if not os.path.isfile(path):
            continue
        out = run(["nm", "-S", "--defined-only", path])
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[3] == symbol:
                start, size = int(f[0], 16), int(f[1], 16)
                return start, start + size
    return None


def disassemble(binary, symbol):
    text = run(["objdump", "-d", "--no-show-raw-insn", "--disassemble=" + symbol, binary])
    insns = parse_functions(text.splitlines()).get(symbol)
    if insns:
        return insns
    # A stripped .so: symbol from the .dbg beside it, code by address range.
    rng = symbol_range(binary, symbol)
    if rng is None:
        raise ToolError("symbol %s not found in %s (nor %s.dbg)" % (symbol, binary, binary))
    text = run(["objdump", "-d", "--no-show-raw-insn", "--start-address=0x%x" % rng[0],
                "--stop-address=0x%x" % rng[1], binary])
    insns = [(int(m.group(1), 16), m.group(2)) for m in map(INSN_RE.match, text.splitlines()) if m]
    if not insns:
        raise ToolError("no code for %s at 0x%x..0x%x in %s" % (symbol, rng[0], rng[1], binary))
    return insns


def source_arguments(description, binary_help):
    """A parser for a checker's input: a binary (positional "binary") or --from-file objdump text."""
    ap = argparse.ArgumentParser(description=description)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("binary", nargs="?", help=binary_help)
    src.add_argument("--from-file", metavar="PATH", help="objdump -d --no-show-raw-insn output to check instead")
    return ap


def main(argv):
    ap = source_arguments(__doc__.split("\n", 1)[0], "libnumalloc.a, libnumalloc.so or an object file")
    ap.add_argument("--symbol", action="append", help="function to check (repeatable)")
    args = ap.parse_args(argv)
    symbols = args.symbol or DEFAULT_SYMBOLS

    try:
        if args.from_file:
            with open(args.from_file, encoding="utf-8") as f:
                funcs = parse_functions(f.read().splitlines())
            source = args.from_file
        else:
            funcs = {s: disassemble(args.binary, s) for s in symbols}
            source = args.binary
    except (ToolError, OSError) as e:
        print("check-fastpath-order: %s" % e, file=sys.stderr)
        return 2

    print("# ILC fast-path order in %s" % source)
    failures = 0
    for s in symbols:
        if not funcs.get(s):
            print("%s: FAIL - function not found in %s" % (s, source))
            failures += 1
            continue
        ok, msg = check_function(s, funcs[s])
        print("\n".join(msg))
        failures += 0 if ok else 1
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
