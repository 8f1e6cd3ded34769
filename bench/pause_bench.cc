// shoal_pause_bench: stop-the-world pauses, time-to-safepoint and the mutator throughput
// lost to the collector, on live heaps of 100 MB to 4 GB with 1 and 2 mutator threads
// churning; Shoal (concurrent marking) against Boehm GC, plain and incremental.
// docs/pause_bench_results.md has the command lines and the results.
//
// Target (issue "pause benchmark"): p99 pause <= 100 us and max pause <= 1 ms at every
// live size and thread count, i.e. pauses independent of the heap size.
//
// The live graph (the same shape for every collector, from the same seeds):
//   table   one reference array with one slot per unit (a large object for >= 1 GB).
//   unit    a reference array of 8..63 slots (80..520 bytes) plus one slot for a byte
//           array that records what each slot holds; each slot holds, at random,
//           a binary tree of 7..63 Nodes {left, right, v} (10 in 16), a byte array of
//           16..512 bytes (3 in 16) or a reference array of 2..30 slots each holding a
//           list of 1..4 Nodes (3 in 16). About 32 KB per unit, 45 bytes per object.
// The number of units is the live size divided by the mean unit size (a dry run of the
// generator, counting Shoal's cell sizes). Two threads build the table in parallel.
//
// Churn: each of T mutator threads repeats one "operation" until told to stop:
//   - build a garbage binary tree of depth 4..6 (31..127 Nodes), walk it, and allocate a
//     garbage byte array of 16..512 bytes;
//   - walk --reads N random units of the table (default 1: every object of the unit is
//     read, ~700 objects; 0 leaves an allocation-only worst case);
//   - one operation in 8: build a fresh unit and store it over a random slot of the table
//     (the live size stays steady, the old unit becomes garbage, and the store goes
//     through the write barrier while a cycle is marking).
// About 6.5 KB allocated and ~30 KB of live graph read per operation (with --reads 1).
// The figure of merit is operations per second.
//
// Warm-up: after building the graph (and one full collection), the churn runs with the
// largest thread count until two cycles have completed (at least 2 s, at most
// --warmup-max-s, default 180) before the measured windows, so that they see the steady
// state: the heap has grown to its working footprint. On this VM first-touch memory is
// slow (the kernel's clear_page dominates at ~200 MB/s of fresh heap), and a window that
// still grows the heap measures page faults, not the collector.
//
// Measured windows, one per thread count: at least --seconds S (default 10) and until
// --min-cycles N (default 3) cycles have completed in the window, at most --max-window-s
// (default 60). A 4 GB heap completes a cycle only every ~10-20 s, so a fixed short
// window could see none. Only cycles that complete inside a window are counted.
//
// Collectors (--collectors), each (collector, live size) in its own child process (fork)
// so that heaps never share an address space, a crash or hang is reported and the next
// configuration still runs, and the peak RSS is per configuration:
//   shoal              default HeapOptions (concurrent marking, gc_growth 1.0, marker
//                      threads auto) plus heap_limit = 16 GiB at every size
//                      (--shoal-heap-limit-gib overrides) so that a 4 GB heap fits in RAM;
//                      a collection forced by the limit is stop-the-world ("heap-limit").
//   shoal-stw          the same with concurrent_marking = false (every cycle one pause).
//   boehm              GC_MALLOC / GC_MALLOC_ATOMIC, default settings, parallel marking.
//   boehm-incremental  GC_enable_incremental() with GC_MARKERS=1: Boehm disables true
//                      incremental marking (time-limited increments) whenever it marks in
//                      parallel, so this is the only way to get it; GC_set_time_limit
//                      (--boehm-time-limit-ms, default 15 ms, Boehm's documented default).
//   boehm-generational GC_enable_incremental() with the parallel markers: incremental mode
//                      reduced to its generational part (GC_time_limit unlimited).
// Pauses: Shoal's CycleRecords (sampled every 20 ms by bench::ShoalWindow, deduplicated
// by index); a concurrent cycle has two pauses (initial_pause_ns, final_pause_ns), a
// stop-the-world cycle one (pause_ns). Time-to-safepoint likewise (time_to_safepoint_ns,
// final_time_to_safepoint_ns). Boehm: GC_set_on_collection_event, a pause is
// GC_EVENT_PRE_STOP_WORLD .. GC_EVENT_POST_START_WORLD and its time-to-safepoint
// PRE_STOP_WORLD .. POST_STOP_WORLD (signalling every thread and waiting for it to
// suspend); GC_EVENT_START .. GC_EVENT_END and MARK_START .. MARK_END are recorded too.
// Mark throughput: Shoal, sum(bytes_marked) / sum(concurrent_mark_ns) over the concurrent
// cycles (and per marker thread); Boehm, live graph bytes / median mark phase (an
// estimate: Boehm does not report the bytes it marked).
//
// Baseline (throughput lost = 1 - ops/s with GC / ops/s of the baseline): the same churn
// on the same live graph in a separate child with collection off: Shoal with
// min_gc_trigger = 2^50 (heap_limit 20 GiB), Boehm with GC_disable() (default settings,
// used for every Boehm mode). Without collection the churn allocates without bound, so
// the baseline allocates at most --baseline-gib W (default clamp(16 GiB - 1.5 x live,
// 1, 4) GiB) per measured run: it first churns W of garbage (2 threads) to fault the memory in, then
// one explicit full collection turns it into free, already-faulted memory, then each
// thread count runs until it has allocated 0.9 W or --seconds have passed, followed by
// another full collection. The peak stays below live + W + fragmentation (< 18 GiB).
// Without the warm-up the baseline would pay page faults that the collected run does not.
//
// Usage: shoal_pause_bench [--live-mb 100,1024,4096] [--threads 1,2] [--seconds S]
//          [--collectors shoal,boehm,boehm-incremental[,shoal-stw,boehm-generational]]
//          [--csv FILE] [--reads N] [--no-baseline] [--baseline-gib W]
//          [--marker-threads N] [--warmup-max-s S] [--min-cycles N] [--max-window-s S]
//          [--trace] [--shoal-heap-limit-gib G] [--boehm-time-limit-ms T]
//          [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]
// Prints Markdown tables; --csv writes one row per (collector, live size, threads) for
// tools/plot_pauses.py. --max-others-cpu P re-runs a churn sample during which other
// processes used more than P% of the cores (bench_common.h, "Interference").
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "shoal/internal/size_classes.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGiB = size_t{1} << 30;

// ---------------------------------------------------------------------------------------
// Random numbers (splitmix64: deterministic per seed, cheap)

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// Shoal's cell size for an object of `bytes` (header included): the accounting unit of
// the live-size target, for every collector.
size_t cell(size_t bytes) {
  if (bytes > shoal::internal::kMaxSmallSize) return bytes;
  return shoal::internal::kClassSize[shoal::internal::size_class_of(bytes)];
}
constexpr size_t kNodeBytes = 8 + 24;
size_t array_bytes(size_t n) { return cell(16 + 8 * n); }
size_t byte_array_bytes(size_t n) { return cell(16 + n); }

// ---------------------------------------------------------------------------------------
// Collector policies: Obj is an opaque object handle; node / array / bytes allocate,
// aset stores through the collector's barrier (if any).

