# SPDX-License-Identifier: MIT
# dmahal.py - the `dma` command for GDB: the !dma analog, from the process's own memory.
#
#   (gdb) source tools/gdb/dmahal.py
#   (gdb) dma                     every platform, device and adapter
#   (gdb) dma 0 0x2               ... with their common buffers
#   (gdb) dma 0x5555555592a0 0xf  one adapter (its address, or #ID), everything about it
#
# Flags are dmahal_dump's, numbered as !dma numbers its own: 0x1 map registers, 0x2 common
# buffers, 0x4 scatter/gather lists, 0x8 the device description. When the verifier is on, the
# buffers come with their guard state and the backtrace of their allocation, and the
# quarantine and the report counts are listed.
#
# It reads only memory and debug information (the global list dmahal__platforms and the
# structs in src/core/core.h and src/verifier/verifier.h): it calls nothing in the process,
# takes no lock, so it works on a live process stopped anywhere, and on a core file.
import gdb

DUMP_MAPREGS = 0x01
DUMP_COMMON = 0x02
DUMP_SGL = 0x04
DUMP_DESC = 0x08

GUARD_BYTE = 0xFC
REPORT_KIND_NAMES = [
    None, "verifier-out-of-memory", "bad-adapter", "double-free", "free-unknown",
    "free-wrong-length", "free-wrong-address", "free-wrong-adapter", "leak", "overrun",
    "underrun", "write-after-free", "device-out-of-bounds", "device-use-after-free",
    "device-write-to-device-mapping", "cpu-write-while-device-owns", "double-unmap",
    "unmap-not-mapped", "sync-not-mapped", "wrong-adapter", "sgl-modified",
    "sync-out-of-range", "too-many-map-registers", "freed-while-mapped", "zero-length-map",
    "overlapping-mappings", "not-flushed", "map-leak", "device-use-after-unmap",
    "free-wrong-cache", "not-invalidated",
]


def _str(v):
    try:
        return v.string()
    except gdb.error:
        return "<unreadable>"


def _ptr(v):
    return int(v.cast(gdb.lookup_type("unsigned long")))


def _list(head, link):
    """Follows a NULL-terminated linked list of struct pointers."""
    seen = set()
    while _ptr(head) and _ptr(head) not in seen:
        seen.add(_ptr(head))
        yield head
        head = head[link]


def _platforms():
    try:
        head = gdb.parse_and_eval("dmahal__platforms")
    except gdb.error:
        raise gdb.GdbError("dma: no dmahal__platforms here: is the program linked with "
                           "dmahal, with debug information?")
    return _list(head, "next_platform")


def _read(addr, n):
    try:
        return bytes(gdb.selected_inferior().read_memory(addr, n))
    except gdb.MemoryError:
        return None


def _symbolise(pc):
    """'function+off (file:line)' for a return address, as far as debug info tells."""
    text = "0x%x" % pc
    try:
        sym = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
        if not sym.startswith("No symbol"):
            text += " " + sym.split(" in section")[0].replace(" + ", "+")
        sal = gdb.find_pc_line(pc - 1)
        if sal.symtab:
            text += " (%s:%d)" % (sal.symtab.filename, sal.line)
    except gdb.error:
        pass
    return text


def _common_buffers(a):
    """The adapter's live buffers, walking the allocator's arenas (unverified adapters)."""
    cm = a["common"]
    page = int(a["dev"]["p"]["page_size"])
    for i in range(int(cm["narenas"])):
        ar = cm["arenas"][i]
        va, la = _ptr(ar["ch"]["va"]), int(ar["ch"]["la"])
        if bool(ar["single"]):
            if int(ar["single_len"]):
                yield va, la, int(ar["single_len"])
            continue
        for pg in range(int(ar["npages"])):
            off = pg * page
            if int(ar["head_len"][pg]):
                yield va + off, la + off, int(ar["head_len"][pg])
            s = ar["slabs"][pg]
            if _ptr(s):
                shift = int(s["shift"])
                for o in range(int(s["nobj"])):
                    n = int(s["lens"][o])
                    if n:
                        yield _ptr(s["va"]) + (o << shift), int(s["la"]) + (o << shift), n


def _verified_records(v, adapter=None, live=True):
    for rec in _list(v["recs"], "next"):
        if adapter is not None and _ptr(rec["a"]) != _ptr(adapter):
            continue
        if live is not None and (int(rec["state"]) == 0) != live:
            continue
        yield rec


