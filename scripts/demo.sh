#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds dmahal and runs the main job: the seed's story on the simulated machine.
#   scripts/demo.sh [dmahal demo options, e.g. --platform sim:iommu=on]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DDMAHAL_BUILD_BENCH=OFF >/dev/null
cmake --build build -j2 --target dmahal_tool >/dev/null
exec build/dmahal demo "$@"
