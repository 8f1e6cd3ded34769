#!/usr/bin/env bash
# Cross-builds Shoal for AArch64 (Debian's g++-aarch64-linux-gnu, multiarch :arm64
# libraries; toolchain in tools/aarch64-toolchain.cmake) - Release, assertions on,
# -Werror, no benchmarks - in build/aarch64, and runs the release test suite (the
# googletest binary tests/shoal_tests and the shoal_stress runs) under qemu-user through
# ctest. This exercises the AArch64 code paths (stack_scanner's register capture, the
# AArch64 code generated for every atomic). It cannot prove the acquire/release claims:
# qemu-user on an x86-64 host performs guest loads and stores with the host's stronger
# (TSO) ordering, so a missing acquire/release shows only on real Arm hardware.
# Installs what it needs on Debian 12 x86-64 when it is missing (adds the arm64 dpkg
# architecture); safe to run again.
# Usage: tools/test-aarch64.sh [extra ctest arguments, e.g. -R Roots]
#   SHOAL_JOBS=N   build and test parallelism (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=build/aarch64
jobs=${SHOAL_JOBS:-$(nproc)}
t0=$SECONDS

# Tests left out under emulation (ctest -E regex). Keep each one documented here.
#   None so far: every test runs in under 6 s under qemu (the stress runs are bounded by
#   --seconds), and the death tests re-execute through tools/qemu-aarch64-run.sh.
exclude=${SHOAL_AARCH64_EXCLUDE:-}

# --- 1. Packages -----------------------------------------------------------------------
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
need_root() {
  [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1 ||
    { echo "shoal: need root (or sudo) to $*" >&2; exit 1; }
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

host_packages=(g++-aarch64-linux-gnu qemu-user cmake ninja-build pkg-config)
# Multi-Arch: same, so they sit beside the x86-64 ones (apt may have to bring the native
# copies of shared dependencies to the same version, e.g. libudev1 for hwloc).
arm64_packages=(libc6:arm64 libtbb-dev:arm64 libgtest-dev:arm64 libjemalloc2:arm64)

updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  need_root "add the arm64 architecture"
  echo "shoal: dpkg --add-architecture arm64" >&2
  $sudo dpkg --add-architecture arm64
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  updated=1
fi
missing=()
for p in "${host_packages[@]}" "${arm64_packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -ne 0 ]; then
  need_root "apt-get install ${missing[*]}"
  echo "shoal: installing missing packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  [ $updated -eq 1 ] || $sudo apt-get update -qq
  # --no-remove: never trade a native package for an arm64 one.
  $sudo apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi

# libjemalloc-dev is not Multi-Arch: same (installing libjemalloc-dev:arm64 would remove
# the native one), so unpack its arm64 build privately, matching libjemalloc2:arm64.
jemalloc_version=$(dpkg-query -W -f='${Version}' libjemalloc2:arm64)
jemalloc_dev=$root/$build/deps/jemalloc-dev-arm64
jemalloc_pc=$jemalloc_dev/usr/lib/aarch64-linux-gnu/pkgconfig
if [ "$(cat "$jemalloc_dev/.version" 2>/dev/null)" != "$jemalloc_version" ]; then
  echo "shoal: unpacking libjemalloc-dev:arm64 $jemalloc_version into $jemalloc_dev" >&2
  rm -rf "$jemalloc_dev"
  mkdir -p "$jemalloc_dev"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "libjemalloc-dev:arm64=$jemalloc_version")
  dpkg-deb -x "$tmp"/libjemalloc-dev_*_arm64.deb "$jemalloc_dev"
  rm -rf "$tmp"
  # Link against the installed libjemalloc2:arm64, and point the .pc at the private tree.
  ln -sf /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
         "$jemalloc_dev/usr/lib/aarch64-linux-gnu/libjemalloc.so"
  sed -i "s|^prefix=.*|prefix=$jemalloc_dev/usr|" "$jemalloc_pc/jemalloc.pc"
  echo "$jemalloc_version" > "$jemalloc_dev/.version"
fi
export PKG_CONFIG_PATH=$jemalloc_pc
t_deps=$SECONDS

# --- 2. Configure and build ------------------------------------------------------------
echo "=== shoal: aarch64 cross build ($build) ==="
cmake -S . -B "$build" -G Ninja --toolchain tools/aarch64-toolchain.cmake \
  -DCMAKE_BUILD_TYPE=Release -DSHOAL_ASSERTIONS=ON -DSHOAL_WERROR=ON \
  -DSHOAL_BUILD_TESTS=ON -DSHOAL_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs"
t_build=$SECONDS

# --- 3. Test under qemu-user -----------------------------------------------------------
echo "=== shoal: aarch64 tests under $(command -v qemu-aarch64 || command -v qemu-aarch64-static) ==="
ctest_args=(--test-dir "$build" -j "$jobs" --output-on-failure --no-tests=error)
[ -n "$exclude" ] && ctest_args+=(-E "$exclude")
ctest "${ctest_args[@]}" "$@"
t_test=$SECONDS

echo "=== shoal: aarch64 passed (deps $((t_deps - t0)) s, build $((t_build - t_deps)) s," \
     "tests $((t_test - t_build)) s, total $((t_test - t0)) s) ==="
