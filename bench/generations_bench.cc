// Young-cycle cost versus the size of the old generation (issue 12: "show a run whose
// old generation grows 10x while young pauses and marking time stay flat").
//
// One mutator. The old generation grows in --steps equal steps of --old-step-mib (binary
// trees of depth 12 kept in a table). After each step the program allocates short-lived
// garbage (--churn-mib per cycle: trees of depth 6, dropped at once except one in 16,
// kept in a ring for four cycles) and asks for
// --cycles-per-step cycles with start_collection(CollectionScope::kYoung), waiting for
// each. Pacing is pushed out of the way (gc_growth 1000) so that only these cycles run;
// with generations on, the collector still makes a requested cycle full when its pacer
// says the old generation has grown enough (full_gc_growth), exactly as a paced cycle
// would be. Each mode runs in a fresh child process: generational (the default) and
// --shoal-no-generations (every cycle traces the whole heap).
//
// Per step it prints the old generation's size (the trees kept so far),
// the young and full cycles that ran, and for the young ones the median initial pause,
// final pause, concurrent marking time and bytes marked. Flat columns as the old size
// grows 10x are the claim.
//
// --big-array-mib M adds one old RefArray of M MiB of slots, each holding an old tree,
// into which every young cycle's churn stores one young tree (a random slot; with
// --big-array-stores N the same young tree into N random slots): a large old holder is
// remembered by card (gc/generations.cc, "Cards"), so a young cycle traces the dirty
// cards' slots, not the array (a big table of objects that keeps getting new entries).
// (Before cards, the array was traced whole by every young cycle.)
//
// Usage: shoal_generations_bench [--steps 10] [--old-step-mib 16] [--cycles-per-step 8]
//                                [--churn-mib 16] [--big-array-mib 0] [--big-array-stores 1]
//                                [--modes gen,nogen]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.h"
#include "bench_trees.h"
#include "shoal/shoal.h"