struct ShoalNode {
  shoal::Member<ShoalNode> left, right;
  int64_t v = 0;
  static constexpr auto kRefs = shoal::refs(&ShoalNode::left, &ShoalNode::right);
  static constexpr const char* kName = "PauseBenchNode";
};
static_assert(sizeof(ShoalNode) + shoal::kHeaderSize == kNodeBytes);

struct ShoalP {
  using Obj = shoal::Object*;
  static shoal::RefArray* arr(Obj a) { return static_cast<shoal::RefArray*>(a->payload()); }
  static Obj node(Obj l, Obj r, int64_t v) {
    shoal::Ref<ShoalNode> n = shoal::make<ShoalNode>();
    n->v = v;
    if (l) n.set(&ShoalNode::left, shoal::Ref<ShoalNode>::from_object(l));
    if (r) n.set(&ShoalNode::right, shoal::Ref<ShoalNode>::from_object(r));
    return n.object();
  }
  static Obj left(Obj n) { return static_cast<ShoalNode*>(n->payload())->left.get().object(); }
  static Obj right(Obj n) { return static_cast<ShoalNode*>(n->payload())->right.get().object(); }
  static int64_t value(Obj n) { return static_cast<ShoalNode*>(n->payload())->v; }
  static Obj array(size_t n) { return shoal::RefArray::create(n).object(); }
  static size_t alen(Obj a) { return arr(a)->length(); }
  static void aset(Obj a, size_t i, Obj v) {
    arr(a)->set(i, v ? shoal::Value::from_object(v) : shoal::Value::null());
  }
  static Obj aget(Obj a, size_t i) {
    const shoal::Value v = arr(a)->get(i);
    return v.is_object() ? v.as_object() : nullptr;
  }
  static Obj bytes(size_t n) {
    shoal::Ref<shoal::ByteArray> b = shoal::ByteArray::create(n);
    b->data()[0] = static_cast<uint8_t>(n);
    return b.object();
  }
  static uint8_t* bdata(Obj b) { return static_cast<shoal::ByteArray*>(b->payload())->data(); }
};

struct BoehmNode {
  BoehmNode* left;
  BoehmNode* right;
  int64_t v;
};

struct BoehmP {
  using Obj = void*;
  static Obj node(Obj l, Obj r, int64_t v) {
    auto* n = static_cast<BoehmNode*>(GC_MALLOC(sizeof(BoehmNode)));
    if (!n) bench::die("GC_MALLOC failed");
    n->left = static_cast<BoehmNode*>(l);
    n->right = static_cast<BoehmNode*>(r);
    n->v = v;
    return n;
  }
  static Obj left(Obj n) { return static_cast<BoehmNode*>(n)->left; }
  static Obj right(Obj n) { return static_cast<BoehmNode*>(n)->right; }
  static int64_t value(Obj n) { return static_cast<BoehmNode*>(n)->v; }
  // [length][slots...], zeroed by GC_MALLOC.
  static Obj array(size_t n) {
    auto* a = static_cast<uint64_t*>(GC_MALLOC(8 + 8 * n));
    if (!a) bench::die("GC_MALLOC failed");
    a[0] = n;
    return a;
  }
  static size_t alen(Obj a) { return static_cast<uint64_t*>(a)[0]; }
  static void aset(Obj a, size_t i, Obj v) {
    if (i >= alen(a)) bench::die("index out of range");
    static_cast<void**>(a)[1 + i] = v;
  }
  static Obj aget(Obj a, size_t i) {
    if (i >= alen(a)) bench::die("index out of range");
    return static_cast<void**>(a)[1 + i];
  }
  static Obj bytes(size_t n) {
    auto* b = static_cast<uint64_t*>(GC_MALLOC_ATOMIC(8 + n));
    if (!b) bench::die("GC_MALLOC_ATOMIC failed");
    b[0] = n;
    reinterpret_cast<uint8_t*>(b + 1)[0] = static_cast<uint8_t>(n);
    return b;
  }
  static uint8_t* bdata(Obj b) { return reinterpret_cast<uint8_t*>(static_cast<uint64_t*>(b) + 1); }
};

// Allocates nothing: the generator's dry run, for the mean unit size.
struct DryP {
  using Obj = void*;
  static Obj dummy() { return reinterpret_cast<void*>(uintptr_t{16}); }
  static Obj node(Obj, Obj, int64_t) { return dummy(); }
  static Obj array(size_t) { return dummy(); }
  static void aset(Obj, size_t, Obj) {}
  static Obj bytes(size_t) { return dummy(); }
  static uint8_t* bdata(Obj) {
    static thread_local uint8_t scratch[64];
    return scratch;
  }
};

// ---------------------------------------------------------------------------------------
// The generator (the same random choices for every policy; `bytes` counts cell sizes)

template <class P>
typename P::Obj tree(int depth, int64_t v, size_t& bytes) {
  typename P::Obj l = nullptr, r = nullptr;
  if (depth > 0) {
    l = tree<P>(depth - 1, 2 * v, bytes);
    r = tree<P>(depth - 1, 2 * v + 1, bytes);
  }
  bytes += kNodeBytes;
  return P::node(l, r, v);
}

template <class P>
uint64_t walk(typename P::Obj n) {
  uint64_t sum = 0;
  while (n) {  // recurse left, loop right
    sum += 1 + static_cast<uint64_t>(P::value(n) & 1);
    sum += walk<P>(P::left(n));
    n = P::right(n);
  }
  return sum;
}

template <class P>
typename P::Obj unit(Rng& rng, size_t& bytes) {
  const size_t k = 8 + rng.below(56);
  typename P::Obj root = P::array(k + 1);
  bytes += array_bytes(k + 1);
  typename P::Obj kinds = P::bytes(k);  // slot k: what each slot holds, for walk_unit
  bytes += byte_array_bytes(k);
  P::aset(root, k, kinds);
  uint8_t* kind_of = P::bdata(kinds);
  for (size_t i = 0; i < k; ++i) {
    const size_t kind = rng.below(16);
    kind_of[i] = kind < 10 ? 0 : kind < 13 ? 1 : 2;
    typename P::Obj child;
    if (kind < 10) {
      child = tree<P>(2 + static_cast<int>(rng.below(4)), static_cast<int64_t>(i), bytes);
    } else if (kind < 13) {
      const size_t n = 16 + rng.below(497);
      child = P::bytes(n);
      bytes += byte_array_bytes(n);
    } else {
      const size_t n = 2 + rng.below(29);
      child = P::array(n);
      bytes += array_bytes(n);
      for (size_t j = 0; j < n; ++j) {
        typename P::Obj list = nullptr;
        const size_t len = 1 + rng.below(4);
        for (size_t e = 0; e < len; ++e) {
          list = P::node(list, nullptr, static_cast<int64_t>(e));
          bytes += kNodeBytes;
        }
        P::aset(child, j, list);
      }
    }
    P::aset(root, i, child);
  }
  return root;
}

// Reads every object of a unit (no allocation).
template <class P>
uint64_t walk_unit(typename P::Obj u) {
  if (!u) return 0;
  const size_t k = P::alen(u) - 1;
  const uint8_t* kind_of = P::bdata(P::aget(u, k));
  uint64_t sum = 0;
  for (size_t i = 0; i < k; ++i) {
    typename P::Obj c = P::aget(u, i);
    if (kind_of[i] == 0) {
      sum += walk<P>(c);
    } else if (kind_of[i] == 1) {
      sum += P::bdata(c)[0];
    } else {
      const size_t n = P::alen(c);
      for (size_t j = 0; j < n; ++j) sum += walk<P>(P::aget(c, j));
    }
  }
  return sum;
}

