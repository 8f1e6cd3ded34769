// shoal_binary_trees: the Computer Language Benchmarks Game's binary-trees, Shoal side by
// side with Boehm GC, glibc malloc, jemalloc, mimalloc and std::shared_ptr in one run,
// with 1 and 2 threads. docs/performance.md has the command line and the results.
//
// One run at depth N (default 20; at least 6):
//   1. stretch: build a tree of depth N+1 bottom-up, check it (count its nodes), drop it;
//   2. build a long-lived tree of depth N;
//   3. for d = 4 .. N step 2: 1 << (N - d + 4) iterations of "build a tree of depth d
//      bottom-up, check it, drop it". With T threads, the iterations of every depth are
//      split evenly across T worker threads (each worker walks all depths in order, so no
//      barrier is needed between depths);
//   4. check the long-lived tree and drop it.
// The wall time of 1-4 is the result; the sum of all checks must agree across allocators.
// A node is { left, right }. The manual allocators free each tree with a recursive walk;
// shared_ptr frees by reference count when the root handle goes away; the collectors
// just drop the reference. Steps 1, 2 and 4 run on the main thread; with T = 1 the
// iterations also run on one worker thread, so the two configurations differ only in T.
//
// Shoal's check() is the peers' walk, with no safepoint() call: a thread that walks a
// large tree without allocating is stopped for another thread's pause by asynchronous
// preemption (docs/safepoints.md). --shoal-safepoint-in-check puts back the poll every
// 511 nodes that the port used to carry (a labelled, tuned variant), and
// --shoal-no-preemption turns preemption off.
//
// Usage: shoal_binary_trees [--depth N] [--threads 1,2] [--runs N]
//                           [--allocators shoal,boehm,glibc,jemalloc,mimalloc,shared_ptr]
//                           [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]
//                           [--shoal-stw] [--shoal-no-preemption] [--shoal-no-generations] [--shoal-safepoint-in-check] [--shoal-cycle-log]
// The --shoal-* flags change the Shoal heap's options (HeapOptions::gc_growth,
// min_gc_trigger; --shoal-stw turns concurrent_marking off) for experiments; the
// published figures use the defaults (concurrent marking). For a concurrent cycle the
// two pauses count separately.
// --max-others-cpu P re-runs a sample during which other processes used more than P% of
// the machine's cores (bench_common.h, "Interference"); every sample's figure is printed.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace {

// ---------------------------------------------------------------------------------------
// Allocator policies: Tree, bottom_up(d), check(t, d) -> nodes, drop(t), Pin (keeps the
// long-lived tree alive), WorkerScope (RAII on each worker), MainScope (RAII on the main
// thread for one run), wait(fn) (blocking calls of the main thread).

struct PlainNode {
  PlainNode* left;
  PlainNode* right;
};

uint64_t check_plain(const PlainNode* n) {
  return n->left ? 1 + check_plain(n->left) + check_plain(n->right) : 1;
}

struct NoScope {};

// Trees of plain nodes from an allocator A with alloc(bytes) (the manual peers and
// Boehm GC); what differs between them is how a tree is dropped and thread registration.
template <class A>
struct PlainTrees {
  using Tree = PlainNode*;
  static Tree bottom_up(int depth) {
    PlainNode* l = nullptr;
    PlainNode* r = nullptr;
    if (depth > 0) {
      l = bottom_up(depth - 1);
      r = bottom_up(depth - 1);
    }
    auto* n = static_cast<PlainNode*>(A::alloc(sizeof(PlainNode)));
    if (!n) bench::die("out of memory");
    n->left = l;
    n->right = r;
    return n;
  }
  static uint64_t check(Tree t, int) { return check_plain(t); }
  using MainScope = NoScope;  // (Boehm: GC_INIT registered the main thread)
  static void wait(const std::function<void()>& fn) { fn(); }
};

template <class A>
struct Manual : PlainTrees<A> {
  using Tree = PlainNode*;
  static void free_tree(PlainNode* n) {
    if (n->left) {
      free_tree(n->left);
      free_tree(n->right);
    }
    A::release(n, sizeof(PlainNode));
  }
  static void drop(Tree& t) {
    free_tree(t);
    t = nullptr;
  }
  using WorkerScope = NoScope;
};

struct Boehm : PlainTrees<bench::BoehmGc> {
  static void drop(Tree& t) { t = nullptr; }
  using WorkerScope = bench::BoehmThread;
};

struct SharedNode {
  std::shared_ptr<SharedNode> left, right;
};

struct SharedPtr {
  using Tree = std::shared_ptr<SharedNode>;
  static Tree bottom_up(int depth) {
    Tree n;
    if (depth > 0) {
      Tree l = bottom_up(depth - 1);
      Tree r = bottom_up(depth - 1);
      n = std::make_shared<SharedNode>();
      n->left = std::move(l);
      n->right = std::move(r);
    } else {
      n = std::make_shared<SharedNode>();
    }
    return n;
  }
  static uint64_t check_node(const SharedNode* n) {
    return n->left ? 1 + check_node(n->left.get()) + check_node(n->right.get()) : 1;
  }
  static uint64_t check(const Tree& t, int) { return check_node(t.get()); }
  static void drop(Tree& t) { t.reset(); }
  using WorkerScope = NoScope;
  using MainScope = NoScope;
  static void wait(const std::function<void()>& fn) { fn(); }
};

