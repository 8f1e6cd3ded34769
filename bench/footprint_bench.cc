// Does the footprint follow the heap down? A program whose live set shrinks - a
// server after a burst, a compiler after its largest file - should give the memory
// back, not keep its highest point for ever (docs/gc.md, "Scavenger").
//
// One mutator, three phases:
//   1. busy:   a live set of --live-mb MiB (a table of depth-6 trees, 127 nodes of 24
//              bytes each - 32-byte cells in Shoal, with the header) churned for
//              --seconds: each step replaces a random tree (the peers free the old one);
//   2. shrunk: the table cut to a tenth, churned the same way for --shrunk-seconds
//              (default: --seconds; 0 goes idle right after the cut, the old table
//              garbage);
//   3. idle:   the thread stops allocating (Shoal: run_native) for --idle-seconds.
// At the end of each phase it prints the process's resident memory (RSS,
// /proc/self/statm) and, for Shoal, the heap's footprint (GcStats::footprint_bytes),
// as one Markdown row per phase. Each allocator of --allocators runs in a child
// process of its own (fork, before any allocator is touched): shoal, mimalloc,
// jemalloc (mallocx/sdallocx), glibc, boehm (GC_MALLOC, nothing freed by hand). Nothing
// allocator-specific is added to the workload: no collect(), no release_free_memory()
// (--release-at-end calls it after the idle phase, as a separate labelled row).
// --shoal-cycle-log prints the busy phase's cycles (the last 256) on stderr.
//
// Usage: shoal_footprint_bench [--live-mb 200] [--seconds 4] [--shrunk-seconds S] [--idle-seconds 7]
//                              [--allocators shoal,mimalloc,jemalloc,glibc,boehm]
//                              [--release-at-end] [--shoal-* options]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "bench_trees.h"
#include "shoal/shoal.h"

namespace {

using bench::TreeNode;

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

void row(const char* allocator, const char* phase, size_t live_mib, double trees_per_s = 0) {
  std::string footprint = "-", peak = "-", cycles = "-";
  if (std::string_view(allocator) == "shoal") {
    const shoal::GcStats s = bench::shoal_heap().stats();
    footprint = std::to_string(s.footprint_bytes >> 20);
    peak = std::to_string(s.peak_footprint_bytes >> 20);
    cycles = std::to_string(s.collections);
  }
  const std::string rate = trees_per_s > 0 ? std::to_string(static_cast<long long>(trees_per_s)) : "-";
  std::printf("| %s | %s | %zu | %s | %s | %s | %.0f | %s |\n", allocator, phase, live_mib, cycles.c_str(),
              footprint.c_str(), peak.c_str(), rss_mib(), rate.c_str());
  std::fflush(stdout);
}

struct Options {
  size_t live_mb = 200;
  double seconds = 4, idle_seconds = 7;
  double shrunk_seconds = -1;  // < 0: seconds
  bool release_at_end = false;
  double shrunk() const { return shrunk_seconds < 0 ? seconds : shrunk_seconds; }
};

size_t trees_for(size_t mib) { return std::max<size_t>(1, (mib << 20) / kTreeBytes); }

void run_shoal(const Options& o) {
  shoal::MutatorScope attach(bench::shoal_heap());
  std::mt19937_64 rng(42);
  auto make_table = [](size_t mib) {
    shoal::Persistent<shoal::RefArray> table(bench::shoal_heap(), shoal::RefArray::create(trees_for(mib)));
    for (size_t i = 0; i < table->length(); ++i) table->set(i, bench::build_tree(kTreeDepth).value());
    return table;
  };
  auto churn = [&](shoal::Persistent<shoal::RefArray>& table, double seconds) {
    const uint64_t start = bench::now_ns(), end = start + static_cast<uint64_t>(seconds * 1e9);
    const size_t n = table->length();
    uint64_t replaced = 0;
    while (bench::now_ns() < end) {
      for (int i = 0; i < 64; ++i) table->set(rng() % n, bench::build_tree(kTreeDepth).value());
      replaced += 64;
    }
    return static_cast<double>(replaced) * 1e9 / static_cast<double>(bench::now_ns() - start);
  };
  shoal::Persistent<shoal::RefArray> table = make_table(o.live_mb);
  double rate = churn(table, o.seconds);
  row("shoal", "busy", o.live_mb, rate);
  if (bench::ShoalWindow::cycle_log())
    for (const shoal::CycleRecord& r : bench::shoal_heap().stats().recent) bench::print_cycle_record(r);
  table = make_table(o.live_mb / 10);  // the old table becomes garbage
  rate = churn(table, o.shrunk());
  row("shoal", "shrunk", o.live_mb / 10, rate);
  shoal::run_native([&] { std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds)); });
  row("shoal", "idle", o.live_mb / 10);
  if (o.release_at_end) {
    (void)bench::shoal_heap().release_free_memory();
    row("shoal", "release_free_memory()", o.live_mb / 10);
  }
}

