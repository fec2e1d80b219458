#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/vm/run.sh - runs test programs inside a QEMU guest with a real (emulated) IOMMU, or
# (--machine noiommu) inside one without an IOMMU.
#
# Builds an initramfs from Debian's packages already on this machine (busybox-static, the
# linux-image-amd64 kernel and its VFIO modules) plus the statically linked programs given,
# boots it on q35 with intel-iommu and three test devices, and reports one line per program:
#
#   guest PCI   device                                      exported to the tests as
#   00:03.0     edu (QEMU's default 28-bit DMA mask)          DMAHAL_VM_EDU
#   00:04.0     edu,dma_mask=2^64-1                           DMAHAL_VM_EDU64
#   00:05.0     nvme backed by a 64 MiB file                  DMAHAL_VM_NVME
#   00:1f.3     ICH9 SMBus, in the chipset's IOMMU group       DMAHAL_VM_SMBUS
#
# All four are bound to vfio-pci in the guest; DMAHAL_PLATFORM=vfio is exported too. The
# chipset's LPC bridge (00:1f.0) is bound to its host driver, lpc_ich, so that the SMBus
# device's group is not viable and 00:1f.0 is "bound to another driver": the error paths.
# A program passes when it exits 0 and the guest kernel logged no DMAR fault while it ran.
# A program that means to make the IOMMU fault prints a line containing EXPECT-DMAR-FAULT:
# it then passes only if a fault was logged.
#
# --machine noiommu boots the seed's own machine instead: q35 without an IOMMU, 6 GiB of RAM
# (most of it above 4 GiB), memmap=128M$0x8000000 (a low reservation the noiommu platform takes
# as its lowmem) and hugepages=192 on the kernel command line, the same three test devices
# bound to uio_pci_generic, DMAHAL_PLATFORM=noiommu and DMAHAL_NOIOMMU_LOWMEM exported.
#
# usage: tests/vm/run.sh [options] PROGRAM...
#   --timeout SECS   whole run, boot included (default 600); the guest never outlives it
#   --test-timeout S per program inside the guest (default 180)
#   --kernel PATH    kernel image (default: the newest /boot/vmlinuz-*); its modules are
#                    taken from /lib/modules/VERSION
#   --keep           keep the work directory (initramfs, serial log) and print its path
#   --verbose        copy the guest's serial console to stdout as it runs
#   --boot-only      boot, list devices and IOMMU groups, run nothing (PROGRAMs optional)
#   --machine M      iommu (default: intel-iommu, vfio-pci) or noiommu (see above)
#   --args NAME ARGS the program called NAME runs with ARGS (split at blanks)
#   --file PATH      also copy PATH (a static program the tests run, e.g. the dmahal command)
#                    into the guest's /tests, without running it as a test; repeatable
# Exit status: 0 when every program passed, 1 when one failed, 2 when the harness itself
# could not run (missing QEMU, kernel, modules or busybox; the guest did not finish).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
timeout_s=600
test_timeout=180
kernel=
keep=0
verbose=0
boot_only=0
machine=iommu
progs=()
declare -A prog_args=()
files=()

die() {
    echo "vm: error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --timeout) timeout_s=$2; shift 2 ;;
    --test-timeout) test_timeout=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --verbose) verbose=1; shift ;;
    --boot-only) boot_only=1; shift ;;
    --machine) machine=$2; shift 2 ;;
    --args) prog_args[$2]=$3; shift 3 ;;
    --file) files+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; progs+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) progs+=("$1"); shift ;;
    esac
done
[ ${#progs[@]} -gt 0 ] || [ $boot_only = 1 ] || die "no test programs given (see --help)"
case $machine in iommu | noiommu) ;; *) die "unknown machine $machine (iommu or noiommu)" ;; esac

# A program with no ELF interpreter needs no shared libraries: the guest has none.
is_static() {
    command -v readelf >/dev/null || die "readelf not found: apt-get install binutils"
    readelf -h "$1" >/dev/null 2>&1 && ! readelf -l "$1" 2>/dev/null | grep -q INTERP
}

# ---- what the host must have -----------------------------------------------------------------
qemu=$(command -v qemu-system-x86_64) ||
    die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"
