#!/usr/bin/env bash
# Shoal's main job: builds the release preset and runs the demo - several threads build
# and share an object graph on one heap while it is collected - then prints the GC
# statistics. Installs its own dependencies on Debian 12 when they are missing.
# Usage: tools/demo.sh [demo options, e.g. --threads 4 --seconds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build build/release --target shoal_demo
exec build/release/shoal_demo "$@"
