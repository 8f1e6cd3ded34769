#!/usr/bin/env bash
# Installs the built tree into a scratch prefix, then configures, builds and runs the
# out-of-tree consumer twice: through the CMake package (find_package(shoal)) and through
# pkg-config. Usage: check_install.sh <build dir> <source dir> <c++ compiler>
set -euo pipefail
build=$1 src=$2 cxx=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"
pcdir=$(dirname "$(find "$work/prefix" -name shoal.pc | head -1)")
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists shoal
"$cxx" -O1 "$src/tests/install/consumer/consumer.cc" $(pkg-config --cflags shoal) \
       $(pkg-config --libs --static shoal) -o "$work/consumer_pc"
"$work/consumer_pc"