double mean_unit_bytes() {
  Rng rng(12345);
  size_t bytes = 0;
  constexpr int kSamples = 20000;
  for (int i = 0; i < kSamples; ++i) unit<DryP>(rng, bytes);
  return static_cast<double>(bytes) / kSamples;
}

uint64_t unit_seed(size_t i) { return 0x5eed0000ULL + i * 0x9e3779b97f4a7c15ULL; }

// ---------------------------------------------------------------------------------------
// Boehm pause recording (our own callback: PRE_STOP_WORLD .. POST_START_WORLD, with
// time-to-safepoint and the START..END and MARK_START..MARK_END spans). The callback runs
// with the allocation lock held, so its writes never race; readers take the lock.

namespace boehm_rec {
constexpr size_t kMax = size_t{1} << 18;
uint64_t pause[kMax], ttsp[kMax], cycle[kMax], mark[kMax];
uint64_t n_pause = 0, n_cycle = 0, n_mark = 0;
uint64_t t_stop = 0, t_stopped = 0, t_start = 0, t_mark = 0;
void GC_CALLBACK on_event(GC_EventType e) {
  const uint64_t t = bench::now_ns();
  switch (e) {
    case GC_EVENT_START: t_start = t; break;
    case GC_EVENT_END: cycle[n_cycle++ % kMax] = t - t_start; break;
    case GC_EVENT_MARK_START: t_mark = t; break;
    case GC_EVENT_MARK_END: mark[n_mark++ % kMax] = t - t_mark; break;
    case GC_EVENT_PRE_STOP_WORLD: t_stop = t; break;
    case GC_EVENT_POST_STOP_WORLD: t_stopped = t; break;
    case GC_EVENT_POST_START_WORLD:
      pause[n_pause % kMax] = t - t_stop;
      ttsp[n_pause % kMax] = t_stopped - t_stop;
      ++n_pause;
      break;
    default: break;
  }
}
struct Counts {
  uint64_t pause, cycle, mark, gc_no;
};
Counts counts() {
  Counts c{};
  GC_call_with_alloc_lock(
      [](void* out) -> void* {
        auto* p = static_cast<Counts*>(out);
        *p = {n_pause, n_cycle, n_mark, GC_get_gc_no()};
        return nullptr;
      },
      &c);
  return c;
}
std::vector<uint64_t> slice(const uint64_t* a, uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  if (to - from > kMax) from = to - kMax;
  for (uint64_t i = from; i < to; ++i) v.push_back(a[i % kMax]);
  return v;
}
}  // namespace boehm_rec

// ---------------------------------------------------------------------------------------
// Results: plain data, sent from the child to the parent through a pipe.

struct Row {
  char collector[24] = {};
  int live_mb = 0;
  int threads = 0;
  int ok = 0;              // 0: the child failed before reporting this row
  char note[160] = {};
  double seconds = 0;      // churn wall time
  uint64_t ops = 0;
  double ops_per_s = 0;
  double baseline_ops_per_s = 0;
  double baseline_seconds = 0;
  double baseline_alloc_gib = 0;
  uint64_t cycles = 0, stw_cycles = 0, pauses = 0;
  uint64_t p50_ns = 0, p99_ns = 0, max_ns = 0, total_pause_ns = 0;
  uint64_t ttsp_p99_ns = 0, ttsp_max_ns = 0;
  double mark_mb_s = 0, mark_mb_s_per_thread = 0;
  double marker_threads = 0;
  double marked_mib = 0;   // Shoal: median bytes_marked per cycle
  uint64_t max_conc_mark_ns = 0;  // Shoal: longest concurrent mark; Boehm: longest mark phase
  uint64_t max_cycle_ns = 0;      // Boehm: longest GC_EVENT_START..END
  uint64_t max_initial_ns = 0, max_final_ns = 0;  // Shoal: longest initial / final pause
  uint64_t assists = 0, throttles = 0;
  double peak_footprint_mib = 0;  // Shoal footprint / Boehm heap size, sampled
  double peak_rss_mib = 0;        // the child process
  double build_s = 0;
  double warmup_s = 0;
  uint64_t warmup_cycles = 0;
  double graph_mib = 0;           // live graph, cell-size accounting
  double others_pct = 0;
  char causes[96] = {};
};

void set_str(char* dst, size_t n, const std::string& s) {
  std::snprintf(dst, n, "%s", s.c_str());
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// ---------------------------------------------------------------------------------------
// The run: settings shared by both kinds of child

struct Settings {
  std::vector<int> live_mb = {100, 1024, 4096};
  std::vector<int> threads = {1, 2};
  double seconds = 10;
  std::vector<std::string> collectors = {"shoal", "boehm", "boehm-incremental"};
  std::string csv;
  bool baseline = true;
  double baseline_gib = 0;  // 0: automatic
  unsigned marker_threads = 0;
  double shoal_heap_limit_gib = 0;  // 0: automatic
  int build_threads = 2;
  double warmup_max_s = 180;
  uint64_t min_cycles = 3;    // a window lasts >= seconds and until this many cycles completed...
  double max_window_s = 60;   // ...but at most this long
};

size_t baseline_budget(const Settings& s, int live_mb) {
  if (s.baseline_gib > 0) return static_cast<size_t>(s.baseline_gib * static_cast<double>(kGiB));
  const double gib = std::clamp(16.0 - 1.5 * live_mb / 1024.0, 1.0, 4.0);
  return static_cast<size_t>(gib * static_cast<double>(kGiB));
}

size_t shoal_limit(const Settings& s, int live_mb) {
  if (s.shoal_heap_limit_gib > 0) return static_cast<size_t>(s.shoal_heap_limit_gib * static_cast<double>(kGiB));
  (void)live_mb;
  return 16 * kGiB;
}

int g_reads = 1;       // --reads: units of the live graph walked per operation
bool g_trace = false;  // --trace: Shoal heap state every 0.5 s during a churn (stderr)

// Shared between the controlling thread and the churn workers of one run.
struct Churn {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  int reads = 1;  // units walked per operation
  std::vector<uint64_t> ops;
  std::vector<uint64_t> sums;
};

template <class P>
void churn_loop(Churn& c, int w, typename P::Obj table, uint64_t seed) {
  Rng rng(seed);
  const size_t units = P::alen(table);
  uint64_t ops = 0, sum = 0;
  size_t ignored = 0;
  while (!c.stop.load(std::memory_order_relaxed)) {
    typename P::Obj t = tree<P>(4 + static_cast<int>(rng.below(3)), static_cast<int64_t>(ops), ignored);
    sum += walk<P>(t);
    typename P::Obj b = P::bytes(16 + rng.below(497));
    sum += reinterpret_cast<uintptr_t>(b) & 1;
    for (int r = 0; r < c.reads; ++r) sum += walk_unit<P>(P::aget(table, rng.below(units)));
    if (rng.below(8) == 0) {
      typename P::Obj fresh = unit<P>(rng, ignored);
      P::aset(table, rng.below(units), fresh);
    }
    ++ops;
  }
  c.ops[static_cast<size_t>(w)] = ops;
  c.sums[static_cast<size_t>(w)] = sum;
}

// Runs T churn workers until `seconds` pass or `should_stop()` says so (polled every
// 2 ms on the calling thread, which is not attached / not allocating). Returns the wall
// time and total operations. `worker(c, w)` runs on each worker thread, and must count
// c.ready up and spin on c.go.
struct ChurnResult {
  double seconds = 0;
  uint64_t ops = 0;
  double peak_footprint = 0;
};

template <class Worker, class Poll>
ChurnResult run_churn(int threads, double seconds, Worker&& worker, Poll&& poll) {
  Churn c;
  c.reads = g_reads;
  c.ops.assign(static_cast<size_t>(threads), 0);
  c.sums.assign(static_cast<size_t>(threads), 0);
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) pool.emplace_back([&, w] { worker(c, w); });
  while (c.ready.load() < threads) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const uint64_t t0 = bench::now_ns();
  c.go.store(true);
  ChurnResult r;
  const uint64_t limit = t0 + static_cast<uint64_t>(seconds * 1e9);
  while (bench::now_ns() < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    double footprint = 0;
    const bool enough = poll(footprint);
    r.peak_footprint = std::max(r.peak_footprint, footprint);
    if (enough) break;
  }
  c.stop.store(true);
  const uint64_t t1 = bench::now_ns();
  for (std::thread& t : pool) t.join();
  r.seconds = static_cast<double>(t1 - t0) / 1e9;
  for (uint64_t o : c.ops) r.ops += o;
  return r;
}