busybox=/bin/busybox
[ -x "$busybox" ] || busybox=$(command -v busybox) || die "busybox not found"
is_static "$busybox" ||
    die "$busybox is not statically linked: apt-get install busybox-static"
command -v cpio >/dev/null || die "cpio not found: apt-get install cpio"
if [ -z "$kernel" ]; then
    kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1) || true
    [ -n "$kernel" ] || die "no kernel in /boot: apt-get install linux-image-amd64"
fi
[ -r "$kernel" ] || die "kernel $kernel missing or unreadable"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || die "no modules for kernel $kver in $moddir"
for p in "${progs[@]}"; do
    [ -x "$p" ] || die "test program $p missing or not executable"
    is_static "$p" ||
        die "$p is not statically linked (configure with -DDMAHAL_STATIC_TESTS=ON)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/dmahal-vm.XXXXXX")
cleanup() {
    if [ $keep = 1 ]; then echo "vm: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- initramfs -------------------------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,modules,tests}
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init"

# The modules VFIO needs (and lpc_ich, for the error paths), each after the modules it
# depends on (modinfo's depends=).
declare -A seen=()
order=()
add_module() {
    local m=$1 dep f
    m=${m//-/_}
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    f=$(modinfo -k "$kver" -F filename "$m" 2>/dev/null) ||
        die "module $m not found for kernel $kver"
    [ "$f" != "(builtin)" ] || return 0
    for dep in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do
        add_module "$dep"
    done
    case $f in
    *.ko) cp "$f" "$root/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$root/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$root/modules/$m.ko" ;;
    *) die "unexpected module file $f" ;;
    esac
    order+=("$m")
}
if [ $machine = noiommu ]; then
    for m in uio uio_pci_generic; do add_module "$m"; done
else
    for m in vfio vfio_iommu_type1 vfio_pci lpc_ich; do add_module "$m"; done
fi
printf '%s\n' "${order[@]}" >"$root/modules.order"
# The kernel's own nvme driver (and what it needs) goes in beside them, not loaded: bench_nvme_vm
# loads it from modules.extra to compare it with the user-space driver on the same controller.
if [ $machine = iommu ]; then
    order=()
    add_module nvme
    printf '%s\n' "${order[@]}" >"$root/modules.extra"
fi
echo "$machine" >"$root/machine"

if [ $machine = noiommu ]; then
    cat >"$root/devices.conf" <<'EOF'
bind_uio DMAHAL_VM_EDU 0000:00:03.0 1234:11e8
bind_uio DMAHAL_VM_EDU64 0000:00:04.0 1234:11e8
bind_uio DMAHAL_VM_NVME 0000:00:05.0 1b36:0010
export DMAHAL_PLATFORM=noiommu
export DMAHAL_NOIOMMU_LOWMEM=0x8000000+128M
EOF
else
    cat >"$root/devices.conf" <<'EOF'
bind_vfio DMAHAL_VM_EDU 0000:00:03.0 1234:11e8
bind_vfio DMAHAL_VM_EDU64 0000:00:04.0 1234:11e8
bind_vfio DMAHAL_VM_NVME 0000:00:05.0 1b36:0010
bind_vfio DMAHAL_VM_SMBUS 0000:00:1f.3 8086:2930
export DMAHAL_PLATFORM=vfio
export DMAHAL_VM_MODULES=/modules
EOF
fi

: >"$root/tests/list"
if [ $boot_only = 0 ]; then
    declare -A names=()
    for p in "${progs[@]}"; do
        n=$(basename "$p")
        [ -z "${names[$n]:-}" ] || die "two test programs named $n"
        names[$n]=1
        cp "$p" "$root/tests/$n"
        echo "$n" >>"$root/tests/list"
        [ -z "${prog_args[$n]:-}" ] || echo "${prog_args[$n]}" >"$root/tests/$n.args"
    done
    for f in "${files[@]}"; do
        [ -x "$f" ] && is_static "$f" || die "--file $f missing, not executable or not static"
        cp "$f" "$root/tests/$(basename "$f")"
    done
fi
echo "$test_timeout" >"$root/tests/timeout"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.gz"
truncate -s 64M "$work/nvme.img"