namespace {

using bench::TreeNode;

constexpr int kOldTreeDepth = 12;    // 8191 nodes x 32 B = 256 KiB
constexpr int kChurnTreeDepth = 6;   // 127 nodes x 32 B = 4 KiB
constexpr size_t kNodeBytes = 32;

struct StepRow {
  double old_mib = 0;
  int young = 0, full = 0;
  double initial_us = 0, final_us = 0, mark_ms = 0, marked_mib = 0, full_mark_ms = 0;
};

double p50(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Config {
  int steps = 10;
  int old_step_mib = 16;
  int cycles_per_step = 8;
  int churn_mib = 16;
  int big_array_mib = 0;
  int big_array_stores = 1;
};

void run_mode(const Config& c, bool generational, int out_fd) {
  shoal::HeapOptions o = bench::shoal_options();
  o.generational = generational;
  o.gc_growth = 1000;  // only the requested cycles
  shoal::Heap heap(o);
  shoal::MutatorScope attach(heap);
  const size_t trees_per_step = (size_t{static_cast<size_t>(c.old_step_mib)} << 20) / ((size_t{1} << (kOldTreeDepth + 1)) * kNodeBytes);
  shoal::Persistent<shoal::RefArray> old(heap, shoal::RefArray::create(trees_per_step * static_cast<size_t>(c.steps)));
  constexpr size_t kSurvivorEvery = 16;  // 1/16 of the garbage lives for 4 cycles
  const size_t churn_trees = (size_t{static_cast<size_t>(c.churn_mib)} << 20) / ((size_t{1} << (kChurnTreeDepth + 1)) * kNodeBytes);
  // Some of the garbage survives a while: every kSurvivorEvery-th churn tree goes into a
  // ring (an old array) and stays until the ring comes round again, so each young cycle
  // has young survivors to trace and an old holder on the remembered set, and old
  // garbage accumulates for the full cycles to find.
  const size_t ring_slots = 4 * std::max<size_t>(1, churn_trees / kSurvivorEvery);
  shoal::Persistent<shoal::RefArray> ring(heap, shoal::RefArray::create(ring_slots));
  size_t ring_pos = 0;
  // The big array: old (a requested full cycle below makes it so) and full of old trees.
  const size_t big_slots = (size_t{static_cast<size_t>(c.big_array_mib)} << 20) / sizeof(shoal::Value);
  shoal::Persistent<shoal::RefArray> big(heap, shoal::RefArray::create(big_slots));
  if (big_slots != 0) {
    shoal::Ref<TreeNode> shared = bench::build_tree(kChurnTreeDepth);
    for (size_t i = 0; i < big_slots; ++i) big->set(i, shared.value());
    heap.collect();  // everything so far is old
  }
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  size_t next = 0;
  int64_t sink = 0;
  for (int step = 0; step < c.steps; ++step) {
    for (size_t i = 0; i < trees_per_step; ++i) old->set(next++, bench::build_tree(kOldTreeDepth).value());
    const uint64_t first = heap.stats().collections + 1;
    for (int k = 0; k < c.cycles_per_step; ++k) {
      for (size_t i = 0; i < churn_trees; ++i) {
        shoal::Ref<TreeNode> t = bench::build_tree(kChurnTreeDepth);
        sink += t->value;
        if (i % kSurvivorEvery == 0) ring->set(ring_pos++ % ring_slots, t.value());
      }
      if (big_slots != 0) {
        // One young tree, stored into --big-array-stores random slots (dirty cards).
        shoal::Ref<TreeNode> young = bench::build_tree(kChurnTreeDepth);
        for (int n = 0; n < c.big_array_stores; ++n) {
          rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
          big->set(static_cast<size_t>(rng % big_slots), young.value());
        }
      }
      heap.start_collection(shoal::CollectionScope::kYoung);
      heap.wait_for_collection();
    }
    const shoal::GcStats s = heap.stats();
    StepRow row;
    std::vector<double> initial, fin, mark, marked, full_mark;
    for (const shoal::CycleRecord& r : s.recent) {
      if (r.index < first) continue;
      if (std::getenv("SHOAL_GEN_BENCH_VERBOSE"))
        std::fprintf(stderr, "cycle %llu young %d initial %.0f us (ttsp %.0f, in-pause mark %.0f us) final %.0f us mark %.2f ms marked %.2f MiB remembered %zu (cards %zu)\n",
                     static_cast<unsigned long long>(r.index), r.young ? 1 : 0, r.initial_pause_ns / 1e3, r.time_to_safepoint_ns / 1e3, r.mark_ns / 1e3,
                     r.final_pause_ns / 1e3, r.concurrent_mark_ns / 1e6, r.bytes_marked / 1048576.0, r.remembered, r.remembered_cards);
      if (r.young) {
        ++row.young;
        initial.push_back(static_cast<double>(r.initial_pause_ns) / 1e3);
        fin.push_back(static_cast<double>(r.final_pause_ns) / 1e3);
        mark.push_back(static_cast<double>(r.concurrent_mark_ns) / 1e6);
        marked.push_back(static_cast<double>(r.bytes_marked) / (1 << 20));
      } else {
        ++row.full;
        full_mark.push_back(static_cast<double>(r.concurrent_mark_ns) / 1e6);
      }
    }
    row.old_mib = static_cast<double>(next * (size_t{1} << (kOldTreeDepth + 1)) * kNodeBytes) / (1 << 20);
    row.initial_us = p50(initial);
    row.final_us = p50(fin);
    row.mark_ms = p50(mark);
    row.marked_mib = p50(marked);
    row.full_mark_ms = p50(full_mark);
    if (write(out_fd, &row, sizeof row) != static_cast<ssize_t>(sizeof row)) _exit(1);
  }
  if (sink == 42) std::printf(" ");
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  std::vector<std::string> modes = {"gen", "nogen"};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (bench::take_value(i, argc, argv, "--steps", v)) c.steps = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--old-step-mib", v)) c.old_step_mib = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--cycles-per-step", v)) c.cycles_per_step = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--churn-mib", v)) c.churn_mib = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--big-array-mib", v)) c.big_array_mib = std::max(0, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--big-array-stores", v)) c.big_array_stores = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--modes", v)) modes = bench::split(v);
    else if (!bench::take_common_option(i, argc, argv)) {
      std::fprintf(stderr,
                   "usage: %s [--steps 10] [--old-step-mib 16] [--cycles-per-step 8] [--churn-mib 16] [--big-array-mib 0] "
                   "[--big-array-stores 1] [--modes gen,nogen]\n",
                   argv[0]);
      return 2;
    }
  }
  bench::print_context("shoal_generations_bench");
  std::printf("  old generation     : %d steps of %d MiB (trees of depth %d); per step %d cycles, each after %d MiB of garbage\n",
              c.steps, c.old_step_mib, kOldTreeDepth, c.cycles_per_step, c.churn_mib);
  std::printf("  big old array      : %d MiB of slots, %d young stores per cycle\n\n", c.big_array_mib, c.big_array_stores);
  for (const std::string& mode : modes) {
    const bool gen = mode == "gen";
    std::printf("%s (fresh process)\n\n", gen ? "generational (default)" : "--shoal-no-generations: every cycle full");
    std::printf("| step | old MiB | young / full cycles | young: initial pause p50 us | final pause p50 us | concurrent mark p50 ms | marked p50 MiB | full: concurrent mark p50 ms |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    std::fflush(stdout);
    int fds[2];
    if (pipe(fds) != 0) return 1;
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      run_mode(c, gen, fds[1]);
      _exit(0);
    }
    close(fds[1]);
    StepRow r;
    for (int step = 1; read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r); ++step) {
      std::printf("| %d | %.0f | %d / %d | %.0f | %.0f | %.2f | %.2f | %.1f |\n", step, r.old_mib, r.young, r.full,
                  r.initial_us, r.final_us, r.mark_ms, r.marked_mib, r.full_mark_ms);
      std::fflush(stdout);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    std::printf("\n");
  }
  return 0;
}
