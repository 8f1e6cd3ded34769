#!/bin/sh
# Runs an AArch64 Linux program under qemu-user:  tools/qemu-aarch64-run.sh PROGRAM [ARGS]
# It is CMAKE_CROSSCOMPILING_EMULATOR in tools/aarch64-toolchain.cmake, so ctest and
# gtest_discover_tests run the test programs through it.
#
# -L /: the dynamic loader and every library come from the multiarch :arm64 packages
# (libc6:arm64 ...), one consistent glibc (see the toolchain file for why not the cross
# tree /usr/aarch64-linux-gnu).
#
# -0 "$0": the program sees this script as its argv[0]. googletest's "threadsafe" death
# tests re-execute the test binary with execv(argv[0], ...); without binfmt_misc (not
# available in containers) execv of an AArch64 binary fails with "Exec format error", so
# the child execs this script instead, which starts qemu on the same program again.
set -e
qemu=${SHOAL_QEMU_AARCH64:-$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)}
[ -n "$qemu" ] || { echo "qemu-aarch64-run.sh: qemu-aarch64 not found (apt-get install qemu-user)" >&2; exit 127; }
if [ -n "${SHOAL_QEMU_PROGRAM:-}" ]; then
  # Re-executed through argv[0] by the program: the arguments are the program's own.
  exec "$qemu" -L / -0 "$0" "$SHOAL_QEMU_PROGRAM" "$@"
fi
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
SHOAL_QEMU_PROGRAM=$(readlink -f "$1")
export SHOAL_QEMU_PROGRAM
shift
exec "$qemu" -L / -0 "$0" "$SHOAL_QEMU_PROGRAM" "$@"
