// Does the footprint follow the heap down? A program whose live set shrinks - a
// server after a burst, a compiler after its largest file - should give the memory
// back, not keep its highest point for ever (docs/gc.md, "Scavenger").
//
// One mutator, three phases, in one fresh process:
//   1. busy:   a live set of --live-mb MiB (a table of depth-6 trees, 127 nodes of 32
//              bytes each) churned for --seconds: each step replaces a random tree;
//   2. shrunk: the table cut to a tenth, churned the same way for --seconds;
//   3. idle:   the thread stops allocating (run_native) for --idle-seconds.
// At the end of each phase it prints the heap's footprint (GcStats::footprint_bytes)
// and the process's resident memory (RSS, /proc/self/statm), with the cycles so far,
// as one Markdown row per phase. Nothing Shoal-specific is added to the workload: no
// collect(), no release_free_memory() (--release-at-end calls it after the idle phase,
// as a separate labelled row).
//
// Usage: shoal_footprint_bench [--live-mb 200] [--seconds 4] [--idle-seconds 7]
//                              [--release-at-end] [--shoal-* options]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "bench_common.h"
#include "shoal/shoal.h"

namespace {

struct TreeNode {
  shoal::Member<TreeNode> left;
  shoal::Member<TreeNode> right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&TreeNode::left, &TreeNode::right);
  static constexpr const char* kName = "bench.FootprintNode";
};

shoal::Ref<TreeNode> build(int depth) {
  shoal::Ref<TreeNode> n = shoal::make<TreeNode>();
  n->value = depth;
  if (depth > 0) {
    n.set(&TreeNode::left, build(depth - 1));
    n.set(&TreeNode::right, build(depth - 1));
  }
  return n;
}

constexpr int kTreeDepth = 6;
constexpr size_t kTreeBytes = ((size_t{1} << (kTreeDepth + 1)) - 1) * 32;

double rss_mib() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

void row(const char* phase, size_t live_mib) {
  const shoal::GcStats s = bench::shoal_heap().stats();
  std::printf("| %s | %zu | %llu | %.0f | %.0f | %.0f |\n", phase, live_mib,
              static_cast<unsigned long long>(s.collections), static_cast<double>(s.footprint_bytes) / (1 << 20),
              static_cast<double>(s.peak_footprint_bytes) / (1 << 20), rss_mib());
  std::fflush(stdout);
}

// Replaces random trees of `table` for `seconds`.
void churn(shoal::Persistent<shoal::RefArray>& table, double seconds, std::mt19937_64& rng) {
  const uint64_t end = bench::now_ns() + static_cast<uint64_t>(seconds * 1e9);
  const size_t n = table->length();
  while (bench::now_ns() < end)
    for (int i = 0; i < 64; ++i) table->set(rng() % n, build(kTreeDepth).value());
}

shoal::Persistent<shoal::RefArray> make_table(size_t mib) {
  const size_t trees = std::max<size_t>(1, (mib << 20) / kTreeBytes);
  shoal::Persistent<shoal::RefArray> table(bench::shoal_heap(), shoal::RefArray::create(trees));
  for (size_t i = 0; i < trees; ++i) table->set(i, build(kTreeDepth).value());
  return table;
}

}  // namespace

int main(int argc, char** argv) {
  size_t live_mb = 200;
  double seconds = 4, idle_seconds = 7;
  bool release_at_end = false;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    const std::string_view a = argv[i];
    if (bench::take_common_option(i, argc, argv)) continue;
    if (bench::take_value(i, argc, argv, "--live-mb", v)) live_mb = std::strtoull(v.c_str(), nullptr, 10);
    else if (bench::take_value(i, argc, argv, "--seconds", v)) seconds = std::atof(v.c_str());
    else if (bench::take_value(i, argc, argv, "--idle-seconds", v)) idle_seconds = std::atof(v.c_str());
    else if (a == "--release-at-end") release_at_end = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--live-mb 200] [--seconds 4] [--idle-seconds 7] [--release-at-end] [--shoal-* options]\n",
                   argv[0]);
      return 2;
    }
  }
  shoal::MutatorScope attach(bench::shoal_heap());
  std::mt19937_64 rng(42);
  std::printf("| phase | live MiB | cycles | footprint MiB | peak footprint MiB | RSS MiB |\n|---|---:|---:|---:|---:|---:|\n");
  {
    shoal::Persistent<shoal::RefArray> table = make_table(live_mb);
    churn(table, seconds, rng);
    row("busy", live_mb);
    table = make_table(live_mb / 10);  // the old table becomes garbage
    churn(table, seconds, rng);
    row("shrunk", live_mb / 10);
    shoal::run_native([&] { std::this_thread::sleep_for(std::chrono::duration<double>(idle_seconds)); });
    row("idle", live_mb / 10);
    if (release_at_end) {
      (void)bench::shoal_heap().release_free_memory();
      row("release_free_memory()", live_mb / 10);
    }
  }
  return 0;
}
