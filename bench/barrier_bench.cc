// shoal_barrier_bench: the cost of the write barrier on a store-heavy mutator kernel.
// docs/pause_bench_results.md has the command line and the results.
//
// The kernel stores references - no allocation inside the timed loop - in one of three
// patterns:
//   seq    slot j, j+1, j+2, ... of a 1024-slot array (8 KiB, L1-resident): the barrier's
//          instruction cost shows at its largest;
//   ring   rewiring a linked structure: follow a ring of 16 Ki Nodes linked through
//          `left` in shuffled order (512 KiB, L2-resident, a dependent load per step) and
//          store into each node's `right` (Ref<Node>::set, the holder being the node);
//   random a 64-bit LCG picks the slot in a 2 Mi-slot array (16 MiB): a cache miss per
//          store.
// The stored values cycle through 64 Ki small objects (Nodes) kept alive by a pool array.
// Variants of the store, all in one binary:
//   raw      internal::SlotAccess::store(slot, v): the barrier compiled out (what the store costs
//            without a GC - the release store alone).
//   unchecked internal::write_unchecked(holder, slot, v): the barrier alone, as the store
//            was before the sharing model's checks (one relaxed load of the global flag
//            and a branch).
//   barrier  shoal::write(holder, slot, v) while no collection runs: the mutation checks
//            (one load of the holder's header, xor with the thread's owner key, and, and
//            a branch) then the barrier's fast path. Targets: <= 1.03x raw for the
//            barrier alone, <= 1.10x unchecked for the checks.
//   marking  shoal::write while a concurrent mark is running: every store takes the slow
//            path (SATB: shade the overwritten value, push it to the thread's SATB buffer
//            when it was white). A heap with a large live set (--live-mb, default 512 MB
//            of Node trees) keeps each mark running for a while; before each timed batch
//            the benchmark calls heap.start_collection() unless heap.is_marking(), and a
//            batch counts only if marking was on both before and after it (otherwise it
//            is run again, uncounted). The marker thread(s) run on the other core.
//   refarray RefArray::set(i, v) with no marking (an out-of-line call with a bounds check,
//            then the barrier), for reference; array patterns only.
//   young    shoal::write as `barrier`, but the stored values are young (64 Ki Nodes
//            allocated just before the run; the run fails if a cycle came between): the
//            generational barrier's remembering path. The seq and random arrays are
//            large objects, remembered by card - every young store into them calls a
//            leaf function that tests the slot's card (the slow path only for a card's
//            first store per cycle); the ring's holders are small Nodes, each remembered
//            once by its header bit, then exiting on the header test.
// Reads (pattern `chase`, the ring followed through `left` for kBatch steps, summing a
// field): rawread dereferences the payload directly; read goes through Ref<T>::operator->
// (the checked-read flag load and branch, flag off); checkedread the same with checked
// reads switched on (a group with IsolateGroupOptions::checked_reads exists): the flag,
// a header load and a branch per dereference.
// Timing: manual, per batch of 4096 stores (steady_clock around the batch), so an
// iteration is one store and the Time column reads as ns per store. The benchmarks are
// single-threaded (on a 2-core machine the concurrent marker takes the other core).
// After the runs a summary prints the median ns per store of each variant and the ratios
// barrier/raw and marking/raw (use --benchmark_repetitions=N; with one repetition the
// single run is its own median).
//
// Usage: shoal_barrier_bench [--live-mb N] [google-benchmark flags, e.g.
//        --benchmark_repetitions=5 --benchmark_min_time=0.5]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "shoal/shoal.h"

