#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks (or, with --fix, adds) the SPDX-License-Identifier line of every source, header,
script and build file: the first line, or the second after a #! line."""
import os
import subprocess
import sys

TAG = "SPDX-License-Identifier: MIT"
C_LIKE = (".c", ".h", ".cpp", ".map")
HASH = (".py", ".sh", ".cmake", ".txt", ".in")


def style(path):
    base = os.path.basename(path)
    if path.endswith(C_LIKE):
        return "/* %s */" % TAG
    if base == "CMakeLists.txt" or path.endswith(HASH) or base in ("run", "init"):
        return "# %s" % TAG
    with open(path, "rb") as f:
        if f.read(2) == b"#!":
            return "# %s" % TAG
    return None


def main():
    fix = "--fix" in sys.argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, text=True,
                           check=True).stdout.split()
    missing = []
    for path in files:
        full = os.path.join(root, path)
        if not os.path.isfile(full) or path.startswith(("docs/", "abi/")) or path.endswith(".md"):
            continue
        line = style(full)
        if line is None:
            continue
        with open(full, encoding="utf-8") as f:
            text = f.read()
        head = text.split("\n", 3)[:3]
        if any(TAG in h for h in head):
            continue
        missing.append(path)
        if fix:
            if text.startswith("#!"):
                first, rest = text.split("\n", 1)
                text = first + "\n" + line + "\n" + rest
            else:
                text = line + "\n" + text
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
    if missing and not fix:
        for p in missing:
            print("%s: no '%s' line" % (p, TAG))
        print("spdx: %d file(s) without the license line (scripts/spdx.py --fix adds it)" % len(missing))
        return 1
    print("spdx: every source, header, script and build file carries '%s'%s" %
          (TAG, " (%d fixed)" % len(missing) if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
