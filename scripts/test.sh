#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds dmahal and runs its whole test suite.
#   scripts/test.sh                        every test (unit, sim, tool, install, QEMU guest)
#   scripts/test.sh --sanitize address,undefined   the suite under ASan+UBSan (no guest)
#   scripts/test.sh --sanitize thread      the concurrency tests under TSan
#   scripts/test.sh --no-vm                skip the QEMU guest tests
#   scripts/test.sh --no-verifier          the library built without the verifier (no guest)
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
vm=1
verifier=ON
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) sanitize="$2"; shift 2 ;;
    --no-vm) vm=0; shift ;;
    --no-verifier) verifier=OFF; vm=0; shift ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$sanitize" ] && vm=0

if [ "$vm" = 1 ]; then scripts/deps.sh --vm --bench; else scripts/deps.sh --bench; fi

build=build
ctest_args=(--output-on-failure -j2)
cmake_args=(-DDMAHAL_BUILD_BENCH=ON -DDMAHAL_VERIFIER=$verifier)
[ "$verifier" = OFF ] && build=build-noverifier
if [ -n "$sanitize" ]; then
    build="build-${sanitize//,/-}"
    cmake_args+=(-DDMAHAL_SANITIZE="$sanitize" -DCMAKE_BUILD_TYPE=Debug)
    [ "$sanitize" = thread ] && ctest_args+=(-L concurrency)
    # Sanitizers slow a program 2-15x, and CI machines are shared: give each case room. A
    # limit is there to stop a hang, never to judge speed.
    export TEST_TIMEOUT="${TEST_TIMEOUT:-240}"
    ctest_args+=(--timeout 1500)
fi
if [ "$vm" = 1 ]; then cmake_args+=(-DDMAHAL_VM_TESTS=ON); else cmake_args+=(-DDMAHAL_VM_TESTS=OFF); fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}"

cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" "${ctest_args[@]}"
