# CMake toolchain: cross-build Shoal for AArch64 Linux (glibc) on Debian 12 x86-64 with
# Debian's cross compiler (g++-aarch64-linux-gnu) and multiarch :arm64 libraries
# (libtbb-dev:arm64, libgtest-dev:arm64, libjemalloc2:arm64); ctest runs the test
# programs - and gtest_discover_tests' PRE_TEST listing - under qemu-user.
# tools/test-aarch64.sh installs all of it and uses this file; by hand:
#   cmake -S . -B build/aarch64 -G Ninja --toolchain tools/aarch64-toolchain.cmake \
#         -DCMAKE_BUILD_TYPE=Release -DSHOAL_BUILD_BENCH=OFF
# jemalloc's -dev package is not Multi-Arch: same (libjemalloc-dev:arm64 would replace
# the native one), so tools/test-aarch64.sh unpacks it privately and adds its .pc
# directory with PKG_CONFIG_PATH, which this file leaves to the environment.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian multiarch: find_library/find_package look in lib/aarch64-linux-gnu
# (e.g. /usr/lib/aarch64-linux-gnu/cmake/TBB, .../cmake/GTest), never in x86_64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Target files live in the cross toolchain's tree (libc, libstdc++) and in the multiarch
# directories under / (headers in /usr/include are architecture-independent). Programs
# (pkg-config, qemu) are the build machine's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see only arm64 .pc files (the native ones describe x86-64 libraries).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# Run target programs under qemu-user: ctest (add_test with a target as the command) and
# GoogleTest's PRE_TEST discovery both prefix CMAKE_CROSSCOMPILING_EMULATOR, here
# tools/qemu-aarch64-run.sh (qemu-aarch64 -L /, plus re-exec support for death tests).
# -L / rather than -L /usr/aarch64-linux-gnu: the dynamic loader
# (/lib/ld-linux-aarch64.so.1) and every library then come from the multiarch :arm64
# packages (libc6:arm64 and what libtbb12/libjemalloc2 pull in), one consistent glibc.
# With -L /usr/aarch64-linux-gnu, that tree's ld.so (libc6-arm64-cross, 2.36-8cross1)
# finds libc.so.6 in /lib/aarch64-linux-gnu (libc6:arm64, 2.36-9+deb12uN): a loader and
# a libc from different builds, and test programs hang inside libc.
set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/qemu-aarch64-run.sh")
