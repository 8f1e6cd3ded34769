#!/usr/bin/env bash
# Builds and runs Shoal's test suite: release build, then ThreadSanitizer, then
# AddressSanitizer+UBSan (skip the sanitizers with SHOAL_TEST_PRESETS="release").
# Installs its own dependencies on Debian 12 when they are missing.
# Usage: tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
presets=${SHOAL_TEST_PRESETS:-"release tsan asan"}
jobs=$(nproc)
for preset in $presets; do
  echo "=== shoal: preset $preset ==="
  cmake --preset "$preset" >/dev/null
  cmake --build "build/$preset" -j "$jobs"
  # TSan needs a fixed memory layout; setarch -R disables ASLR for the test processes.
  runner=()
  [ "$preset" = tsan ] && setarch "$(uname -m)" -R true 2>/dev/null && runner=(setarch "$(uname -m)" -R)
  "${runner[@]}" ctest --preset "$preset" -j "$jobs" --no-tests=error
done
echo "=== shoal: all presets passed ($presets) ==="
