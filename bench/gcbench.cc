// shoal_gcbench: the Boehm / Ellis / Kovac GCBench ("An artificial garbage collection
// benchmark"), Shoal side by side with Boehm GC, glibc malloc, jemalloc, mimalloc and
// std::shared_ptr in one run. docs/performance.md has the command line and the results.
//
// The program follows GCBench.c (the Boehm collector's version) with its standard
// parameters:
//   1. stretch the heap: build a tree of depth kStretchTreeDepth (18) bottom-up, drop it;
//   2. build a long-lived tree of depth kLongLivedTreeDepth (16) top-down (Populate) and a
//      long-lived array of kArraySize (500,000) doubles, half of it filled;
//   3. for depth = kMinTreeDepth (4) .. kMaxTreeDepth (16) step 2: NumIters(depth) =
//      2 * TreeSize(18) / TreeSize(depth) trees built top-down (Populate), each dropped,
//      then as many built bottom-up (MakeTree), each dropped;
//   4. check that the long-lived tree and array are still intact, and drop them.
// A node is { left, right, int i, int j } as in GCBench. The time of one run is the wall
// time of 1-4. The manual allocators free every tree explicitly (a recursive walk) where
// the collectors just drop the reference; shared_ptr frees by reference count when the
// root handle goes away.
//
// Usage: shoal_gcbench [--runs N] [--allocators shoal,boehm,glibc,jemalloc,mimalloc,shared_ptr]
//                      [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]
//                      [--shoal-stw]
// The --shoal-* flags change the Shoal heap's options (HeapOptions::gc_growth,
// min_gc_trigger; --shoal-stw turns concurrent_marking off) for experiments; the
// published figures use the defaults (concurrent marking). For a concurrent cycle the
// two pauses count separately.
// --max-others-cpu P re-runs a sample during which other processes used more than P% of
// the machine's cores (bench_common.h, "Interference"); every sample's figure is printed.
// Each run executes every allocator once, in a rotating order; the table gives medians.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

constexpr int kStretchTreeDepth = 18;
constexpr int kLongLivedTreeDepth = 16;
constexpr int kArraySize = 500000;
constexpr int kMinTreeDepth = 4;
constexpr int kMaxTreeDepth = 16;

constexpr int tree_size(int depth) { return (1 << (depth + 1)) - 1; }
constexpr int num_iters(int depth) { return 2 * tree_size(kStretchTreeDepth) / tree_size(depth); }

// ---------------------------------------------------------------------------------------
// Allocator policies. Each provides:
//   Tree                the handle of a tree
//   leaf()              a new node without children (GCBench's `new Node()`)
//   populate(d, t)      GCBench Populate: top-down, fills t's subtree to depth d
//   make_tree(d)        GCBench MakeTree: bottom-up
//   drop(t)             the tree is garbage now (manual: free every node)
//   Array, make_array, data(array), drop_array
//   Scope               RAII around one run on the main thread

struct PlainNode {
  PlainNode* left;
  PlainNode* right;
  int i, j;
};

// Trees of plain nodes from an allocator A with alloc(bytes) (the manual peers and
// Boehm GC); what differs between them is only how a tree is dropped.
template <class A>
struct PlainTrees {
  using Tree = PlainNode*;
  static PlainNode* node(PlainNode* l, PlainNode* r) {
    auto* n = static_cast<PlainNode*>(A::alloc(sizeof(PlainNode)));
    if (!n) bench::die("out of memory");
    n->left = l;
    n->right = r;
    n->i = n->j = 0;
    return n;
  }
  static Tree leaf() { return node(nullptr, nullptr); }
  static void populate(int depth, PlainNode* n) {
    if (depth <= 0) return;
    --depth;
    n->left = leaf();
    n->right = leaf();
    populate(depth, n->left);
    populate(depth, n->right);
  }
  static Tree make_tree(int depth) {
    if (depth <= 0) return leaf();
    PlainNode* l = make_tree(depth - 1);
    PlainNode* r = make_tree(depth - 1);
    return node(l, r);
  }
  using Array = double*;
  static double* data(Array a) { return a; }
  struct Scope {};
};

template <class A>
struct Manual : PlainTrees<A> {
  using Tree = PlainNode*;
  using Array = double*;
  static void free_tree(PlainNode* n) {
    if (!n) return;
    free_tree(n->left);
    free_tree(n->right);
    A::release(n, sizeof(PlainNode));
  }
  static void drop(Tree& t) {
    free_tree(t);
    t = nullptr;
  }
  static Array make_array(size_t n) {
    auto* a = static_cast<double*>(A::alloc(n * sizeof(double)));
    if (!a) bench::die("out of memory");
    return a;
  }
  static void drop_array(Array& a) {
    A::release(a, kArraySize * sizeof(double));
    a = nullptr;
  }
};