# ---- boot ------------------------------------------------------------------------------------
log=$work/serial.log
# TCG, not KVM: the same everywhere, nested virtualisation or not (KVM here could not even
# start a guest). intel-iommu goes first: the devices after it are placed behind it.
# caching-mode=on makes the guest report every map to the IOMMU, not only unmaps: QEMU's own
# emulated devices work without it (they walk the IO page tables on each access, tried), but
# assigned or vhost devices need it, so the guest is set up as such a machine would be.
# intremap=on (with kernel-irqchip=split) gives the guest interrupt remapping, which vfio-pci
# wants for MSI. no_timer_check: the kernel's boot-time check that the timer interrupt
# arrives through the remapped IO-APIC counts on the CPU running at a steady pace, which an
# emulated CPU on a loaded host does not; it then panics ("timer doesn't work through
# Interrupt-remapped IO-APIC"), as it did here.
qemu_args=(
    -M q35,kernel-irqchip=split -accel tcg -cpu max -m 1G -smp 2
    -nodefaults -display none -monitor none -serial stdio -no-reboot
    -device intel-iommu,intremap=on,caching-mode=on
    -device edu,addr=03.0
    -device edu,addr=04.0,dma_mask=0xffffffffffffffff
    -drive "file=$work/nvme.img,if=none,id=nvm0,format=raw"
    -device nvme,drive=nvm0,serial=dmahal0,addr=05.0
    -kernel "$kernel" -initrd "$work/initrd.gz"
    -append "console=ttyS0 intel_iommu=on loglevel=3 panic=-1 no_timer_check"
)
# Without an IOMMU: 6 GiB, so that most RAM (and the hugepages) lie above 4 GiB, where a
# 28- or 32-bit device cannot reach; 128 MiB at 128 MiB reserved for the noiommu platform's
# low pool (memmap=, shown as Reserved in /proc/iomem and reachable through /dev/mem).
if [ $machine = noiommu ]; then
    qemu_args=(
        -M q35 -accel tcg -cpu max -m 6G -smp 2
        -nodefaults -display none -monitor none -serial stdio -no-reboot
        -device edu,addr=03.0
        -device edu,addr=04.0,dma_mask=0xffffffffffffffff
        -drive "file=$work/nvme.img,if=none,id=nvm0,format=raw"
        -device nvme,drive=nvm0,serial=dmahal0,addr=05.0
        -kernel "$kernel" -initrd "$work/initrd.gz"
        -append "console=ttyS0 loglevel=3 panic=-1 no_timer_check memmap=128M\$0x8000000 hugepages=192"
    )
fi
# Runs the guest once. A guest that prints nothing for longer than any program may take
# (the per-program limit plus a minute) has stalled: every vCPU idle, no timer firing. That
# has been seen under TCG on a loaded two-core host, in the middle of a test that passes
# alone; the guest is then stopped, and boot() returns 3.
boot() {
    local qpid last=-1 size idle=0 stall=$((test_timeout + 60))

    : >"$log" # there before --verbose's tail opens it
    timeout --kill-after=10 "$timeout_s" "$qemu" "${qemu_args[@]}" </dev/null >>"$log" 2>&1 &
    qpid=$!
    [ $verbose = 1 ] && tail -n +1 -f --pid="$qpid" "$log" &
    while kill -0 "$qpid" 2>/dev/null; do
        sleep 2
        size=$(stat -c %s "$log" 2>/dev/null || echo 0)
        if [ "$size" = "$last" ]; then idle=$((idle + 2)); else idle=0; last=$size; fi
        if [ $idle -ge $stall ]; then
            echo "vm: the guest printed nothing for ${idle}s: stalled; stopping it" >&2
            pkill -KILL -P "$qpid" 2>/dev/null || true
            kill -KILL "$qpid" 2>/dev/null || true
            wait "$qpid" 2>/dev/null
            return 3
        fi
    done
    wait "$qpid"
}

echo "vm: booting $kver (TCG, machine $machine) with ${#progs[@]} program(s), limit ${timeout_s}s"
t0=$(date +%s.%N)
set +e
boot
qrc=$?
if [ "$qrc" != 3 ] && [ "$qrc" != 124 ] && [ "$qrc" != 137 ] &&
    ! grep -q "^@@VM boot " "$log"; then
    # The kernel died before user space: nothing of the project's had run yet.
    echo "vm: the guest's kernel stopped before user space came up (qemu exit $qrc)" >&2
    qrc=3