namespace {

struct Node {
  shoal::Member<Node> left, right;
  int64_t v = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "BarrierBenchNode";
};

constexpr size_t kBatch = 4096;
constexpr size_t kSeqSlots = 1024;
constexpr size_t kRandomSlots = size_t{1} << 21;
constexpr size_t kValues = size_t{1} << 16;
constexpr size_t kRingNodes = size_t{1} << 14;

size_t g_live_mb = 512;

// The process's heap and the objects the kernels use; built on first use by the
// benchmark thread (which stays attached while it runs).
struct World {
  shoal::Heap heap{shoal::HeapOptions{}};
  shoal::Persistent<shoal::RefArray> live;   // --live-mb of Node trees
  shoal::Persistent<shoal::RefArray> pool;   // the stored values
  shoal::Persistent<shoal::RefArray> seq;    // kSeqSlots
  shoal::Persistent<shoal::RefArray> random; // kRandomSlots
  shoal::Persistent<Node> ring;              // kRingNodes Nodes linked through `left`
  std::vector<shoal::Value> values;          // pool's objects (kept alive by `pool`)
  uint64_t cycles_started = 0;
  uint64_t batches_retried = 0;
};

shoal::Ref<Node> tree(int depth) {
  shoal::Ref<Node> n = shoal::make<Node>();
  if (depth > 0) {
    shoal::Ref<Node> l = tree(depth - 1);
    n.set(&Node::left, l);
    shoal::Ref<Node> r = tree(depth - 1);
    n.set(&Node::right, r);
  }
  return n;
}

World& world() {
  static World* w = [] {
    auto* w = new World();  // never destroyed
    shoal::MutatorScope attach(w->heap);
    // Live set: trees of 2^15 - 1 Nodes (1 MiB each).
    const size_t trees = std::max<size_t>(1, g_live_mb);
    w->live = shoal::Persistent<shoal::RefArray>(w->heap, shoal::RefArray::create(trees));
    for (size_t i = 0; i < trees; ++i) w->live->set(i, tree(14).value());
    w->pool = shoal::Persistent<shoal::RefArray>(w->heap, shoal::RefArray::create(kValues));
    for (size_t i = 0; i < kValues; ++i) {
      shoal::Ref<Node> n = shoal::make<Node>();
      n->v = static_cast<int64_t>(i);
      w->pool->set(i, n.value());
      w->values.push_back(n.value());
    }
    w->seq = shoal::Persistent<shoal::RefArray>(w->heap, shoal::RefArray::create(kSeqSlots));
    w->random = shoal::Persistent<shoal::RefArray>(w->heap, shoal::RefArray::create(kRandomSlots));
    {
      // The ring: Nodes linked through `left` in a shuffled order (a pointer chase the
      // prefetcher cannot follow); a temporary RefArray keeps them alive while linking.
      shoal::Ref<shoal::RefArray> tmp = shoal::RefArray::create(kRingNodes);
      for (size_t i = 0; i < kRingNodes; ++i) tmp->set(i, shoal::make<Node>().value());
      std::vector<size_t> order(kRingNodes);
      for (size_t i = 0; i < kRingNodes; ++i) order[i] = i;
      uint64_t x = 88172645463325252ULL;
      for (size_t i = kRingNodes - 1; i > 0; --i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::swap(order[i], order[x % (i + 1)]);
      }
      auto node = [&](size_t i) { return shoal::Ref<Node>::from_value(tmp->get(order[i])); };
      for (size_t i = 0; i < kRingNodes; ++i) node(i).set(&Node::left, node((i + 1) % kRingNodes));
      w->ring = shoal::Persistent<Node>(w->heap, node(0));
    }
    w->heap.collect();
    w->heap.wait_for_collection();
    return w;
  }();
  return *w;
}

enum class Variant { kRaw, kUnchecked, kBarrier, kRefArraySet, kNoGen, kCard };

// Two emulated stores for the generational barrier's design question (issue 12: "card
// marking against a holder-is-old test"); neither is Shoal's write():
//   nogen  write() without its generational part: the mutation check, the SATB flag test
//          and the store - the barrier as it was before generations.
//   card   the same plus an unconditional card mark: one byte per 512 bytes of the slot's
//          address, in a 16 MiB table (indexed modulo, which costs what a table over the
//          reservation would); a card-marking design's whole barrier cost, without the
//          young-cycle card scan it implies.
constexpr size_t kCardShift = 9;
constexpr size_t kCards = size_t{1} << 24;
uint8_t* card_table() {
  static uint8_t* t = new uint8_t[kCards]();
  return t;
}
inline void write_nogen(shoal::Object* holder, shoal::Slot& slot, shoal::Value v) {
  shoal::internal::check_store(holder);
  shoal::internal::NoPreemptScope no_preempt;
  if (shoal::internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    const shoal::Value old_value = slot.load();
    if (old_value.is_object()) shoal::internal::write_barrier_slow(holder, &slot, old_value, v);
  }
  shoal::internal::SlotAccess::store(slot, v);
}
inline void write_card(shoal::Object* holder, shoal::Slot& slot, shoal::Value v, uint8_t* cards) {
  shoal::internal::check_store(holder);
  shoal::internal::NoPreemptScope no_preempt;
  if (shoal::internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    const shoal::Value old_value = slot.load();
    if (old_value.is_object()) shoal::internal::write_barrier_slow(holder, &slot, old_value, v);
  }
  cards[(reinterpret_cast<uintptr_t>(&slot) >> kCardShift) & (kCards - 1)] = 1;
  shoal::internal::SlotAccess::store(slot, v);
}
enum class Pattern { kSeq, kRandom, kRing };

// One batch of kBatch stores. `cursor` carries the slot index / LCG state across batches.
// kRing ignores the array: it follows the ring (node = node->left) and stores into each
// node's `right`, the holder being the node; `cursor` is then the current node.
template <Variant V, Pattern P>
void batch(shoal::RefArray* array, shoal::Slot* slots, size_t mask, const shoal::Value* values, uint64_t& cursor,
           uint64_t& vcursor) {
  shoal::Object* holder = shoal::Object::from_payload(array);
  uint8_t* const cards = card_table();
  uint64_t c = cursor;
  uint64_t k = vcursor;
  if constexpr (P == Pattern::kRing) {
    auto* n = reinterpret_cast<shoal::Object*>(c);
    for (size_t i = 0; i < kBatch; ++i) {
      Node* payload = static_cast<Node*>(n->payload());
      const shoal::Value v = values[k++ & (kValues - 1)];
      if constexpr (V == Variant::kRaw) shoal::internal::SlotAccess::store(payload->right.slot(), v);
      else if constexpr (V == Variant::kUnchecked) shoal::internal::write_unchecked(n, payload->right.slot(), v);
      else if constexpr (V == Variant::kNoGen) write_nogen(n, payload->right.slot(), v);
      else if constexpr (V == Variant::kCard) write_card(n, payload->right.slot(), v, cards);
      else shoal::Ref<Node>::from_object(n).set(&Node::right, shoal::Ref<Node>::from_value(v));
      n = payload->left.get().object();
    }
    cursor = reinterpret_cast<uint64_t>(n);
    vcursor = k;
    return;
  }
  for (size_t i = 0; i < kBatch; ++i) {
    size_t j;
    if constexpr (P == Pattern::kSeq) {
      j = static_cast<size_t>(c++) & mask;
    } else {
      c = c * 6364136223846793005ULL + 1442695040888963407ULL;
      j = static_cast<size_t>(c >> 32) & mask;
    }
    const shoal::Value v = values[k++ & (kValues - 1)];
    if constexpr (V == Variant::kRaw) shoal::internal::SlotAccess::store(slots[j], v);
    else if constexpr (V == Variant::kUnchecked) shoal::internal::write_unchecked(holder, slots[j], v);
    else if constexpr (V == Variant::kBarrier) shoal::write(holder, slots[j], v);
    else if constexpr (V == Variant::kNoGen) write_nogen(holder, slots[j], v);
    else if constexpr (V == Variant::kCard) write_card(holder, slots[j], v, cards);
    else array->set(j, v);
  }
  cursor = c;
  vcursor = k;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <Variant V, Pattern P, bool kMarking>
void BM_Store(benchmark::State& state) {
  World& w = world();
  shoal::MutatorScope attach(w.heap);
  shoal::RefArray* array = (P == Pattern::kSeq ? w.seq : w.random).get().operator->();
  const size_t mask = array->length() - 1;
  shoal::Slot* slots = array->slots();
  const shoal::Value* values = w.values.data();
  uint64_t cursor = P == Pattern::kRing ? reinterpret_cast<uint64_t>(w.ring.get().object()) : 1;
  uint64_t vcursor = 0;
  uint64_t started = 0, retried = 0;
  if (!kMarking) {
    w.heap.wait_for_collection();  // no cycle may be running (nothing here allocates)
  }
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kBatch))) {
    if constexpr (kMarking) {
      for (;;) {
        if (!w.heap.is_marking()) {
          w.heap.start_collection();
          ++started;
        }
        const auto t0 = std::chrono::steady_clock::now();
        batch<V, P>(array, slots, mask, values, cursor, vcursor);
        const double t = seconds_since(t0);
        if (w.heap.is_marking()) {  // on before (just checked/started) and after
          state.SetIterationTime(t);
          break;
        }
        ++retried;
      }
      shoal::safepoint();  // let the final pause in (it needs this thread at a safepoint)
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      batch<V, P>(array, slots, mask, values, cursor, vcursor);
      state.SetIterationTime(seconds_since(t0));
      shoal::safepoint();
    }
  }
  if (kMarking) {
    state.counters["cycles_started"] = static_cast<double>(started);
    state.counters["batches_retried"] = static_cast<double>(retried);
    w.heap.wait_for_collection();
  }
  state.SetItemsProcessed(state.iterations());
}