struct Boehm : PlainTrees<bench::BoehmGc> {
  static void drop(Tree& t) { t = nullptr; }
  static Array make_array(size_t n) {
    auto* a = static_cast<double*>(GC_MALLOC_ATOMIC(n * sizeof(double)));  // no pointers
    if (!a) bench::die("out of memory");
    return a;
  }
  static void drop_array(Array& a) { a = nullptr; }
};

struct SharedNode {
  std::shared_ptr<SharedNode> left, right;
  int i = 0, j = 0;
};

struct SharedPtr {
  using Tree = std::shared_ptr<SharedNode>;
  static Tree leaf() { return std::make_shared<SharedNode>(); }
  static void populate(int depth, const Tree& n) {
    if (depth <= 0) return;
    --depth;
    n->left = leaf();
    n->right = leaf();
    populate(depth, n->left);
    populate(depth, n->right);
  }
  static Tree make_tree(int depth) {
    if (depth <= 0) return leaf();
    Tree l = make_tree(depth - 1);
    Tree r = make_tree(depth - 1);
    Tree n = leaf();
    n->left = std::move(l);
    n->right = std::move(r);
    return n;
  }
  static void drop(Tree& t) { t.reset(); }  // recursive release by reference count
  using Array = std::shared_ptr<double[]>;
  static Array make_array(size_t n) { return std::make_shared<double[]>(n); }
  static double* data(const Array& a) { return a.get(); }
  static void drop_array(Array& a) { a.reset(); }
  struct Scope {};
};

struct ShoalNode {
  shoal::Member<ShoalNode> left, right;
  int32_t i = 0, j = 0;
  static constexpr auto kRefs = shoal::refs(&ShoalNode::left, &ShoalNode::right);
  static constexpr const char* kName = "GCBenchNode";
};

struct Shoal {
  using Tree = shoal::Ref<ShoalNode>;
  static Tree leaf() { return shoal::make<ShoalNode>(); }
  static void populate(int depth, Tree n) {
    if (depth <= 0) return;
    --depth;
    n.set(&ShoalNode::left, leaf());
    n.set(&ShoalNode::right, leaf());
    populate(depth, n->left.get());
    populate(depth, n->right.get());
  }
  static Tree make_tree(int depth) {
    if (depth <= 0) return leaf();
    Tree l = make_tree(depth - 1);  // alive across the next allocations: on this stack
    Tree r = make_tree(depth - 1);
    Tree n = leaf();
    n.set(&ShoalNode::left, l);
    n.set(&ShoalNode::right, r);
    return n;
  }
  static void drop(Tree& t) { t = nullptr; }
  using Array = shoal::Ref<shoal::ByteArray>;  // 4 MB: a large object
  static Array make_array(size_t n) { return shoal::ByteArray::create(n * sizeof(double)); }
  static double* data(Array a) { return reinterpret_cast<double*>(a->data()); }
  static void drop_array(Array& a) { a = nullptr; }
  struct Scope {
    Scope() : attach(bench::shoal_heap()) {}
    shoal::MutatorScope attach;
  };
};

// ---------------------------------------------------------------------------------------
// The benchmark

template <class P>
void time_construction(int depth) {
  const int iters = num_iters(depth);
  for (int i = 0; i < iters; ++i) {
    typename P::Tree t = P::leaf();
    P::populate(depth, t);
    P::drop(t);
  }
  for (int i = 0; i < iters; ++i) {
    typename P::Tree t = P::make_tree(depth);
    P::drop(t);
  }
}

// One complete GCBench; returns its wall time in ns.
template <class P>
uint64_t gcbench_once() {
  [[maybe_unused]] typename P::Scope scope;
  const uint64_t t0 = bench::now_ns();

  {  // stretch the memory space quickly
    typename P::Tree stretch = P::make_tree(kStretchTreeDepth);
    P::drop(stretch);
  }

  // The long-lived tree and array. For Shoal they live on this attached thread's stack
  // (conservatively scanned); a Persistent handle pins them as well, as a global would.
  typename P::Tree long_lived = P::leaf();
  P::populate(kLongLivedTreeDepth, long_lived);
  typename P::Array array = P::make_array(kArraySize);
  double* values = P::data(array);
  for (int i = 0; i < kArraySize / 2; ++i) values[i] = 1.0 / i;
  [[maybe_unused]] auto pin = [&] {
    if constexpr (std::is_same_v<P, Shoal>)
      return std::make_pair(shoal::Persistent<ShoalNode>(bench::shoal_heap(), long_lived),
                            shoal::Persistent<shoal::ByteArray>(bench::shoal_heap(), array));
    else
      return 0;
  }();

  for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction<P>(d);

  if (!long_lived || P::data(array)[1000] != 1.0 / 1000) bench::die("GCBench: long-lived data damaged");
  P::drop(long_lived);
  P::drop_array(array);
  const uint64_t t1 = bench::now_ns();
  return t1 - t0;
}