def _guard_state(rec):
    va, n = _ptr(rec["user"]["va"]), int(rec["user"]["len"])
    head, tail = int(rec["head"]), int(rec["tail"])
    if not head and not tail:
        return "no guards"
    before = _read(va - head, head) if head else b""
    after = _read(va + n, tail) if tail else b""
    if before is None or after is None:
        return "guards unreadable"
    bad_after = [i for i, c in enumerate(after) if c != GUARD_BYTE]
    bad_before = [head - i for i, c in enumerate(before) if c != GUARD_BYTE]
    if not bad_after and not bad_before:
        return "guards intact (%d before, %d after)" % (head, tail)
    parts = []
    if bad_after:
        parts.append("OVERRUN: %d..%d byte(s) past the end changed"
                     % (bad_after[0] + 1, bad_after[-1] + 1))
    if bad_before:
        parts.append("UNDERRUN: %d..%d byte(s) before the start changed"
                     % (min(bad_before), max(bad_before)))
    return "; ".join(parts)


# Items of a section go to a list first, so that the section's count comes before them,
# as in dmahal_dump.
_sink = None


def _w(text):
    if _sink is None:
        gdb.write(text)
    else:
        _sink.append(text)


def _collect(fn, *args):
    """Runs fn, keeping what it writes: (its result, the text)."""
    global _sink
    saved, _sink = _sink, []
    try:
        result = fn(*args)
        return result, "".join(_sink)
    finally:
        _sink = saved


def _print_bt(bt, indent):
    """A backtrace: the verifier keeps each in its stack depot, and points to it."""
    if bt.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
        if not _ptr(bt):
            _w("%s(no backtrace recorded)\n" % indent)
            return
        bt = bt.dereference()
    n = int(bt["n"])
    if not n:
        _w("%s(no backtrace recorded)\n" % indent)
    for i in range(n):
        _w("%s#%d %s\n" % (indent, i, _symbolise(_ptr(bt["pc"][i]))))


def _print_buffer(va, la, n, extra=""):
    _w("      buffer va 0x%x  la 0x%012x-0x%012x  len %d%s\n"
              % (va, la, la + n - 1, n, extra))


DIR_NAMES = {1: "to-device", 2: "from-device", 3: "bidirectional"}


def _verified_maps(v, adapter):
    try:
        head = v["maps"]
    except gdb.error:
        return  # a build without streaming DMA
    for m in _list(head, "next"):
        if _ptr(m["a"]) == _ptr(adapter):
            yield m


def _dump_lists(a, verify):
    """Live scatter/gather lists: the verifier records them (with where they were mapped);
    an unverified adapter's are counted from its map registers only."""
    if not _ptr(verify):
        _w("    scatter/gather lists: shown for verified adapters\n")
        return
    n, text = _collect(_list_maps, a, verify)
    _w("    scatter/gather lists: %d (verified)\n" % n)
    _w(text)


def _list_maps(a, verify):
    n = 0
    for m in _verified_maps(verify["v"], a):
        n += 1
        sgl = m["inner"]
        _w("      %s mapping #%d of %d bytes, %d segment(s)%s\n"
                  % (DIR_NAMES.get(int(m["dir"]), "?"), int(m["seq"]), int(m["bytes"]),
                     int(sgl["nseg"]), ", CPU owns it" if bool(m["cpu_owns"]) else ""))
        for i in range(int(sgl["nseg"])):
            seg = sgl["seg"][i]
            _w("        la 0x%012x len %d\n" % (int(seg["la"]), int(seg["len"])))
        _w("        mapped by:\n")
        _print_bt(m["map_bt"], "          ")
    return n


