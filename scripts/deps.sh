#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages dmahal needs, skipping those already present.
#   scripts/deps.sh            build and test on the simulated platform
#   scripts/deps.sh --vm       also what the QEMU guest tests need
#   scripts/deps.sh --bench    also what the benchmarks compare against (DPDK)
#   scripts/deps.sh --lint     what scripts/lint.sh runs (clang-format, cppcheck, python3)
set -euo pipefail

# abigail-tools: the ABI check; doxygen: the API reference; libdw-dev: the verifier's
# backtraces (file:line, static functions).
pkgs=(cmake make gcc g++ libc6-dev pkg-config gdb abigail-tools doxygen libdw-dev)
for arg in "$@"; do
    case "$arg" in
    --vm) pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod) ;;
    --bench) pkgs+=(dpdk-dev libdpdk-dev) ;;
    --lint) pkgs+=(clang-format cppcheck git python3) ;;
    *) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