template <Pattern P>
void BM_StoreYoung(benchmark::State& state) {
  World& w = world();
  shoal::MutatorScope attach(w.heap);
  shoal::RefArray* array = (P == Pattern::kSeq ? w.seq : w.random).get().operator->();
  const size_t mask = array->length() - 1;
  shoal::Slot* slots = array->slots();
  // Young values: allocated with no cycle running or starting meanwhile (else again).
  std::vector<shoal::Value> young;
  shoal::Ref<shoal::RefArray> pool;  // keeps them alive (a root on this stack)
  for (int attempt = 0;; ++attempt) {
    w.heap.wait_for_collection();
    const uint64_t before = w.heap.stats().collections;
    pool = shoal::RefArray::create(kValues);
    young.clear();
    for (size_t i = 0; i < kValues; ++i) {
      shoal::Ref<Node> n = shoal::make<Node>();
      pool->set(i, n.value());
      young.push_back(n.value());
    }
    if (w.heap.stats().collections == before && !w.heap.is_marking()) break;
    if (attempt == 3) {
      state.SkipWithError("a cycle ran while the young values were allocated");
      return;
    }
  }
  const uint64_t cycles = w.heap.stats().collections;
  uint64_t cursor = P == Pattern::kRing ? reinterpret_cast<uint64_t>(w.ring.get().object()) : 1;
  uint64_t vcursor = 0;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kBatch))) {
    const auto t0 = std::chrono::steady_clock::now();
    batch<Variant::kBarrier, P>(array, slots, mask, young.data(), cursor, vcursor);
    state.SetIterationTime(seconds_since(t0));
    shoal::safepoint();
  }
  if (w.heap.stats().collections != cycles) state.SkipWithError("a cycle ran: the values were not young throughout");
  state.SetItemsProcessed(state.iterations());
}

