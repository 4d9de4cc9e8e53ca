#!/usr/bin/env python3
"""Checks the export guard (Allocator.Native/ExportGuard.cs) in the C# sources of the exports.

An exception that reaches the end of an [UnmanagedCallersOnly] method ends the process, so
every export's body must be exactly one `try { ... }` followed by a `catch (Exception ...)`
(other catch clauses may come first), with nothing before or after it. Two exceptions: an
empty body, and an export whose comments say `// cannot throw: <why>` between its doc comment
and its attribute (for example a thread-static increment).

Usage:
  check-export-guard.py FILE_OR_DIR...   .cs files, or folders searched (not recursively) for them

Prints one line per export ("ok NAME" / "FAIL NAME: why"). Exit status: 0 every export guarded;
1 one is not; 2 no export found or a file unreadable.
"""
import os
import re
import sys

ATTRIBUTE = "[UnmanagedCallersOnly"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (keeping length and newlines), so braces
    inside them do not count. Interpolation holes in $"..." are blanked too: they hold no braces
    that matter for the structure of statements."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or c == "'":
            verbatim = i > 0 and text[i - 1] == "@"
            j = i + 1
            while j < n:
                if text[j] == "\\" and not verbatim:
                    j += 2
                    continue
                if text[j] == c:
                    if verbatim and j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(c + " " * (j - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_brace(code, open_index):
    """Index of the brace closing the one at open_index, or -1."""
    depth = 0
    for k in range(open_index, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def skip_space(code, k):
    while k < len(code) and code[k].isspace():
        k += 1
    return k


def check_body(body):
    """None when the body (the text between the method's braces) is guarded, else why not."""
    body = "\n".join(line for line in body.split("\n") if not line.strip().startswith("#"))
    k = skip_space(body, 0)
    if k == len(body):
        return None
    if not re.match(r"try\s*\{", body[k:]):
        return "the body does not start with try"
    close = match_brace(body, body.index("{", k))
    if close < 0:
        return "unbalanced braces in the try block"
    k = skip_space(body, close + 1)
    catches_exception = False
    while True:
        m = re.match(r"catch\s*(\(\s*([\w.]+)[^)]*\))?\s*(when\s*\([^{]*\))?\s*\{", body[k:])
        if not m:
            break
        if m.group(3) is None and (m.group(1) is None or m.group(2) in ("Exception", "System.Exception")):
            catches_exception = True
        close = match_brace(body, k + m.end() - 1)
        if close < 0:
            return "unbalanced braces in a catch block"
        k = skip_space(body, close + 1)
        if catches_exception:
            break
    if not catches_exception:
        return "no catch (Exception) without a filter after the try"
    if skip_space(body, k) != len(body):
        return "code after the try/catch"
    return None


def check_file(path):
    """Yields (name, failure-or-None) per export in path."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    code = strip_comments_and_strings(text)
    start = 0
    while True:
        a = code.find(ATTRIBUTE, start)  # not in comments: ExportGuard's own doc shows the shape
        if a < 0:
            return
        start = a + len(ATTRIBUTE)
        name_match = re.search(r"\b(\w+)\s*\(", code[code.find("]", a) + 1:])
        name = name_match.group(1) if name_match else "?"
        # The comments just above the attribute (doc comment and plain ones), back to the previous member.
        above = text[max(text.rfind("}", 0, a), text.rfind(";", 0, a), 0):a]
        if re.search(r"//\s*cannot throw:\s*\S", above):
            yield name, None
            continue
        open_brace = code.find("{", code.find("]", a))
        arrow = code.find("=>", code.find("]", a))
        if open_brace < 0 or (0 <= arrow < open_brace):
            yield name, "an expression body cannot hold the guard"
            continue
        close = match_brace(code, open_brace)
        if close < 0:
            yield name, "unbalanced braces"
            continue
        yield name, check_body(code[open_brace + 1:close])


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    files = []
    for arg in argv:
        if os.path.isdir(arg):
            files += sorted(os.path.join(arg, f) for f in os.listdir(arg) if f.endswith(".cs"))
        else:
            files.append(arg)
    count = 0
    failed = 0
    for path in files:
        try:
            results = list(check_file(path))
        except OSError as e:
            print(f"check-export-guard: {e}", file=sys.stderr)
            return 2
        for name, why in results:
            count += 1
            if why is None:
                print(f"ok {os.path.basename(path)}: {name}")
            else:
                failed += 1
                print(f"FAIL {os.path.basename(path)}: {name}: {why}")
    if count == 0:
        print("check-export-guard: no [UnmanagedCallersOnly] method found", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