template <class V>
V at(const std::vector<V>& v, size_t i) {
  return i < v.size() ? v[i] : V{};
}

// ---------------------------------------------------------------------------------------
// Shoal child

struct ShoalSetup {
  shoal::Heap* heap = nullptr;
  shoal::Persistent<shoal::RefArray> table;
  size_t units = 0;
  double build_s = 0;
};

void shoal_build(ShoalSetup& s, size_t units, int build_threads) {
  const uint64_t t0 = bench::now_ns();
  {
    shoal::MutatorScope attach(*s.heap);
    s.table = shoal::Persistent<shoal::RefArray>(*s.heap, shoal::RefArray::create(units));
    s.units = units;
    shoal::run_native([&] {
      std::vector<std::thread> pool;
      for (int b = 0; b < build_threads; ++b)
        pool.emplace_back([&, b] {
          shoal::MutatorScope scope(*s.heap);
          shoal::Object* table = s.table.get().object();
          size_t ignored = 0;
          for (size_t i = static_cast<size_t>(b); i < units; i += static_cast<size_t>(build_threads)) {
            Rng rng(unit_seed(i));
            ShoalP::aset(table, i, unit<ShoalP>(rng, ignored));
          }
        });
      for (std::thread& t : pool) t.join();
    });
    s.heap->collect();  // settle: pacing starts from the real live size
  }
  s.build_s = static_cast<double>(bench::now_ns() - t0) / 1e9;
}

// Stops after `seconds`, or once `alloc_cap` bytes are allocated (0: no cap), or - for a
// warm-up or a measured window - once `min_cycles` cycles have completed and `min_s`
// seconds have passed (min_cycles 0: no such stop).
ChurnResult shoal_churn(ShoalSetup& s, int threads, double seconds, size_t alloc_cap, uint64_t min_cycles = 0,
                        double min_s = 0) {
  shoal::Heap& heap = *s.heap;
  const shoal::GcStats st0 = heap.stats();
  const uint64_t alloc0 = st0.bytes_allocated;
  const uint64_t cycles0 = st0.collections;
  const uint64_t t_start = bench::now_ns();
  return run_churn(
      threads, seconds,
      [&](Churn& c, int w) {
        shoal::MutatorScope scope(heap);
        shoal::Object* table = s.table.get().object();
        c.ready.fetch_add(1);
        shoal::run_native([&] {
          while (!c.go.load()) std::this_thread::yield();
        });
        churn_loop<ShoalP>(c, w, table, 0xC0FFEE + static_cast<uint64_t>(w) * 7919 + bench::now_ns());
      },
      [&, last = uint64_t{0}, t_begin = bench::now_ns()](double& footprint) mutable {
        const shoal::GcStats st = heap.stats();
        footprint = static_cast<double>(st.footprint_bytes) / static_cast<double>(kMiB);
        if (g_trace && bench::now_ns() - last > 500'000'000) {
          last = bench::now_ns();
          std::fprintf(stderr, "    trace %5.1f s: footprint %6.0f MiB, allocated %7.0f MiB, cycles %3" PRIu64 ", %s\n",
                       static_cast<double>(last - t_begin) / 1e9, footprint,
                       static_cast<double>(st.bytes_allocated - alloc0) / static_cast<double>(kMiB), st.collections,
                       heap.is_marking() ? "marking" : "-");
        }
        if (min_cycles != 0 && st.collections - cycles0 >= min_cycles &&
            static_cast<double>(bench::now_ns() - t_start) / 1e9 >= min_s)
          return true;
        return alloc_cap != 0 && st.bytes_allocated - alloc0 >= alloc_cap;
      });
}

struct Measured {
  ChurnResult churn;
  double others_pct = 0;
  std::map<uint64_t, shoal::CycleRecord> cycles;
  uint64_t collections = 0;
};

void fill_shoal_row(Row& row, const Measured& m) {
  std::vector<uint64_t> pauses, ttsp, marked;
  uint64_t conc_bytes = 0, conc_ns = 0;
  std::vector<double> markers;
  std::map<std::string, int> causes;
  for (const auto& [index, r] : m.cycles) {
    (void)index;
    ++causes[std::string(r.cause) + (r.concurrent ? "" : "/stw")];
    if (r.concurrent) {
      pauses.push_back(r.initial_pause_ns);
      pauses.push_back(r.final_pause_ns);
      row.max_initial_ns = std::max(row.max_initial_ns, r.initial_pause_ns);
      row.max_final_ns = std::max(row.max_final_ns, r.final_pause_ns);
      ttsp.push_back(r.time_to_safepoint_ns);
      ttsp.push_back(r.final_time_to_safepoint_ns);
      conc_bytes += r.bytes_marked;
      conc_ns += r.concurrent_mark_ns;
      markers.push_back(static_cast<double>(r.marker_threads));
      row.max_conc_mark_ns = std::max(row.max_conc_mark_ns, r.concurrent_mark_ns);
    } else {
      pauses.push_back(r.pause_ns);
      ttsp.push_back(r.time_to_safepoint_ns);
      ++row.stw_cycles;
    }
    marked.push_back(r.bytes_marked);
    row.assists += r.assist_objects;
    row.throttles += r.throttle_waits;
  }
  const bench::PauseSummary ps = bench::summarize(m.collections, pauses);
  row.cycles = m.cycles.size();
  row.pauses = pauses.size();
  row.p50_ns = ps.p50_ns;
  row.p99_ns = ps.p99_ns;
  row.max_ns = ps.max_ns;
  row.total_pause_ns = ps.total_ns;
  row.ttsp_p99_ns = bench::percentile(ttsp, 99.0);
  row.ttsp_max_ns = ttsp.empty() ? 0 : *std::max_element(ttsp.begin(), ttsp.end());
  if (conc_ns > 0) {
    row.mark_mb_s = static_cast<double>(conc_bytes) / 1e6 / (static_cast<double>(conc_ns) / 1e9);
    row.marker_threads = bench::median(markers);
    if (row.marker_threads > 0) row.mark_mb_s_per_thread = row.mark_mb_s / row.marker_threads;
  }
  row.marked_mib = static_cast<double>(bench::percentile(marked, 50.0)) / static_cast<double>(kMiB);
  std::string c;
  for (const auto& [k, n] : causes) c += (c.empty() ? "" : " ") + k + ":" + std::to_string(n);
  set_str(row.causes, sizeof row.causes, c);
}

