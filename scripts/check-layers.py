#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when a file includes across a forbidden boundary (docs/ARCHITECTURE.md, "Rules").

Each file of the tree belongs to the first layer whose pattern matches its path; a quoted
include ("x/y.h") must match one of the layer's allowed patterns, or name a header in the
file's own directory. Angle-bracket includes are system headers, and <dmahal/...> the
public API: every layer may use those, except that public headers include nothing quoted.
"""
import fnmatch
import os
import re
import subprocess
import sys

# (layer, files, allowed quoted includes). Order matters: the first match wins.
LAYERS = [
    ("public headers", ["include/dmahal/*.h"], []),
    # A device model is written against <dmahal/device.h>, as one built outside the tree is;
    # models.h lists the built-in ones, util.h parses their arguments.
    ("sim device models", ["src/platform/sim/models/*"], ["platform/sim/models.h", "core/util.h"]),
    # A platform sees the provider contract and the core services it names, never the
    # core's objects or the verifier.
    ("platforms", ["src/platform/*"],
     ["core/platform_ops.h", "core/iova.h", "core/range.h", "platform/*"]),
    ("verifier", ["src/verifier/*"],
     ["core/framed.h", "core/internal.h", "core/verify_hooks.h", "core/lock.h", "verifier/*"]),
    # The dump reaches the verifier only through the hooks.
    ("dump", ["src/debug/*"], ["core/internal.h", "core/verify_hooks.h", "core/bounce.h"]),
    # The Windows names are a shim over the public API.
    ("Windows names", ["src/wdm/*"], ["core/framed.h", "wdm/*"]),
    # The core reaches a platform through its ops table and the registry's one function, and
    # the verifier through the hooks: it includes nothing of either.
    ("core", ["src/core/*"], ["core/*"]),
    # Examples use the public API and the one driver-side edu register map.
    ("examples", ["examples/*"], ["edu/edu_regs.h"]),
    ("tools", ["tools/*"], ["edu/*"]),
    # Benchmarks use the public API and the example drivers; bench_map also times the core's
    # IOVA allocator on its own.
    ("benchmarks", ["bench/*"], ["edu/*", "nvme/*", "core/iova.h"]),
    # Tests of the public API (sim/, vm/) see only it and the examples; unit tests mirror src/.
    ("public-API tests", ["tests/sim/*", "tests/vm/*"], ["edu/*", "nvme/*", "seed/*", "packet/*",
                                                         "test.h", "rig.h"]),
    ("unit tests", ["tests/*"], ["*"]),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    for name, files, allowed in LAYERS:
        if any(fnmatch.fnmatch(path, f) for f in files):
            return name, allowed
    return None, None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others",
                            "--exclude-standard", "*.c", "*.h", "*.cpp"],
                           capture_output=True, text=True, check=True).stdout.split()
    bad = 0
    for path in files:
        name, allowed = layer_of(path)
        if name is None:
            continue
        with open(os.path.join(root, path), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                if "/" not in inc and os.path.exists(os.path.join(root, os.path.dirname(path), inc)):
                    continue  # a header beside the file
                if any(fnmatch.fnmatch(inc, a) for a in allowed):
                    continue
                print(f"{path}:{n}: {name} may not include \"{inc}\"")
                bad += 1
    if bad:
        print(f"check-layers: {bad} include(s) across a forbidden boundary "
              "(the rules: docs/ARCHITECTURE.md)")
        return 1
    print(f"check-layers: {len(files)} files, every include within its layer's rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