enum class ReadVariant { kRaw, kRef, kChecked };

template <ReadVariant V>
void BM_Read(benchmark::State& state) {
  World& w = world();
  shoal::MutatorScope attach(w.heap);
  w.heap.wait_for_collection();
  if (V == ReadVariant::kChecked) shoal::internal::g_checked_reads.fetch_add(1);
  shoal::Object* n = w.ring.get().object();
  int64_t sum = 0;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kBatch))) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kBatch; ++i) {
      if constexpr (V == ReadVariant::kRaw) {
        const Node* p = static_cast<const Node*>(n->payload());
        sum += p->v;
        n = p->left.value().as_object();
      } else {
        const shoal::Ref<Node> r = shoal::Ref<Node>::from_object(n);
        sum += r->v;
        n = r->left.value().as_object();
      }
    }
    state.SetIterationTime(seconds_since(t0));
    shoal::safepoint();
  }
  benchmark::DoNotOptimize(sum);
  if (V == ReadVariant::kChecked) shoal::internal::g_checked_reads.fetch_sub(1);
  state.SetItemsProcessed(state.iterations());
}

// Collects the per-run real time of every benchmark (ns per store) for the summary,
// while printing as the console reporter does.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : ConsoleReporter(OO_Tabular) {}  // no colour codes (output goes to docs)
  void ReportRuns(const std::vector<Run>& reports) override {
    for (const Run& r : reports)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred)
        times_[r.run_name.function_name + (r.run_name.args.empty() ? "" : "/" + r.run_name.args)].push_back(
            r.GetAdjustedRealTime());
    ConsoleReporter::ReportRuns(reports);
  }
  double median(const std::string& name) const {
    auto it = times_.find(name);
    if (it == times_.end() || it->second.empty()) return 0;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  size_t runs(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? 0 : it->second.size();
  }

 private:
  std::map<std::string, std::vector<double>> times_;
};