def _dump_adapter(a, flags):
    c = a["c"]
    verify = a["verify"]
    _w("  adapter 0x%x  id %d  %d-bit  map registers %d  %s%s\n"
              % (_ptr(a), int(a["id"]), int(c["addr_bits"]), int(a["map_registers"]),
                 "coherent" if bool(c["coherent"]) else "non-coherent",
                 "  (verified)" if _ptr(verify) else ""))
    if flags & DUMP_DESC:
        d = a["desc"]
        _w("    description: addr_bits %d, max_segments %d, max_transfer %d,\n"
                  "                 max_segment %d, boundary 0x%x, alignment %d, coherent %s\n"
                  % (int(d["addr_bits"]), int(d["max_segments"]), int(d["max_transfer"]),
                     int(d["max_segment"]), int(d["boundary"]), int(d["alignment"]),
                     "yes" if bool(d["coherent"]) else "no"))
        _w("    reach: logical addresses up to 0x%x\n" % int(c["max_addr"]))
    if flags & DUMP_MAPREGS:
        in_use = ""
        try:
            if _ptr(a["stream"]):
                in_use = ", %d in use" % int(a["stream"]["regs"])
        except gdb.error:
            pass  # a build without streaming DMA
        _w("    map registers: %d%s\n" % (int(a["map_registers"]), in_use))
    (count, total), text = _collect(_list_buffers, a, verify, flags)
    _w("    common buffers: %d, %d bytes%s\n" % (count, total, " (verified)" if _ptr(verify) else ""))
    _w(text)
    if flags & DUMP_SGL:
        _dump_lists(a, verify)


def _list_buffers(a, verify, flags):
    count = total = 0
    if _ptr(verify):
        for rec in _verified_records(verify["v"], a):
            u = rec["user"]
            count += 1
            total += int(u["len"])
            if flags & DUMP_COMMON:
                _print_buffer(_ptr(u["va"]), int(u["la"]), int(u["len"]),
                              "  #%d" % int(rec["seq"]))
                _w("        %s\n        allocated by:\n" % _guard_state(rec))
                _print_bt(rec["alloc_bt"], "          ")
        return count, total
    for va, la, n in _common_buffers(a):
        count += 1
        total += n
        if flags & DUMP_COMMON:
            _print_buffer(va, la, n)
    return count, total


def _dump_verifier(v):
    gdb.write("verifier: %s, %d allocations, %d frees, %d buffers in quarantine\n"
              % ("on" if bool(v["on"]) else "off (out of memory)",
                 int(v["allocs"]), int(v["frees"]), int(v["q_n"])))
    for rec in _list(v["q_head"], "qnext"):
        u = rec["user"]
        gdb.write("  quarantined: %d-byte buffer la 0x%012x va 0x%x, freed %d frees ago\n"
                  % (int(u["len"]), int(u["la"]), _ptr(u["va"]),
                     int(v["frees"]) - int(rec["free_seq"])))
    gdb.write("  reports: %d\n" % int(v["total"]))
    for k in range(1, len(REPORT_KIND_NAMES)):
        n = int(v["count"][k])
        if n:
            gdb.write("    %s: %d\n" % (REPORT_KIND_NAMES[k], n))


def _parse_adapter(arg):
    """None for every adapter, else ('id', N) or ('addr', A)."""
    if arg in ("0", "*"):
        return None
    if arg.startswith("#"):
        return ("id", int(arg[1:], 0))
    return ("addr", int(gdb.parse_and_eval(arg).cast(gdb.lookup_type("unsigned long"))))


def _matches(a, which):
    if which is None:
        return True
    if which[0] == "id":
        return int(a["id"]) == which[1]
    return _ptr(a) == which[1]


class DmaCommand(gdb.Command):
    """Shows dmahal's DMA state: dma [ADAPTER [FLAGS]]

ADAPTER is 0 (every adapter), an adapter's address, or #ID. FLAGS, as !dma's:
0x1 map registers, 0x2 common buffers, 0x4 scatter/gather lists, 0x8 device description.
Works on a live process and on a core file; it calls nothing in the process."""

    def __init__(self):
        super().__init__("dma", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        args = gdb.string_to_argv(argument)
        which = _parse_adapter(args[0]) if args else None
        flags = int(args[1], 0) if len(args) > 1 else (DUMP_COMMON if which else 0)
        found = False
        for p in _platforms():
            gdb.write("platform 0x%x  %s  page %d  iommu %s\n"
                      % (_ptr(p), _str(p["spec"]), int(p["page_size"]),
                         "on" if bool(p["has_iommu"]) else "off"))
            for d in _list(p["devices"], "next"):
                adapters = [a for a in _list(d["adapters"], "next") if _matches(a, which)]
                if which is not None and not adapters:
                    continue
                gdb.write("device %s\n" % _str(d["name"]))
                if not adapters:
                    gdb.write("  no adapters\n")
                for a in adapters:
                    found = True
                    _dump_adapter(a, flags)
            v = p["verifier"]
            if _ptr(v) and which is None:
                _dump_verifier(v)
        if which is not None and not found:
            raise gdb.GdbError("dma: no such adapter")


DmaCommand()