shoal::HeapOptions shoal_heap_options(const Settings& s, int live_mb, bool concurrent) {
  shoal::HeapOptions o = bench::shoal_options();  // --shoal-gc-growth / --shoal-min-trigger-mib
  o.heap_limit = shoal_limit(s, live_mb);
  o.concurrent_marking = concurrent;
  o.marker_threads = s.marker_threads;
  return o;
}

std::vector<Row> shoal_child(const Settings& s, const std::string& name, int live_mb, size_t units,
                             double graph_mib) {
  std::vector<Row> rows;
  const bool concurrent = name != "shoal-stw";
  shoal::Heap* heap = new shoal::Heap(shoal_heap_options(s, live_mb, concurrent));  // never destroyed: _exit
  ShoalSetup setup;
  setup.heap = heap;
  shoal_build(setup, units, s.build_threads);
  std::fprintf(stderr, "  [%s %d MB] built %zu units in %.1f s, footprint %.0f MiB\n", name.c_str(), live_mb, units,
               setup.build_s, static_cast<double>(heap->stats().footprint_bytes) / static_cast<double>(kMiB));
  const int max_threads = *std::max_element(s.threads.begin(), s.threads.end());
  const uint64_t c0 = heap->stats().collections;
  const ChurnResult warm = shoal_churn(setup, max_threads, s.warmup_max_s, 0, 2, 2.0);
  const uint64_t warm_cycles = heap->stats().collections - c0;
  std::fprintf(stderr, "  [%s %d MB] warm-up: %.1f s, %" PRIu64 " cycles, footprint %.0f MiB\n", name.c_str(), live_mb,
               warm.seconds, warm_cycles,
               static_cast<double>(heap->stats().footprint_bytes) / static_cast<double>(kMiB));
  for (int t : s.threads) {
    Measured m = bench::measured([&] {
      Measured out;
      bench::ShoalWindow window(*heap);
      out.churn = shoal_churn(setup, t, s.min_cycles ? s.max_window_s : s.seconds, 0, s.min_cycles, s.seconds);
      (void)window.finish();
      out.cycles = window.cycles();
      out.collections = out.cycles.size();
      return out;
    });
    Row row;
    set_str(row.collector, sizeof row.collector, name);
    row.live_mb = live_mb;
    row.threads = t;
    row.ok = 1;
    row.seconds = m.churn.seconds;
    row.ops = m.churn.ops;
    row.ops_per_s = static_cast<double>(m.churn.ops) / m.churn.seconds;
    row.others_pct = m.others_pct;
    row.peak_footprint_mib = m.churn.peak_footprint;
    row.build_s = setup.build_s;
    row.graph_mib = graph_mib;
    row.warmup_s = warm.seconds;
    row.warmup_cycles = warm_cycles;
    fill_shoal_row(row, m);
    row.peak_rss_mib = peak_rss_mib();
    std::fprintf(stderr, "  [%s %d MB, %d thr] %.0f ops/s, %" PRIu64 " cycles, max pause %.0f us\n", name.c_str(),
                 live_mb, t, row.ops_per_s, row.cycles, bench::us(row.max_ns));
    rows.push_back(row);
  }
  return rows;
}

// One measured baseline window (collection off) and its table row.
struct BaselineSample {
  ChurnResult churn;
  double others_pct = 0;
  uint64_t collections = 0;  // must stay 0: the collector is off
  uint64_t allocated = 0;
};

Row baseline_row(const char* collector, int live_mb, int threads, const BaselineSample& b) {
  Row row;
  set_str(row.collector, sizeof row.collector, std::string(collector) + "-baseline");
  row.live_mb = live_mb;
  row.threads = threads;
  row.ok = 1;
  row.baseline_ops_per_s = static_cast<double>(b.churn.ops) / b.churn.seconds;
  row.baseline_seconds = b.churn.seconds;
  row.baseline_alloc_gib = static_cast<double>(b.allocated) / static_cast<double>(kGiB);
  if (b.collections > 0) set_str(row.note, sizeof row.note, "baseline collected during the run");
  std::fprintf(stderr, "  [%s baseline %d MB, %d thr] %.0f ops/s over %.2f s (%.2f GiB)\n", collector, live_mb,
               threads, row.baseline_ops_per_s, row.baseline_seconds, row.baseline_alloc_gib);
  return row;
}