using bench::Sample;

template <class P>
Sample run_one() {
  Sample s;
  if constexpr (std::is_same_v<P, Shoal>) {
    bench::ShoalWindow window(bench::shoal_heap());
    s.ms = bench::ms(gcbench_once<P>());
    s.pauses = window.finish();
    s.shoal = bench::breakdown(window.cycles());
  } else if constexpr (std::is_same_v<P, Boehm>) {
    bench::BoehmWindow window;
    s.ms = bench::ms(gcbench_once<P>());
    s.pauses = window.finish();
  } else {
    s.ms = bench::ms(gcbench_once<P>());
  }
  return s;
}

struct Entry {
  std::string name;
  Sample (*run)();
  bool gc;
  std::vector<Sample> samples;
};

}  // namespace

int main(int argc, char** argv) {
  bench::boehm_init();
  bench::init_glibc();

  int runs = 5;
  std::vector<std::string> wanted = {"shoal", "boehm", "glibc", "jemalloc", "mimalloc", "shared_ptr"};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (bench::take_value(i, argc, argv, "--runs", v)) runs = std::max(1, bench::to_int(v));
    else if (bench::take_value(i, argc, argv, "--allocators", v)) wanted = bench::split(v);
    else if (bench::take_common_option(i, argc, argv)) continue;
    else {
      std::fprintf(stderr,
                   "usage: %s [--runs N] [--allocators shoal,boehm,glibc,jemalloc,mimalloc,shared_ptr]\n"
                   "       [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]\n"
                   "       [--shoal-stw]\n",
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

  bench::print_context("shoal_gcbench: GCBench (Boehm/Ellis/Kovac)");
  std::printf("  parameters         : stretch %d, long-lived tree %d, array %d doubles, "
              "depths %d..%d step 2\n",
              kStretchTreeDepth, kLongLivedTreeDepth, kArraySize, kMinTreeDepth, kMaxTreeDepth);
  std::printf("  runs               : %d (each runs every allocator once, rotating order)\n\n", runs);

  for (int r = 0; r < runs; ++r) {
    std::printf("run %d:", r + 1);
    for (size_t k = 0; k < entries.size(); ++k) {
      Entry& e = entries[(k + static_cast<size_t>(r)) % entries.size()];
      e.samples.push_back(bench::measured(e.run));
      std::printf(" %s %.0f ms (others %.0f%%)", e.name.c_str(), e.samples.back().ms, e.samples.back().others_pct);
      std::fflush(stdout);
    }
    std::printf("\n");
  }

  double boehm_ms = 0, jemalloc_ms = 0;
  for (const Entry& e : entries) {
    if (e.name == "boehm") boehm_ms = bench::med_ms(e.samples);
    if (e.name == "jemalloc") jemalloc_ms = bench::med_ms(e.samples);
  }

  std::printf("\nTotal time per GCBench run, ms (median of %d; min..max)\n\n", runs);
  std::printf("| allocator | median ms | min..max ms | vs boehm | vs jemalloc |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const Entry& e : entries) {
    const double m = bench::med_ms(e.samples);
    double lo = 1e300, hi = 0;
    for (const Sample& s : e.samples) lo = std::min(lo, s.ms), hi = std::max(hi, s.ms);
    char vb[32] = "-", vj[32] = "-";
    if (boehm_ms > 0) std::snprintf(vb, sizeof vb, "%.2f", m / boehm_ms);
    if (jemalloc_ms > 0) std::snprintf(vj, sizeof vj, "%.2f", m / jemalloc_ms);
    std::printf("| %s | %.0f | %.0f..%.0f | %s | %s |\n", e.name.c_str(), m, lo, hi, vb, vj);
  }

  std::printf("\nCollections per run (medians over runs)\n\n");
  bench::print_pause_header(false);
  for (const Entry& e : entries)
    if (e.gc) bench::print_pause_row(e.name, -1, e.samples);

  for (const Entry& e : entries) {
    if (e.name != "shoal") continue;
    std::printf("\nShoal pause breakdown per run (medians)\n\n");
    bench::print_breakdown_header(false);
    bench::print_breakdown_row(-1, e.samples);
  }
  bench::print_heap_sizes();
  bench::print_interference();
  return 0;
}