void add(const char* name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name, fn)->UseManualTime()->Unit(benchmark::kNanosecond);
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flag first; google-benchmark rejects flags it does not know.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--live-mb=", 0) == 0) {
      g_live_mb = static_cast<size_t>(std::strtoul(a.c_str() + 10, nullptr, 10));
    } else if (a == "--live-mb" && i + 1 < argc) {
      g_live_mb = static_cast<size_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;

  benchmark::AddCustomContext("batch", std::to_string(kBatch) + " stores per timed batch (manual time)");
  benchmark::AddCustomContext("live_mb", std::to_string(g_live_mb) + " MiB of Node trees (marking variant)");

  add("raw/seq", BM_Store<Variant::kRaw, Pattern::kSeq, false>);
  add("unchecked/seq", BM_Store<Variant::kUnchecked, Pattern::kSeq, false>);
  add("barrier/seq", BM_Store<Variant::kBarrier, Pattern::kSeq, false>);
  add("nogen/seq", BM_Store<Variant::kNoGen, Pattern::kSeq, false>);
  add("card/seq", BM_Store<Variant::kCard, Pattern::kSeq, false>);
  add("marking/seq", BM_Store<Variant::kBarrier, Pattern::kSeq, true>);
  add("refarray/seq", BM_Store<Variant::kRefArraySet, Pattern::kSeq, false>);
  add("raw/random", BM_Store<Variant::kRaw, Pattern::kRandom, false>);
  add("unchecked/random", BM_Store<Variant::kUnchecked, Pattern::kRandom, false>);
  add("barrier/random", BM_Store<Variant::kBarrier, Pattern::kRandom, false>);
  add("nogen/random", BM_Store<Variant::kNoGen, Pattern::kRandom, false>);
  add("card/random", BM_Store<Variant::kCard, Pattern::kRandom, false>);
  add("marking/random", BM_Store<Variant::kBarrier, Pattern::kRandom, true>);
  add("refarray/random", BM_Store<Variant::kRefArraySet, Pattern::kRandom, false>);
  add("raw/ring", BM_Store<Variant::kRaw, Pattern::kRing, false>);
  add("unchecked/ring", BM_Store<Variant::kUnchecked, Pattern::kRing, false>);
  add("barrier/ring", BM_Store<Variant::kBarrier, Pattern::kRing, false>);
  add("nogen/ring", BM_Store<Variant::kNoGen, Pattern::kRing, false>);
  add("card/ring", BM_Store<Variant::kCard, Pattern::kRing, false>);
  add("marking/ring", BM_Store<Variant::kBarrier, Pattern::kRing, true>);
  add("young/seq", BM_StoreYoung<Pattern::kSeq>);
  add("young/random", BM_StoreYoung<Pattern::kRandom>);
  add("young/ring", BM_StoreYoung<Pattern::kRing>);
  add("rawread/chase", BM_Read<ReadVariant::kRaw>);
  add("read/chase", BM_Read<ReadVariant::kRef>);
  add("checkedread/chase", BM_Read<ReadVariant::kChecked>);

  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const shoal::GcStats st = world().heap.stats();
  const double marked = st.recent.empty() ? 0.0 : static_cast<double>(st.recent.back().bytes_marked) / 1048576.0;
  std::printf("\nSummary: median ns per store over the runs, and the ratio to raw. Heap: %.0f MiB marked by the "
              "last cycle, %llu cycles in all.\n\n",
              marked, static_cast<unsigned long long>(st.collections));
  std::printf("| pattern | raw ns | unchecked ns | barrier ns | marking ns | refarray ns | unchecked/raw "
              "| barrier/unchecked | marking/raw | refarray/raw |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const char* p : {"seq", "ring", "random"}) {
    const std::string s = p;
    const double raw = reporter.median("raw/" + s);
    const double unc = reporter.median("unchecked/" + s);
    const double bar = reporter.median("barrier/" + s);
    const double mark = reporter.median("marking/" + s);
    const double ra = reporter.median("refarray/" + s);
    auto ratio = [&](double x, double base) { return base > 0 && x > 0 ? x / base : 0.0; };
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.3f |\n", p, raw, unc, bar, mark, ra,
                ratio(unc, raw), ratio(bar, unc), ratio(mark, raw), ratio(ra, raw));
  }
  std::printf("\nThe generational barrier's design question (emulated stores; see Variant):\n\n");
  std::printf("| pattern | without the generational part ns | holder-is-old test (write) ns | card mark ns | test/without | card/without |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const char* p : {"seq", "ring", "random"}) {
    const std::string s = p;
    const double ng = reporter.median("nogen/" + s), bar = reporter.median("barrier/" + s),
                 card = reporter.median("card/" + s);
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", p, ng, bar, card, ng > 0 ? bar / ng : 0.0,
                ng > 0 ? card / ng : 0.0);
  }
  std::printf("\nYoung values into old holders (large arrays: by card; ring: small holders, by header bit):\n\n");
  std::printf("| pattern | barrier ns (old values) | young ns | young/barrier |\n|---|---:|---:|---:|\n");
  for (const char* p : {"seq", "ring", "random"}) {
    const std::string s = p;
    const double bar = reporter.median("barrier/" + s), yg = reporter.median("young/" + s);
    std::printf("| %s | %.3f | %.3f | %.3f |\n", p, bar, yg, bar > 0 ? yg / bar : 0.0);
  }
  const double rr = reporter.median("rawread/chase"), rd = reporter.median("read/chase"),
               cr = reporter.median("checkedread/chase");
  std::printf("\n| reads | raw ns | Ref-> ns | checked ns | Ref->/raw | checked/raw |\n|---|---:|---:|---:|---:|---:|\n");
  std::printf("| chase | %.3f | %.3f | %.3f | %.3f | %.3f |\n", rr, rd, cr, rd / rr, cr / rr);
  std::printf("\nTargets: unchecked/raw <= 1.03 (the barrier), barrier/unchecked <= 1.10 (the sharing checks).\n");
  benchmark::Shutdown();
  return 0;
}
