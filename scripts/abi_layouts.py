# SPDX-License-Identifier: MIT
"""Compares the layouts of the public structs and unions in two abidw records.

usage: abi_layouts.py RECORD NEW

Every struct or union defined in a public header (include/dmahal/) of RECORD must have, in
NEW, the same size and the same members at the same offsets. A type NEW adds is fine. This
backs abidiff up where its report leaves a change out: a struct that a public function
takes, also reached through an opaque object's insides, is reported once, there, where the
public headers filter hides it.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def layouts(path, public):
    """(kind, name) -> (size, [(member, offset)]) of the types defined in a public header."""
    out = {}
    for el in ET.parse(path).iter():
        if el.tag not in ("class-decl", "union-decl"):
            continue
        name = el.get("name")
        header = el.get("filepath", "").rsplit("/", 1)[-1]
        if not name or el.get("is-declaration-only") == "yes" or header not in public:
            continue
        members = []
        for dm in el.findall("data-member"):
            var = dm.find("var-decl")
            members.append((var.get("name") if var is not None else "?",
                            dm.get("layout-offset-in-bits")))
        out[(el.tag, name)] = (el.get("size-in-bits"), members)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    public = {os.path.basename(h) for h in glob.glob(os.path.join(root, "include/dmahal/*.h"))}
    old, new = layouts(sys.argv[1], public), layouts(sys.argv[2], public)
    bad = 0
    for key, (size, members) in sorted(old.items()):
        kind, name = key
        if key not in new:
            continue  # no longer reached from an export: abidiff reports the function
        nsize, nmembers = new[key]
        if (nsize, nmembers) != (size, members):
            bad += 1
            print(f"abi: {kind.split('-')[0]} {name}: {size} bits {members}")
            print(f"     is now {nsize} bits {nmembers}")
    print(f"abi: {len(old)} public struct and union layouts compared, {bad} changed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