fi
if [ "$qrc" = 3 ]; then
    # A stall, or a kernel that died booting, is the emulator's doing, not a program's
    # verdict: say so, keep the log, and run the whole guest once more. A program that fails
    # or hangs on its own fails both times.
    cp "$log" "$work/serial.stalled.log"
    echo "vm: ---- last 20 lines of that run (kept in $work/serial.stalled.log) ----" >&2
    tail -n 20 "$log" >&2
    keep=1
    echo "vm: booting again" >&2
    truncate -s 0 "$work/nvme.img" && truncate -s 64M "$work/nvme.img"
    boot
    qrc=$?
    [ "$qrc" = 3 ] && qrc=124
fi
set -e
t1=$(date +%s.%N)
# Serial output ends lines with CR LF.
sed -i 's/\r$//' "$log"

show_log_tail() {
    echo "---- last 60 lines of the guest console ($log) ----" >&2
    tail -n 60 "$log" >&2
    keep=1
}

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "vm: error: the guest did not finish within ${timeout_s}s; stopped" >&2
    show_log_tail
    exit 2
fi
grep -q '^@@VM done' "$log" || {
    echo "vm: error: the guest stopped before finishing (qemu exit $qrc)" >&2
    show_log_tail
    exit 2
}

# ---- report ----------------------------------------------------------------------------------
boot=$(awk '/^@@VM boot /{print $3; exit}' "$log")
awk -v b="$boot" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "vm: guest up %ss after kernel start; whole run %.1fs\n", b, t1 - t0 }'
grep '^@@VM dev ' "$log" | sed 's/^@@VM dev /vm: device /'
if [ $boot_only = 1 ]; then
    sed -n '/^@@VM pci-begin/,/^@@VM pci-end/p' "$log" | sed '1d;$d; s/^/vm: pci /'
fi
if grep '^@@VM error ' "$log" >&2; then
    show_log_tail
    exit 2
fi

fail=0
bad=$(grep -E '^@@VM dmar (boot|teardown) ' "$log" || true)
if [ -n "$bad" ]; then
    echo "vm: FAIL: DMAR fault outside any test:" >&2
    echo "$bad" >&2
    fail=1
fi

passed=0
failed=0
for n in $(cat "$root/tests/list"); do
    # The program's own lines, between its begin and end markers.
    out=$(awk -v n="$n" '$0 == "@@VM begin " n {on=1; next}
                          on && index($0, "@@VM end " n " ") == 1 {exit}
                          on {print}' "$log")
    end=$(grep -E "^@@VM end $n rc=" "$log" || true)
    faults=$(grep -c "^@@VM dmar $n " "$log" || true)
    expect=0
    grep -q 'EXPECT-DMAR-FAULT' <<<"$out" && expect=1
    why=
    if [ -z "$end" ]; then
        why="did not finish"
    else
        rc=$(sed -E 's/.* rc=([0-9]+).*/\1/' <<<"$end")
        secs=$(sed -E 's/.* secs=([0-9.]+).*/\1/' <<<"$end")
        if [ "$rc" = 143 ]; then
            why="timed out after ${test_timeout}s"
        elif [ "$rc" != 0 ]; then
            why="exit status $rc"
        elif [ "$faults" -gt 0 ] && [ $expect = 0 ]; then
            why="unexpected DMAR fault(s): $faults"
        elif [ "$faults" = 0 ] && [ $expect = 1 ]; then
            why="declared EXPECT-DMAR-FAULT but the IOMMU logged no fault"
        fi
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        note=
        [ $expect = 1 ] && note=", $faults expected DMAR fault log line(s)"
        echo "vm: PASS $n (${secs}s$note)"
    else
        failed=$((failed + 1))
        echo "vm: FAIL $n: $why" >&2
        [ $verbose = 1 ] || { echo "$out" | tail -n 40 | sed 's/^/    /' >&2; }
        grep "^@@VM dmar $n " "$log" | sed 's/^@@VM dmar [^ ]* /    kernel: /' >&2 || true
    fi
done
[ $fail = 0 ] || failed=$((failed + 1))
[ $failed = 0 ] || keep=1
echo "vm: $passed passed, $failed failed"
[ $failed = 0 ]
