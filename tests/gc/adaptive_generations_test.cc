// Adaptive generations (HeapOptions::adaptive_generations; gc/generations.cc, "Young
// cycles that do not pay"): the pacer starts full cycles only while young survival is
// above the point where young cycles save a third of the collector's work and old
// objects survive no better than young ones (and under 3/4); young cycles come back
// when young survival falls, or old objects survive clearly better. Cycles asked for
// as young stay young.
//
// The workloads run paced cycles only (no collect() or start_collection() until the
// checks): a table churned at random (the generational hypothesis fails: an entry's
// chance of being replaced does not depend on its age), short-lived garbage beside a
// fixed structure, and a structure that grows.
#include <gtest/gtest.h>

#include <random>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kListLength = 8;  // 8 x 32-byte nodes: 256 bytes a list
constexpr size_t kSlots = 8192;    // a 2 MiB table of lists

HeapOptions options(bool adaptive) {
  HeapOptions o;
  o.min_gc_trigger = kMiB;
  o.adaptive_generations = adaptive;
  return o;
}

// Allocates until `cycles` more cycles have run, calling step() for each allocation.
template <class Step>
void run_cycles(Heap& heap, uint64_t cycles, Step step) {
  const uint64_t until = heap.stats().collections + cycles;
  while (heap.stats().collections < until)
    for (int i = 0; i < 256; ++i) step();
}

// The newest `n` records, oldest first.
std::vector<CycleRecord> newest(Heap& heap, size_t n) {
  const std::vector<CycleRecord> recent = heap.stats().recent;
  return {recent.end() - static_cast<ptrdiff_t>(std::min(n, recent.size())), recent.end()};
}

size_t count_young(const std::vector<CycleRecord>& records) {
  size_t n = 0;
  for (const CycleRecord& r : records) n += r.young ? 1 : 0;
  return n;
}

size_t count_full_for_yield(const std::vector<CycleRecord>& records) {
  size_t n = 0;
  for (const CycleRecord& r : records) n += r.full_for_yield ? 1 : 0;
  return n;
}

// A table of lists, one replaced at random per step.
class Churn {
 public:
  explicit Churn(Heap& heap) : table_(heap, RefArray::create(kSlots)) {
    for (size_t i = 0; i < kSlots; ++i) table_->set(i, make_list(kListLength).value());
  }
  void step() { table_->set(rng_() % kSlots, make_list(kListLength).value()); }

 private:
  Persistent<RefArray> table_;
  std::mt19937_64 rng_{12345};
};

// The phases the tests run: churn until young cycles are off (40 cycles), and garbage
// that dies young (20 cycles) - after churn, until they are back on.
void churn_for_cycles(Heap& heap, Churn& churn) {
  run_cycles(heap, 40, [&] { churn.step(); });
}
void make_garbage_for_cycles(Heap& heap) {
  run_cycles(heap, 20, [] { (void)make_list(kListLength); });
}

// With the defaults (gc_growth 1, full_gc_growth 0.5) young cycles save a third of the
// work per byte freed up to a young survival of 0.4; half as much budget between cycles
// doubles it; no full_gc_growth, no young cycle that pays.
TEST(AdaptiveGenerationsTest, TheSurvivalLimitFollowsTheGrowthOptions) {
  const auto limit = [](double gc_growth, double full_gc_growth) {
    HeapOptions o;
    o.gc_growth = gc_growth;
    o.full_gc_growth = full_gc_growth;
    Heap heap(o);
    return heap.impl().collector.young_survival_limit();
  };
  EXPECT_NEAR(limit(1.0, 0.5), 0.4, 1e-9);
  EXPECT_NEAR(limit(0.5, 0.5), 0.8, 1e-9);
  EXPECT_NEAR(limit(1.0, 0.0), 0.0, 1e-9);
}

class AdaptiveGenerationsChurnTest : public ::testing::TestWithParam<bool> {};

// Random churn: about 60 % of what a cycle finds young is still alive (each entry lives
// on until replaced) and the old generation dies as fast. Adaptive, the pacer turns young
// cycles off and the newest cycles are all full, made full for that; fixed, young
// cycles go on.
TEST_P(AdaptiveGenerationsChurnTest, RandomChurnTurnsYoungCyclesOff) {
  const bool adaptive = GetParam();
  Heap heap(options(adaptive));
  MutatorScope attach(heap);
  Churn churn(heap);
  churn_for_cycles(heap, churn);
  heap.wait_for_collection();
  const std::vector<CycleRecord> last = newest(heap, 10);
  const GcStats stats = heap.stats();
  if (adaptive) {
    EXPECT_TRUE(stats.young_cycles_off);
    EXPECT_GT(stats.young_survival, heap.impl().collector.young_survival_limit());
    EXPECT_LT(stats.old_survival, stats.young_survival);
    EXPECT_EQ(count_young(last), 0u);
    EXPECT_GE(count_full_for_yield(last), 5u);
  } else {
    EXPECT_FALSE(stats.young_cycles_off);
    EXPECT_LT(stats.young_survival, 0.0) << "nothing measured with adaptive generations off";
    EXPECT_GE(count_young(last), 3u);
    EXPECT_EQ(count_full_for_yield(last), 0u);
  }
  const VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

INSTANTIATE_TEST_SUITE_P(AdaptiveOrFixed, AdaptiveGenerationsChurnTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? std::string("Adaptive") : std::string("Fixed"); });

