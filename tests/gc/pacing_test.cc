// Pacing from what a cycle marked as well as what it kept (HeapImpl::pacing_size,
// gc/generations.cc "Pacing"). A concurrent cycle keeps everything allocated while it
// marks (black allocation); that is floating garbage, not live data, and a goal grown
// from all of it would let a busy heap grow by its own garbage cycle after cycle.
//
// Each test holds a concurrent cycle's stack scans (the before-stack-scan hook, with
// every stack deferred) so the cycle is still marking while the main thread allocates
// kGarbage bytes of garbage, then lets it finish and checks the pacer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr double kGrowth = 4.0;

class PacingTest : public ::testing::TestWithParam<bool> {
 protected:
  HeapOptions options(size_t min_trigger) const {
    HeapOptions o;
    o.min_gc_trigger = min_trigger;
    o.gc_growth = kGrowth;
    o.generational = GetParam();
    o.initial_pause_stack_budget = 0;  // the main thread's stack is scanned after the pause
    return o;
  }

  // Waits until the cycle under way has ended (record included) and its lazy sweep has
  // reported - the point where the pacer has its final figures. `reports` is the sweep
  // count taken after the cycle's initial pause (which reports the previous sweep).
  static void wait_for_the_cycle_and_its_sweep(Heap& heap, uint64_t reports) {
    heap.wait_for_collection();
    const internal::Collector& collector = heap.impl().collector;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (collector.sweep_reports_for_testing() == reports) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the cycle's sweep never reported";
      heap.idle(std::chrono::milliseconds(1));  // sweeps (and reports) what is left
      run_native([] { std::this_thread::sleep_for(std::chrono::microseconds(200)); });
    }
  }

  // Runs one concurrent cycle (`scope`) during which `garbage` bytes of small objects
  // are allocated and dropped, and waits until its sweep has reported. `garbage` must
  // stay below twice the goal (past it an allocation waits for the held cycle).
  static CycleRecord cycle_with_black_garbage(Heap& heap, CollectionScope scope, size_t garbage) {
    internal::Collector& collector = heap.impl().collector;
    std::atomic<bool> allocated{false};
    collector.set_before_stack_scan_hook_for_testing([&allocated] {
      while (!allocated.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    });
    heap.start_collection(scope);
    const uint64_t reports = collector.sweep_reports_for_testing();
    EXPECT_TRUE(heap.is_marking());
    size_t bytes = 0;
    while (bytes < garbage) {
      (void)RefArray::create(30);  // 256-byte cells, garbage at once: black while marking
      bytes += 256;
    }
    allocated = true;
    wait_for_the_cycle_and_its_sweep(heap, reports);
    collector.set_before_stack_scan_hook_for_testing(nullptr);
    const CycleRecord r = heap.stats().recent.back();
    EXPECT_TRUE(r.sweep_complete);
    return r;
  }
};

TEST_P(PacingTest, BlackAllocatedGarbageDoesNotGrowTheGoal) {
  constexpr size_t kMinTrigger = 64 * kMiB, kGarbage = 40 * kMiB;
  Heap heap(options(kMinTrigger));
  MutatorScope attach(heap);
  const CycleRecord r = cycle_with_black_garbage(heap, CollectionScope::kFull, kGarbage);
  EXPECT_FALSE(r.young);
  // The cycle kept the garbage (black) but marked almost nothing: the goal is the
  // minimum, not gc_growth x what the sweep kept (4 x 40 MiB).
  EXPECT_GE(heap.stats().live_bytes, kGarbage * 9 / 10) << "the garbage was allocated black and kept";
  EXPECT_LT(r.bytes_marked, kMiB);
  EXPECT_EQ(heap.impl().trigger_bytes(), kMinTrigger);
}

// Floating garbage counts toward the goal, but only up to the bytes marked
// (HeapImpl::pacing_size): 12 MiB live and 40 MiB of black garbage make a goal of
// gc_growth x 2 x the marked bytes - not x 52 MiB, and not x 12 MiB.
TEST_P(PacingTest, FloatingGarbageCountsUpToTheMarkedBytes) {
  constexpr size_t kMinTrigger = 64 * kMiB, kGarbage = 40 * kMiB, kLive = 12 * kMiB;
  Heap heap(options(kMinTrigger));
  MutatorScope attach(heap);
  Persistent<RefArray> live(heap, RefArray::create(kLive / 256));
  for (size_t i = 0; i < kLive / 256; ++i) live->set(i, RefArray::create(30).value());  // 256-byte cells
  const CycleRecord r = cycle_with_black_garbage(heap, CollectionScope::kFull, kGarbage);
  EXPECT_GT(r.bytes_marked, kLive);
  EXPECT_LT(r.bytes_marked, kLive * 3 / 2);
  EXPECT_GT(heap.stats().live_bytes, 2 * r.bytes_marked) << "the black garbage survived the cycle";
  EXPECT_EQ(heap.impl().trigger_bytes(), static_cast<size_t>(static_cast<double>(2 * r.bytes_marked) * kGrowth));
}

class GenerationalPacingTest : public PacingTest {};

TEST_P(GenerationalPacingTest, OldGenerationGrowthCountsFromTheFullCyclesSurvivors) {
  constexpr size_t kMinTrigger = 16 * kMiB, kGarbage = 28 * kMiB;
  const HeapOptions o = options(kMinTrigger);
  Heap heap(o);
  MutatorScope attach(heap);
  // A full cycle that keeps kGarbage of black garbage: the old generation is then more
  // than (1 + full_gc_growth) x max(live, min_gc_trigger), but it has not grown since
  // that cycle - so the next cycle asked to be young is young (were the old
  // generation's size the test, every cycle would be full until the garbage is gone,
  // and a full cycle keeps the next batch of it).
  const CycleRecord full = cycle_with_black_garbage(heap, CollectionScope::kFull, kGarbage);
  EXPECT_FALSE(full.young);
  ASSERT_GT(static_cast<double>(heap.stats().live_bytes), (1.0 + o.full_gc_growth) * static_cast<double>(kMinTrigger));
  heap.start_collection(CollectionScope::kYoung);
  heap.wait_for_collection();
  EXPECT_TRUE(heap.stats().recent.back().young);
  // Growth past the allowance does make the next cycle full.
  const CycleRecord young = cycle_with_black_garbage(heap, CollectionScope::kYoung, kGarbage);
  EXPECT_TRUE(young.young);
  heap.start_collection(CollectionScope::kYoung);
  heap.wait_for_collection();
  EXPECT_FALSE(heap.stats().recent.back().young);
}

INSTANTIATE_TEST_SUITE_P(Generations, PacingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "generational" : "non_generational"; });
INSTANTIATE_TEST_SUITE_P(Generations, GenerationalPacingTest, ::testing::Values(true),
                         [](const ::testing::TestParamInfo<bool>&) { return "generational"; });

}  // namespace
}  // namespace shoal::test
