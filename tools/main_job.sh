#!/usr/bin/env bash
# Shoal's main job (issue 11): load the AST of a large body of real code - the machine's
# own Python standard library, parsed by Python's `ast` module - into memory every way a
# runtime could: one thread, N threads straight into Shoal's shared heap, N isolates that
# deep-copy or serialize their trees to the main isolate, Boehm GC and new/delete. Every
# forest is checked against the file; the table says how long each took, its GC pauses
# and its peak memory.
#
# Installs what is missing (Debian 12, apt-get), builds the release preset, writes the
# corpus once (build/corpus/stdlib.sast, a few minutes) and runs the benchmark.
#
# Usage: tools/main_job.sh [shoal_ast_bench options, e.g. --runs 5 --threads 1,2,4]
#   SHOAL_CORPUS=FILE.sast  use another corpus (tools/ast_corpus/ast_corpus.py write ...)
#   SHOAL_CORPUS_SRC=DIR    build the default corpus from another source tree
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build build/release --target shoal_ast_bench
corpus=${SHOAL_CORPUS:-build/corpus/stdlib.sast}
if [ ! -s "$corpus" ]; then
  mkdir -p "$(dirname "$corpus")"
  src_args=()
  [ -n "${SHOAL_CORPUS_SRC:-}" ] && src_args=(--src "$SHOAL_CORPUS_SRC")
  echo "shoal: writing the AST corpus $corpus from $(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])' 2>/dev/null) (once; a few minutes)" >&2
  # At least 16 M nodes (the sources repeated if need be: a Debian python3 has ~1 M, a
  # full CPython tree with its tests ~17 M), so that every machine loads the same amount.
  python3 tools/ast_corpus/ast_corpus.py write "${src_args[@]}" --min-nodes 16000000 "$corpus.tmp"
  mv "$corpus.tmp" "$corpus"
fi
out=$(dirname "$corpus")
exec build/release/bench/shoal_ast_bench --corpus "$corpus" --runs 3 \
  --json "$out/main_job.json" --svg "$out/main_job.svg" --trace "$out/main_job_gc_trace.json" "$@"