struct ShoalNode {
  shoal::Member<ShoalNode> left, right;
  static constexpr auto kRefs = shoal::refs(&ShoalNode::left, &ShoalNode::right);
  static constexpr const char* kName = "BinaryTreesNode";
};

struct Shoal {
  using Tree = shoal::Ref<ShoalNode>;
  static Tree bottom_up(int depth) {
    if (depth <= 0) return shoal::make<ShoalNode>();
    Tree l = bottom_up(depth - 1);  // alive across the next allocations: on this stack
    Tree r = bottom_up(depth - 1);
    Tree n = shoal::make<ShoalNode>();
    n.set(&ShoalNode::left, l);
    n.set(&ShoalNode::right, r);
    return n;
  }
  static inline bool poll_in_check = false;  // --shoal-safepoint-in-check (tuned variant)
  static uint64_t check(Tree t, int depth) {
    if (poll_in_check && depth == 8) shoal::safepoint();  // every 511 nodes of a deeper tree
    const Tree l = t->left.get();
    return l ? 1 + check(l, depth - 1) + check(t->right.get(), depth - 1) : 1;
  }
  static void drop(Tree& t) { t = nullptr; }
  struct WorkerScope {
    WorkerScope() : attach(bench::shoal_heap()) {}
    shoal::MutatorScope attach;
  };
  using MainScope = WorkerScope;
  // The main thread is attached: it joins the workers in the native state.
  static void wait(const std::function<void()>& fn) { shoal::run_native(fn); }
};

// ---------------------------------------------------------------------------------------
// The benchmark

struct Outcome {
  uint64_t ns = 0;
  uint64_t checksum = 0;
};

template <class P>
Outcome binary_trees_once(int depth, int threads) {
  [[maybe_unused]] typename P::MainScope main_scope;
  const uint64_t t0 = bench::now_ns();
  const int max_depth = std::max(6, depth);
  uint64_t checksum = 0;

  {
    typename P::Tree stretch = P::bottom_up(max_depth + 1);
    checksum += P::check(stretch, max_depth + 1);
    P::drop(stretch);
  }

  typename P::Tree long_lived = P::bottom_up(max_depth);
  [[maybe_unused]] auto pin = [&] {
    if constexpr (std::is_same_v<P, Shoal>)
      return shoal::Persistent<ShoalNode>(bench::shoal_heap(), long_lived);
    else
      return 0;
  }();

  std::vector<uint64_t> sums(static_cast<size_t>(threads), 0);
  auto worker = [&](int w) {
    [[maybe_unused]] typename P::WorkerScope scope;
    uint64_t sum = 0;
    for (int d = 4; d <= max_depth; d += 2) {
      const uint64_t iters = uint64_t{1} << (max_depth - d + 4);
      const auto t = static_cast<uint64_t>(threads);
      const uint64_t mine = iters / t + (static_cast<uint64_t>(w) < iters % t ? 1 : 0);
      for (uint64_t i = 0; i < mine; ++i) {
        typename P::Tree t = P::bottom_up(d);
        sum += P::check(t, d);
        P::drop(t);
      }
    }
    sums[static_cast<size_t>(w)] = sum;
  };
  P::wait([&] {
    std::vector<std::thread> pool;
    for (int w = 0; w < threads; ++w) pool.emplace_back(worker, w);
    for (std::thread& t : pool) t.join();
  });
  for (uint64_t s : sums) checksum += s;

  checksum += P::check(long_lived, max_depth);
  P::drop(long_lived);
  const uint64_t t1 = bench::now_ns();
  return {t1 - t0, checksum};
}

using bench::Sample;

template <class P>
Sample run_one(int depth, int threads) {
  Sample s;
  Outcome o;
  if constexpr (std::is_same_v<P, Shoal>) {
    bench::ShoalWindow window(bench::shoal_heap());
    o = binary_trees_once<P>(depth, threads);
    s.pauses = window.finish();
    s.shoal = bench::breakdown(window.cycles());
  } else if constexpr (std::is_same_v<P, Boehm>) {
    bench::BoehmWindow window;
    o = binary_trees_once<P>(depth, threads);
    s.pauses = window.finish();
  } else {
    o = binary_trees_once<P>(depth, threads);
  }
  s.ms = bench::ms(o.ns);
  s.checksum = o.checksum;
  return s;
}

struct Entry {
  std::string name;
  Sample (*run)(int, int);
  bool gc;
  std::vector<std::vector<Sample>> samples;  // [thread-count index][run]
};

using bench::med_ms;

}  // namespace