// Garbage that dies young beside a structure that lives on: young cycles pay, and stay.
TEST(AdaptiveGenerationsTest, GarbageThatDiesYoungKeepsYoungCycles) {
  Heap heap(options(true));
  MutatorScope attach(heap);
  Churn fixed(heap);  // (not churned: 2 MiB that lives on)
  run_cycles(heap, 30, [] { (void)make_list(kListLength); });
  const GcStats stats = heap.stats();
  EXPECT_FALSE(stats.young_cycles_off);
  EXPECT_LT(stats.young_survival, 0.1);
  EXPECT_EQ(count_full_for_yield(stats.recent), 0u);
  EXPECT_GE(count_young(newest(heap, 10)), 5u);
}

// A structure being built: most of what young cycles find lives on (above the survival
// limit), but so does the old generation - what they promote is not garbage, and a
// full cycle would trace all of it again. Young cycles stay, though a tenth of the
// entries are replaced (old survival below young survival: a test of old survival
// alone would turn them off).
TEST(AdaptiveGenerationsTest, AGrowingStructureKeepsYoungCycles) {
  HeapOptions o = options(true);
  o.gc_growth = 0.5;  // more cycles while it grows (survival limit 0.8)
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<GrowableList> grown(heap, GrowableList::create());
  std::mt19937_64 rng(7);
  const size_t target = 24 * kMiB / (kListLength * 32);
  while (grown->length() < target) {
    grown->add(make_list(kListLength).value());
    if (rng() % 10 == 0) grown->set(rng() % grown->length(), make_list(kListLength).value());
  }
  heap.wait_for_collection();
  const GcStats stats = heap.stats();
  ASSERT_GE(stats.collections - stats.young_collections, 2u) << "full cycles to measure the old generation";
  ASSERT_GE(stats.old_survival, 0.0) << "a full cycle measured the old generation";
  EXPECT_GT(stats.young_survival, heap.impl().collector.young_survival_limit()) << "the case the guard is for";
  EXPECT_FALSE(stats.young_cycles_off);
  EXPECT_EQ(count_full_for_yield(stats.recent), 0u);
}

// Churn, then garbage that dies young: the full cycles measure their young part, find
// it dying, and young cycles come back.
TEST(AdaptiveGenerationsTest, YoungCyclesComeBackWhenYoungObjectsDieYoung) {
  Heap heap(options(true));
  MutatorScope attach(heap);
  Churn churn(heap);
  churn_for_cycles(heap, churn);
  ASSERT_TRUE(heap.stats().young_cycles_off);
  make_garbage_for_cycles(heap);
  EXPECT_FALSE(heap.stats().young_cycles_off);
  EXPECT_GE(count_young(newest(heap, 10)), 5u);
}

// Churn (off), garbage that dies young (back on), then a structure being built: the
// build is judged by its own full cycles, not by the old survival the churn left
// behind - which, with young survival near 1 in the build, would turn young cycles off
// for all of it (no rule brings them back while young survival stays above 0.8 and old
// below 1.25 times it, unless old survival itself is high).
TEST(AdaptiveGenerationsTest, ABuildAfterChurnIsJudgedByItsOwnFullCycles) {
  Heap heap(options(true));
  MutatorScope attach(heap);
  {
    Churn churn(heap);
    churn_for_cycles(heap, churn);
    ASSERT_TRUE(heap.stats().young_cycles_off);
    make_garbage_for_cycles(heap);
    ASSERT_FALSE(heap.stats().young_cycles_off);
  }
  heap.wait_for_collection();
  const uint64_t build_start = heap.stats().collections;
  Persistent<GrowableList> grown(heap, GrowableList::create());
  const size_t target = 48 * kMiB / (kListLength * 32);
  while (grown->length() < target) grown->add(make_list(kListLength).value());
  heap.wait_for_collection();
  const GcStats stats = heap.stats();
  size_t build_cycles = 0, made_full = 0;
  for (const CycleRecord& r : stats.recent) {
    if (r.index <= build_start) continue;
    ++build_cycles;
    made_full += r.full_for_yield ? 1 : 0;
  }
  ASSERT_GE(build_cycles, 4u);
  // (The build's first full cycle also frees the churn's table, dropped with its phase:
  // its old survival is low, and it may turn young cycles off for one cycle. The next
  // full cycle measures the build's own.)
  EXPECT_LE(made_full, 1u) << "young cycles turned off while a structure was built";
  EXPECT_FALSE(stats.young_cycles_off);
}

// While young cycles are off, a young cycle asked for is young, and a full one asked
// for is not counted as made full by the pacer.
TEST(AdaptiveGenerationsTest, CyclesAskedForKeepTheirScope) {
  Heap heap(options(true));
  MutatorScope attach(heap);
  Churn churn(heap);
  churn_for_cycles(heap, churn);
  ASSERT_TRUE(heap.stats().young_cycles_off);
  heap.wait_for_collection();
  heap.start_collection(CollectionScope::kYoung);
  heap.wait_for_collection();
  EXPECT_TRUE(heap.stats().recent.back().young);
  heap.start_collection(CollectionScope::kFull);
  heap.wait_for_collection();
  EXPECT_FALSE(heap.stats().recent.back().young);
  EXPECT_FALSE(heap.stats().recent.back().full_for_yield);
  const VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

}  // namespace
}  // namespace shoal::test