// Baseline: collection off (min_gc_trigger 2^50), allocation capped (see the top).
std::vector<Row> shoal_baseline_child(const Settings& s, int live_mb, size_t units) {
  std::vector<Row> rows;
  shoal::HeapOptions o = shoal_heap_options(s, live_mb, true);
  o.min_gc_trigger = size_t{1} << 50;
  o.heap_limit = 20 * kGiB;
  shoal::Heap* heap = new shoal::Heap(o);
  ShoalSetup setup;
  setup.heap = heap;
  shoal_build(setup, units, s.build_threads);
  const size_t budget = baseline_budget(s, live_mb);
  auto collect = [&] {
    shoal::MutatorScope attach(*heap);
    heap->collect();
  };
  (void)shoal_churn(setup, 2, 600, budget);  // warm-up: fault the memory in
  collect();
  for (int t : s.threads) {
    const BaselineSample b = bench::measured([&] {
      BaselineSample out;
      const shoal::GcStats before = heap->stats();
      out.churn = shoal_churn(setup, t, s.seconds, budget / 10 * 9);
      const shoal::GcStats after = heap->stats();
      out.collections = after.collections - before.collections;
      out.allocated = after.bytes_allocated - before.bytes_allocated;
      collect();
      return out;
    });
    rows.push_back(baseline_row("shoal", live_mb, t, b));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Boehm child

void* g_boehm_table = nullptr;  // a root: the data segment is scanned
unsigned long g_boehm_time_limit_ms = 15;  // --boehm-time-limit-ms

// "boehm-incremental": Boehm turns true incremental collection off when it marks in
// parallel (GC_init sets GC_time_limit = GC_TIME_UNLIMITED: "generational is OK"), so this
// mode runs with GC_MARKERS=1 (one marker, the collecting thread) and a time limit per
// increment set explicitly (--boehm-time-limit-ms, default 15: this libgc starts with
// GC_TIME_UNLIMITED even with one marker). "boehm-generational" keeps the parallel
// markers (incremental mode reduced to its generational part).
void boehm_start(const std::string& mode) {
  if (mode == "boehm-incremental") setenv("GC_MARKERS", "1", 1);
  GC_INIT();
  if (mode == "boehm-incremental" || mode == "boehm-generational") GC_enable_incremental();
  if (mode == "boehm-incremental") GC_set_time_limit(g_boehm_time_limit_ms);
  GC_allow_register_threads();
  GC_start_mark_threads();
  GC_set_on_collection_event(boehm_rec::on_event);
}

double boehm_build(size_t units, int build_threads) {
  const uint64_t t0 = bench::now_ns();
  g_boehm_table = BoehmP::array(units);
  std::vector<std::thread> pool;
  for (int b = 0; b < build_threads; ++b)
    pool.emplace_back([&, b] {
      bench::BoehmThread reg;
      size_t ignored = 0;
      for (size_t i = static_cast<size_t>(b); i < units; i += static_cast<size_t>(build_threads)) {
        Rng rng(unit_seed(i));
        BoehmP::aset(g_boehm_table, i, unit<BoehmP>(rng, ignored));
      }
    });
  for (std::thread& t : pool) t.join();
  GC_gcollect();
  return static_cast<double>(bench::now_ns() - t0) / 1e9;
}

ChurnResult boehm_churn(int threads, double seconds, size_t alloc_cap, uint64_t min_cycles = 0, double min_s = 0) {
  const size_t alloc0 = GC_get_total_bytes();
  const uint64_t cycles0 = bench::boehm_gc_no();
  const uint64_t t_start = bench::now_ns();
  return run_churn(
      threads, seconds,
      [&](Churn& c, int w) {
        bench::BoehmThread reg;
        c.ready.fetch_add(1);
        while (!c.go.load()) std::this_thread::yield();
        churn_loop<BoehmP>(c, w, g_boehm_table, 0xC0FFEE + static_cast<uint64_t>(w) * 7919 + bench::now_ns());
      },
      [&](double& footprint) {
        footprint = static_cast<double>(GC_get_heap_size()) / static_cast<double>(kMiB);
        if (min_cycles != 0 && bench::boehm_gc_no() - cycles0 >= min_cycles &&
            static_cast<double>(bench::now_ns() - t_start) / 1e9 >= min_s)
          return true;
        return alloc_cap != 0 && GC_get_total_bytes() - alloc0 >= alloc_cap;
      });
}

std::vector<Row> boehm_child(const Settings& s, const std::string& name, int live_mb, size_t units,
                             double graph_mib) {
  std::vector<Row> rows;
  boehm_start(name);
  const double build_s = boehm_build(units, s.build_threads);
  std::fprintf(stderr,
               "  [%s %d MB] built %zu units in %.1f s, heap %.0f MiB; incremental mode %d, "
               "markers %d, time limit %lu ms\n",
               name.c_str(), live_mb, units, build_s,
               static_cast<double>(GC_get_heap_size()) / static_cast<double>(kMiB), GC_is_incremental_mode(),
               bench::boehm_markers(), GC_get_time_limit());
  const int max_threads = *std::max_element(s.threads.begin(), s.threads.end());
  const uint64_t g0 = bench::boehm_gc_no();
  const ChurnResult warm = boehm_churn(max_threads, s.warmup_max_s, 0, 2, 2.0);
  const uint64_t warm_cycles = bench::boehm_gc_no() - g0;
  std::fprintf(stderr, "  [%s %d MB] warm-up: %.1f s, %" PRIu64 " cycles, heap %.0f MiB\n", name.c_str(), live_mb,
               warm.seconds, warm_cycles, static_cast<double>(GC_get_heap_size()) / static_cast<double>(kMiB));
  for (int t : s.threads) {
    struct B {
      ChurnResult churn;
      double others_pct = 0;
      boehm_rec::Counts a{}, b{};
    };
    B m = bench::measured([&] {
      B out;
      out.a = boehm_rec::counts();
      out.churn = boehm_churn(t, s.min_cycles ? s.max_window_s : s.seconds, 0, s.min_cycles, s.seconds);
      out.b = boehm_rec::counts();
      return out;
    });
    const std::vector<uint64_t> pauses = boehm_rec::slice(boehm_rec::pause, m.a.pause, m.b.pause);
    const std::vector<uint64_t> ttsp = boehm_rec::slice(boehm_rec::ttsp, m.a.pause, m.b.pause);
    const std::vector<uint64_t> cycles = boehm_rec::slice(boehm_rec::cycle, m.a.cycle, m.b.cycle);
    const std::vector<uint64_t> marks = boehm_rec::slice(boehm_rec::mark, m.a.mark, m.b.mark);
    Row row;
    set_str(row.collector, sizeof row.collector, name);
    row.live_mb = live_mb;
    row.threads = t;
    row.ok = 1;
    row.seconds = m.churn.seconds;
    row.ops = m.churn.ops;
    row.ops_per_s = static_cast<double>(m.churn.ops) / m.churn.seconds;
    row.others_pct = m.others_pct;
    row.peak_footprint_mib = m.churn.peak_footprint;
    row.build_s = build_s;
    row.graph_mib = graph_mib;
    row.warmup_s = warm.seconds;
    row.warmup_cycles = warm_cycles;
    const bench::PauseSummary ps = bench::summarize(m.b.gc_no - m.a.gc_no, pauses);
    row.cycles = m.b.gc_no - m.a.gc_no;
    row.stw_cycles = row.cycles;
    row.pauses = pauses.size();
    row.p50_ns = ps.p50_ns;
    row.p99_ns = ps.p99_ns;
    row.max_ns = ps.max_ns;
    row.total_pause_ns = ps.total_ns;
    row.ttsp_p99_ns = bench::percentile(ttsp, 99.0);
    row.ttsp_max_ns = ttsp.empty() ? 0 : *std::max_element(ttsp.begin(), ttsp.end());
    row.max_cycle_ns = cycles.empty() ? 0 : *std::max_element(cycles.begin(), cycles.end());
    row.max_conc_mark_ns = marks.empty() ? 0 : *std::max_element(marks.begin(), marks.end());
    const double mark_med = static_cast<double>(bench::percentile(marks, 50.0));
    if (mark_med > 0 && name != "boehm-incremental") {  // incremental: the span is only the last increment
      row.marker_threads = bench::boehm_markers();
      row.mark_mb_s = graph_mib * static_cast<double>(kMiB) / 1e6 / (mark_med / 1e9);
      row.mark_mb_s_per_thread = row.mark_mb_s / row.marker_threads;
    }
    set_str(row.causes, sizeof row.causes,
            "cycles(START..END):" + std::to_string(cycles.size()) + " marks:" + std::to_string(marks.size()));
    row.peak_rss_mib = peak_rss_mib();
    std::fprintf(stderr, "  [%s %d MB, %d thr] %.0f ops/s, %" PRIu64 " cycles, %" PRIu64 " pauses, max %.0f us\n",
                 name.c_str(), live_mb, t, row.ops_per_s, row.cycles, row.pauses, bench::us(row.max_ns));
    rows.push_back(row);
  }
  return rows;
}

std::vector<Row> boehm_baseline_child(const Settings& s, int live_mb, size_t units) {
  std::vector<Row> rows;
  boehm_start("boehm");
  GC_disable();
  (void)boehm_build(units, s.build_threads);  // its GC_gcollect does nothing while disabled
  const size_t budget = baseline_budget(s, live_mb);
  auto collect = [] {
    GC_enable();
    GC_gcollect();
    GC_disable();
  };
  (void)boehm_churn(2, 600, budget);  // warm-up: fault the memory in
  collect();
  for (int t : s.threads) {
    const BaselineSample b = bench::measured([&] {
      BaselineSample out;
      const uint64_t g0 = bench::boehm_gc_no();
      const size_t a0 = GC_get_total_bytes();
      out.churn = boehm_churn(t, s.seconds, budget / 10 * 9);
      out.allocated = GC_get_total_bytes() - a0;
      out.collections = bench::boehm_gc_no() - g0;
      collect();
      return out;
    });
    rows.push_back(baseline_row("boehm", live_mb, t, b));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Parent: one child per (collector, live size); rows come back through a pipe.

template <class Fn>
std::vector<Row> in_child(const std::string& label, double timeout_s, Fn&& fn, std::string& failure) {
  int fds[2];
  if (pipe(fds) != 0) bench::die("pipe failed");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) bench::die("fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::vector<Row> rows = fn();
    const char* p = reinterpret_cast<const char*>(rows.data());
    size_t left = rows.size() * sizeof(Row);
    while (left > 0) {
      const ssize_t n = write(fds[1], p, left);
      if (n <= 0) _exit(3);
      p += n;
      left -= static_cast<size_t>(n);
    }
    close(fds[1]);
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(0);  // no heap teardown
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string data;
  const uint64_t deadline = bench::now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  int status = 0;
  bool done = false, timed_out = false;
  while (!done) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
    }
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      done = true;
    } else if (bench::now_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = true;
      done = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (;;) {
    char buf[65536];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  std::vector<Row> rows(data.size() / sizeof(Row));
  if (!rows.empty()) std::memcpy(static_cast<void*>(rows.data()), data.data(), rows.size() * sizeof(Row));
  failure.clear();
  if (timed_out) failure = "killed after " + std::to_string(static_cast<int>(timeout_s)) + " s (hang?)";
  else if (WIFSIGNALED(status)) failure = std::string("crashed: ") + strsignal(WTERMSIG(status));
  else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    failure = "exit status " + std::to_string(WEXITSTATUS(status));
  if (!failure.empty()) std::fprintf(stderr, "  [%s] FAILED: %s\n", label.c_str(), failure.c_str());
  return rows;
}

std::string fmt_us(uint64_t ns) {
  char b[32];
  const double u = bench::us(ns);
  if (u >= 100000) std::snprintf(b, sizeof b, "%.0f", u);
  else if (u >= 100) std::snprintf(b, sizeof b, "%.0f", u);
  else std::snprintf(b, sizeof b, "%.1f", u);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (bench::take_value(i, argc, argv, "--live-mb", v)) {
      s.live_mb.clear();
      for (const std::string& x : bench::split(v)) s.live_mb.push_back(std::max(1, bench::to_int(x)));
    } else if (bench::take_value(i, argc, argv, "--threads", v)) {
      s.threads.clear();
      for (const std::string& x : bench::split(v)) s.threads.push_back(std::max(1, bench::to_int(x)));
    } else if (bench::take_value(i, argc, argv, "--seconds", v)) {
      s.seconds = std::strtod(v.c_str(), nullptr);
      if (!(s.seconds > 0)) bench::die("bad --seconds");
    } else if (bench::take_value(i, argc, argv, "--collectors", v)) {
      s.collectors = bench::split(v);
      for (const std::string& c : s.collectors)
        if (c != "shoal" && c != "shoal-stw" && c != "boehm" && c != "boehm-incremental" &&
            c != "boehm-generational")
          bench::die("unknown collector in --collectors");
    } else if (bench::take_value(i, argc, argv, "--csv", v)) {
      s.csv = v;
    } else if (bench::take_value(i, argc, argv, "--min-cycles", v)) {
      s.min_cycles = static_cast<uint64_t>(bench::to_int(v));
    } else if (bench::take_value(i, argc, argv, "--max-window-s", v)) {
      s.max_window_s = std::strtod(v.c_str(), nullptr);
    } else if (bench::take_value(i, argc, argv, "--warmup-max-s", v)) {
      s.warmup_max_s = std::strtod(v.c_str(), nullptr);
    } else if (bench::take_value(i, argc, argv, "--reads", v)) {
      g_reads = bench::to_int(v);
    } else if (std::string_view(argv[i]) == "--trace") {
      g_trace = true;
    } else if (std::string_view(argv[i]) == "--no-baseline") {
      s.baseline = false;
    } else if (bench::take_value(i, argc, argv, "--baseline-gib", v)) {
      s.baseline_gib = std::strtod(v.c_str(), nullptr);
    } else if (bench::take_value(i, argc, argv, "--marker-threads", v)) {
      s.marker_threads = static_cast<unsigned>(bench::to_int(v));
    } else if (bench::take_value(i, argc, argv, "--boehm-time-limit-ms", v)) {
      g_boehm_time_limit_ms = static_cast<unsigned long>(bench::to_int(v));
    } else if (bench::take_value(i, argc, argv, "--shoal-heap-limit-gib", v)) {
      s.shoal_heap_limit_gib = std::strtod(v.c_str(), nullptr);
    } else if (bench::take_common_option(i, argc, argv)) {
      continue;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--live-mb 100,1024,4096] [--threads 1,2] [--seconds S]\n"
                   "       [--collectors shoal,boehm,boehm-incremental,shoal-stw,boehm-generational] [--csv FILE]\n"
                   "       [--no-baseline] [--baseline-gib W] [--marker-threads N] [--shoal-heap-limit-gib G]\n"
                   "       [--boehm-time-limit-ms T] [--warmup-max-s S] [--trace] [--reads N]\n"
                   "       [--min-cycles N] [--max-window-s S]\n"
                   "       [--max-others-cpu P] [--shoal-gc-growth G] [--shoal-min-trigger-mib M] [--shoal-soft-limit-mib M]\n",
                   argv[0]);
      return 2;
    }
  }

  const double unit_bytes = mean_unit_bytes();
  std::printf("shoal_pause_bench: pauses and lost throughput on a churned live heap\n");
  std::printf("  hardware threads   : %u\n", std::thread::hardware_concurrency());
  std::printf("  measured window    : >= %.1f s and >= %" PRIu64 " completed cycles, at most %.0f s, per (collector, "
              "live size, threads)\n",
              s.seconds, s.min_cycles, s.max_window_s);
  std::printf("  mean unit          : %.0f bytes (cell-size accounting); units walked per op: %d\n", unit_bytes,
              g_reads);
  std::printf("  shoal options      : gc_growth %.2f, min_gc_trigger %zu MiB, marker_threads %u (0 = auto)\n",
              bench::shoal_options().gc_growth, bench::shoal_options().min_gc_trigger >> 20, s.marker_threads);
  std::printf("  max-others-cpu     : %.1f%%\n\n", bench::max_others_cpu());
  std::fflush(stdout);

  std::vector<Row> rows;
  std::map<std::pair<std::string, std::pair<int, int>>, Row> baselines;  // (family, (live, threads))
  for (int live : s.live_mb) {
    const size_t units = std::max<size_t>(
        1, static_cast<size_t>(static_cast<double>(live) * static_cast<double>(kMiB) / unit_bytes));
    const double graph_mib = static_cast<double>(units) * unit_bytes / static_cast<double>(kMiB);
    const double timeout = 300 + live * 0.25 + s.warmup_max_s +
                           4.0 * std::max(s.seconds, s.max_window_s) * static_cast<double>(s.threads.size());
    bool need_boehm_base = false, need_shoal_base = false;
    for (const std::string& c : s.collectors) {
      std::printf("%s, live %d MB (%zu units, %.0f MiB): running\n", c.c_str(), live, units, graph_mib);
      std::fflush(stdout);
      std::string failure;
      const bool is_shoal = c.rfind("shoal", 0) == 0;
      (is_shoal ? need_shoal_base : need_boehm_base) = true;
      std::vector<Row> got = in_child(
          c + " " + std::to_string(live), timeout,
          [&] {
            return is_shoal ? shoal_child(s, c, live, units, graph_mib) : boehm_child(s, c, live, units, graph_mib);
          },
          failure);
      for (int t : s.threads) {
        auto it = std::find_if(got.begin(), got.end(), [&](const Row& r) { return r.threads == t; });
        if (it != got.end()) {
          rows.push_back(*it);
        } else {
          Row r;
          set_str(r.collector, sizeof r.collector, c);
          r.live_mb = live;
          r.threads = t;
          r.graph_mib = graph_mib;
          set_str(r.note, sizeof r.note, failure.empty() ? "no result" : failure);
          rows.push_back(r);
        }
      }
    }
    if (!s.baseline) continue;
    for (int fam = 0; fam < 2; ++fam) {
      const bool shoal_fam = fam == 0;
      if (shoal_fam ? !need_shoal_base : !need_boehm_base) continue;
      const std::string label = shoal_fam ? "shoal-baseline" : "boehm-baseline";
      std::printf("%s, live %d MB: running\n", label.c_str(), live);
      std::fflush(stdout);
      std::string failure;
      std::vector<Row> got = in_child(
          label + " " + std::to_string(live), timeout + 120,
          [&] { return shoal_fam ? shoal_baseline_child(s, live, units) : boehm_baseline_child(s, live, units); },
          failure);
      for (const Row& r : got) baselines[{shoal_fam ? "shoal" : "boehm", {live, r.threads}}] = r;
      if (got.empty()) std::printf("  %s failed: %s\n", label.c_str(), failure.c_str());
    }
  }
  for (Row& r : rows) {
    const std::string fam = std::string(r.collector).rfind("shoal", 0) == 0 ? "shoal" : "boehm";
    auto it = baselines.find({fam, {r.live_mb, r.threads}});
    if (it != baselines.end()) {
      r.baseline_ops_per_s = it->second.baseline_ops_per_s;
      r.baseline_seconds = it->second.baseline_seconds;
      r.baseline_alloc_gib = it->second.baseline_alloc_gib;
      if (it->second.note[0] && !r.note[0]) set_str(r.note, sizeof r.note, it->second.note);
    }
  }

  // Tables
  std::printf("\n### Pauses (every stop-the-world pause of the churn window; target p99 <= 100 us, max <= 1 ms)\n\n");
  std::printf("| collector | live MB | threads | cycles | STW cycles | pauses | p50 us | p99 us | max us "
              "| ttsp p99 us | ttsp max us | pause share | target |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const Row& r : rows) {
    if (!r.ok) {
      std::printf("| %s | %d | %d | - | - | - | - | - | - | - | - | - | %s |\n", r.collector, r.live_mb, r.threads,
                  r.note);
      continue;
    }
    const bool met = r.pauses > 0 && r.p99_ns <= 100'000 && r.max_ns <= 1'000'000;
    std::printf("| %s | %d | %d | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %s | %s | %s | %s | %s | %.2f%% | %s |\n",
                r.collector, r.live_mb, r.threads, r.cycles, r.stw_cycles, r.pauses, fmt_us(r.p50_ns).c_str(),
                fmt_us(r.p99_ns).c_str(), fmt_us(r.max_ns).c_str(), fmt_us(r.ttsp_p99_ns).c_str(),
                fmt_us(r.ttsp_max_ns).c_str(), 100.0 * static_cast<double>(r.total_pause_ns) / 1e9 / r.seconds,
                r.pauses == 0 ? "no pauses" : (met ? "met" : "**missed**"));
  }
  std::printf("\n### Throughput and marking\n\n");
  std::printf("| collector | live MB | threads | ops/s | baseline ops/s | throughput lost | mark MB/s | per marker "
              "| markers | longest mark ms | marked MiB/cycle | assists | throttle waits | peak heap MiB "
              "| peak RSS MiB | build s | others CPU |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    if (!r.ok) continue;
    char lost[32] = "-";
    if (r.ok && r.baseline_ops_per_s > 0)
      std::snprintf(lost, sizeof lost, "%.1f%%", 100.0 * (1.0 - r.ops_per_s / r.baseline_ops_per_s));
    std::printf("| %s | %d | %d | %.0f | %.0f | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %" PRIu64 " | %" PRIu64
                " | %.0f | %.0f | %.1f | %.1f%% |\n",
                r.collector, r.live_mb, r.threads, r.ops_per_s, r.baseline_ops_per_s, lost, r.mark_mb_s,
                r.mark_mb_s_per_thread, r.marker_threads, bench::ms(r.max_conc_mark_ns), r.marked_mib, r.assists,
                r.throttles, r.peak_footprint_mib, r.peak_rss_mib, r.build_s, r.others_pct);
  }
  std::printf("\n### Cycle causes, baselines and notes\n\n");
  std::printf("| collector | live MB | threads | causes | Shoal max initial / final pause us "
              "| longest Boehm cycle ms | warm-up s | warm-up cycles | window s | baseline s | baseline GiB | note |\n"
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const Row& r : rows)
    std::printf("| %s | %d | %d | %s | %s / %s | %.0f | %.1f | %" PRIu64 " | %.1f | %.2f | %.2f | %s |\n", r.collector,
                r.live_mb, r.threads, r.causes, fmt_us(r.max_initial_ns).c_str(), fmt_us(r.max_final_ns).c_str(),
                bench::ms(r.max_cycle_ns), r.warmup_s, r.warmup_cycles, r.seconds, r.baseline_seconds,
                r.baseline_alloc_gib, r.note);

  if (!s.csv.empty()) {
    std::FILE* f = std::fopen(s.csv.c_str(), "w");
    if (!f) bench::die("cannot write --csv");
    std::fprintf(f,
                 "collector,live_mb,threads,ok,cycles,stw_cycles,pauses,p50_us,p99_us,max_us,ttsp_p99_us,ttsp_max_us,"
                 "ops_per_s,baseline_ops_per_s,lost_pct,mark_mb_s,mark_mb_s_per_thread,marker_threads,"
                 "peak_heap_mib,peak_rss_mib,graph_mib,note\n");
    for (const Row& r : rows) {
      const double lost =
          r.ok && r.baseline_ops_per_s > 0 ? 100.0 * (1.0 - r.ops_per_s / r.baseline_ops_per_s) : NAN;
      std::string note = r.note;
      std::replace(note.begin(), note.end(), ',', ';');
      std::fprintf(f,
                   "%s,%d,%d,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64
                   ",%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,%.0f,%.2f,%.0f,%.0f,%.1f,%.0f,%.0f,%.0f,%s\n",
                   r.collector, r.live_mb, r.threads, r.ok, r.cycles, r.stw_cycles, r.pauses, bench::us(r.p50_ns),
                   bench::us(r.p99_ns), bench::us(r.max_ns), bench::us(r.ttsp_p99_ns), bench::us(r.ttsp_max_ns),
                   r.ops_per_s, r.baseline_ops_per_s, lost, r.mark_mb_s, r.mark_mb_s_per_thread, r.marker_threads,
                   r.peak_footprint_mib, r.peak_rss_mib, r.graph_mib, note.c_str());
    }
    std::fclose(f);
    std::printf("\nCSV written to %s\n", s.csv.c_str());
  }
  return 0;
}