int main(int argc, char** argv) {
  bench::boehm_init();
  bench::init_glibc();

  int depth = 20;
  int runs = 5;
  std::vector<int> thread_counts = {1, 2};
  std::vector<std::string> wanted = {"shoal", "boehm", "glibc", "jemalloc", "mimalloc", "shared_ptr"};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (bench::take_value(i, argc, argv, "--depth", v)) depth = std::max(6, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--runs", v)) runs = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--threads", v)) {
      thread_counts.clear();
      for (const std::string& t : bench::split(v)) thread_counts.push_back(std::max(1, bench::to_int(t)));
      if (thread_counts.empty()) bench::die("--threads needs at least one count");
    } else if (bench::take_value(i, argc, argv, "--allocators", v)) {
      wanted = bench::split(v);
    } else if (std::string_view(argv[i]) == "--shoal-safepoint-in-check") {
      Shoal::poll_in_check = true;
    } else if (bench::take_common_option(i, argc, argv)) {
      continue;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--depth N] [--threads 1,2] [--runs N] "
                   "[--allocators shoal,boehm,glibc,jemalloc,mimalloc,shared_ptr]\n"
                   "       [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]\n"
                   "       [--shoal-stw] [--shoal-no-preemption] [--shoal-no-generations] [--shoal-safepoint-in-check] [--shoal-cycle-log]\n",
                   argv[0]);
      return 2;
    }
  }

  std::vector<Entry> all = {
      {"shoal", run_one<Shoal>, true, {}},
      {"boehm", run_one<Boehm>, true, {}},
      {"glibc", run_one<Manual<bench::Glibc>>, false, {}},
      {"jemalloc", run_one<Manual<bench::Jemalloc>>, false, {}},
      {"mimalloc", run_one<Manual<bench::Mimalloc>>, false, {}},
      {"shared_ptr", run_one<SharedPtr>, false, {}},
  };
  std::vector<Entry> entries = bench::select_entries(all, wanted);
  for (Entry& e : entries) e.samples.resize(thread_counts.size());

  bench::print_context("shoal_binary_trees: benchmarks-game binary-trees");
  std::printf("  depth              : %d (stretch %d)\n", depth, depth + 1);
  std::printf("  threads            :");
  for (int t : thread_counts) std::printf(" %d", t);
  std::printf("\n  runs               : %d (each runs every allocator and thread count once, "
              "rotating order)\n\n",
              runs);

  uint64_t expected = 0;
  for (int r = 0; r < runs; ++r) {
    for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
      std::printf("run %d, %d thread(s):", r + 1, thread_counts[ti]);
      for (size_t k = 0; k < entries.size(); ++k) {
        Entry& e = entries[(k + static_cast<size_t>(r)) % entries.size()];
        Sample s = bench::measured([&] { return e.run(depth, thread_counts[ti]); });
        if (expected == 0) expected = s.checksum;
        if (s.checksum != expected) bench::die("binary-trees: checksums disagree");
        std::printf(" %s %.0f ms (others %.0f%%)", e.name.c_str(), s.ms, s.others_pct);
        std::fflush(stdout);
        e.samples[ti].push_back(s);
      }
      std::printf("\n");
    }
  }
  std::printf("checksum (nodes checked per run): %llu\n", static_cast<unsigned long long>(expected));

  // Wall time table.
  const Entry* mimalloc = nullptr;
  for (const Entry& e : entries)
    if (e.name == "mimalloc") mimalloc = &e;
  std::printf("\nWall time per run, ms (median of %d)\n\n| allocator |", runs);
  for (int t : thread_counts) std::printf(" %d thr ms |", t);
  if (thread_counts.size() >= 2)
    std::printf(" speedup %d->%d |", thread_counts.front(), thread_counts.back());
  if (mimalloc)
    for (int t : thread_counts) std::printf(" vs mimalloc, %d thr |", t);
  std::printf("\n|---|");
  for (size_t i = 0; i < thread_counts.size() * (mimalloc ? 2 : 1) + (thread_counts.size() >= 2 ? 1 : 0); ++i)
    std::printf("---:|");
  std::printf("\n");
  for (const Entry& e : entries) {
    std::printf("| %s |", e.name.c_str());
    for (size_t ti = 0; ti < thread_counts.size(); ++ti) std::printf(" %.0f |", med_ms(e.samples[ti]));
    if (thread_counts.size() >= 2)
      std::printf(" %.2f |", med_ms(e.samples.front()) / med_ms(e.samples.back()));
    if (mimalloc)
      for (size_t ti = 0; ti < thread_counts.size(); ++ti)
        std::printf(" %.2f |", med_ms(e.samples[ti]) / med_ms(mimalloc->samples[ti]));
    std::printf("\n");
  }

  // Collections.
  std::printf("\nCollections per run (medians over runs)\n\n");
  bench::print_pause_header(true);
  for (const Entry& e : entries)
    if (e.gc)
      for (size_t ti = 0; ti < thread_counts.size(); ++ti)
        bench::print_pause_row(e.name, thread_counts[ti], e.samples[ti]);

  for (const Entry& e : entries) {
    if (e.name != "shoal") continue;
    std::printf("\nShoal pause breakdown per run (medians)\n\n");
    bench::print_breakdown_header(true);
    for (size_t ti = 0; ti < thread_counts.size(); ++ti)
      bench::print_breakdown_row(thread_counts[ti], e.samples[ti]);
  }
  bench::print_heap_sizes();
  bench::print_interference();
  return 0;
}