struct PlainNode {
  PlainNode* left;
  PlainNode* right;
  int64_t value;
};

// The same workload on an allocator A with alloc(bytes) and, unless `kCollected`,
// release(p, bytes).
template <class A, bool kCollected>
void run_plain(const char* name, const Options& o) {
  std::mt19937_64 rng(42);
  auto build_plain = [](auto& self, int depth) -> PlainNode* {
    auto* n = static_cast<PlainNode*>(A::alloc(sizeof(PlainNode)));
    if (!n) bench::die("out of memory");
    n->value = depth;
    n->left = depth > 0 ? self(self, depth - 1) : nullptr;
    n->right = depth > 0 ? self(self, depth - 1) : nullptr;
    return n;
  };
  auto free_plain = [](auto& self, PlainNode* n) -> void {
    if constexpr (!kCollected) {
      if (n->left) {
        self(self, n->left);
        self(self, n->right);
      }
      A::release(n, sizeof(PlainNode));
    }
  };
  // The table itself: from the allocator (Boehm must see it to keep the trees).
  auto make_table = [&](size_t trees) {
    auto** t = static_cast<PlainNode**>(A::alloc(trees * sizeof(PlainNode*)));
    if (!t) bench::die("out of memory");
    for (size_t i = 0; i < trees; ++i) t[i] = build_plain(build_plain, kTreeDepth);
    return t;
  };
  auto drop_table = [&](PlainNode** t, size_t trees) {
    if constexpr (!kCollected) {
      for (size_t i = 0; i < trees; ++i) free_plain(free_plain, t[i]);
      A::release(t, trees * sizeof(PlainNode*));
    }
  };
  auto churn = [&](PlainNode** t, size_t n, double seconds) {
    const uint64_t start = bench::now_ns(), end = start + static_cast<uint64_t>(seconds * 1e9);
    uint64_t replaced = 0;
    while (bench::now_ns() < end) {
      for (int i = 0; i < 64; ++i) {
        const size_t k = rng() % n;
        free_plain(free_plain, t[k]);
        t[k] = build_plain(build_plain, kTreeDepth);
      }
      replaced += 64;
    }
    return static_cast<double>(replaced) * 1e9 / static_cast<double>(bench::now_ns() - start);
  };
  size_t n = trees_for(o.live_mb);
  PlainNode** table = make_table(n);
  double rate = churn(table, n, o.seconds);
  row(name, "busy", o.live_mb, rate);
  drop_table(table, n);
  n = trees_for(o.live_mb / 10);
  table = make_table(n);
  rate = churn(table, n, o.shrunk());
  row(name, "shrunk", o.live_mb / 10, rate);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds));
  row(name, "idle", o.live_mb / 10);
  drop_table(table, n);
}

void run(const std::string& allocator, const Options& o) {
  if (allocator == "shoal") run_shoal(o);
  else if (allocator == "mimalloc") run_plain<bench::Mimalloc, false>("mimalloc", o);
  else if (allocator == "jemalloc") run_plain<bench::Jemalloc, false>("jemalloc", o);
  else if (allocator == "glibc") {
    bench::init_glibc();
    run_plain<bench::Glibc, false>("glibc", o);
  } else if (allocator == "boehm") {
    bench::boehm_init();
    run_plain<bench::BoehmGc, true>("boehm", o);
  } else {
    bench::die("unknown allocator in --allocators");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string allocators = "shoal";
  for (int i = 1; i < argc; ++i) {
    std::string v;
    const std::string_view a = argv[i];
    if (bench::take_common_option(i, argc, argv)) continue;
    if (bench::take_value(i, argc, argv, "--live-mb", v)) o.live_mb = std::strtoull(v.c_str(), nullptr, 10);
    else if (bench::take_value(i, argc, argv, "--seconds", v)) o.seconds = std::atof(v.c_str());
    else if (bench::take_value(i, argc, argv, "--idle-seconds", v)) o.idle_seconds = std::atof(v.c_str());
    else if (bench::take_value(i, argc, argv, "--shrunk-seconds", v)) o.shrunk_seconds = std::atof(v.c_str());
    else if (bench::take_value(i, argc, argv, "--allocators", v)) allocators = v;
    else if (a == "--release-at-end") o.release_at_end = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--live-mb 200] [--seconds 4] [--shrunk-seconds S] [--idle-seconds 7] "
                   "[--allocators shoal,mimalloc,jemalloc,glibc,boehm] [--release-at-end] [--shoal-* options]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf("| allocator | phase | live MiB | cycles | footprint MiB | peak footprint MiB | RSS MiB | trees replaced / s |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);
  for (const std::string& allocator : bench::split(allocators)) {
    const pid_t pid = fork();
    if (pid < 0) bench::die("fork failed");
    if (pid == 0) {
      run(allocator, o);
      std::fflush(stdout);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bench::die("a child failed");
  }
  return 0;
}
