// Pacing from what a cycle marked as well as what it kept (HeapImpl::pacing_size,
// gc/generations.cc "Pacing"). A concurrent cycle keeps everything allocated while it
// marks (black allocation); that is floating garbage, not live data, and a goal grown
// from all of it would let a busy heap grow by its own garbage cycle after cycle.
//
// Each test holds a concurrent cycle's marker (MarkerPause) after the initial pause has
// scanned the main thread's stack, so the cycle is still marking while the main thread
// allocates kGarbage bytes of garbage - black: its stack is scanned - then lets it
// finish and checks the pacer. (Before its own stack's scan a thread allocates white,
// and such garbage dies in the cycle: thread_stack_scan_test.cc, "White allocation".)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

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
    o.initial_pause_stack_budget = SIZE_MAX;  // the main thread's stack is scanned in the pause
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
    Persistent<RefArray> held(heap, RefArray::create(1));  // young: a young cycle traces it too
    {
      MarkerPause pause(heap, nullptr);  // holds the marker after the first object it traces
      heap.start_collection(scope);
      const uint64_t reports = collector.sweep_reports_for_testing();
      pause.wait_until_held();
      EXPECT_TRUE(heap.is_marking());
      size_t bytes = 0;
      while (bytes < garbage) {
        (void)RefArray::create(30);  // 256-byte cells, garbage at once: black while marking
        bytes += 256;
      }
      pause.release();
      wait_for_the_cycle_and_its_sweep(heap, reports);
    }
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
// (HeapImpl::pacing_size): 20 MiB live and 40 MiB of black garbage make a goal of
// gc_growth x 2 x the marked bytes - not x 60 MiB, and not x 20 MiB. (With generations
// the black garbage is young after the sweep - gc/generations.cc, "Newborns" - but it
// counts toward L as it does toward the goal without generations.)
TEST_P(PacingTest, FloatingGarbageCountsUpToTheMarkedBytes) {
  constexpr size_t kMinTrigger = 64 * kMiB, kGarbage = 40 * kMiB, kLive = 20 * kMiB;
  Heap heap(options(kMinTrigger));
  MutatorScope attach(heap);
  Persistent<RefArray> live(heap, RefArray::create(kLive / 256));
  for (size_t i = 0; i < kLive / 256; ++i) live->set(i, RefArray::create(30).value());  // 256-byte cells
  const CycleRecord r = cycle_with_black_garbage(heap, CollectionScope::kFull, kGarbage);
  EXPECT_GT(r.bytes_marked, kLive);
  EXPECT_LT(r.bytes_marked, kLive * 3 / 2);
  EXPECT_GT(heap.stats().live_bytes, 2 * r.bytes_marked) << "the black garbage survived the cycle";
  const size_t size_paced_from = 2 * r.bytes_marked;
  // (Near, not equal: the survivors count a large object's whole allocation, the marked
  // bytes its object.)
  EXPECT_NEAR(static_cast<double>(heap.impl().trigger_bytes()), static_cast<double>(size_paced_from) * kGrowth,
              static_cast<double>(kMiB));
}

class GenerationalPacingTest : public PacingTest {};

// Objects allocated while a cycle marks are black for that cycle only: its sweep keeps
// them but leaves them young (unmarked, newborn bit), so they are not promoted, and the
// next young cycle frees them if they died - both after a full and after a young cycle.
TEST_P(GenerationalPacingTest, ObjectsAllocatedWhileACycleMarksAreYoungAfterItsSweep) {
  constexpr size_t kMinTrigger = 16 * kMiB, kGarbage = 28 * kMiB;
  Heap heap(options(kMinTrigger));
  MutatorScope attach(heap);
  internal::Collector& collector = heap.impl().collector;
  for (const CollectionScope scope : {CollectionScope::kFull, CollectionScope::kYoung}) {
    const CycleRecord r = cycle_with_black_garbage(heap, scope, kGarbage);
    EXPECT_EQ(r.young, scope == CollectionScope::kYoung);
    EXPECT_GE(heap.stats().live_bytes, kGarbage * 9 / 10) << "the garbage was allocated black and kept";
    EXPECT_LT(collector.old_generation_bytes(), kMiB) << "black-allocated objects were promoted";
    // The next young cycle frees them.
    heap.start_collection(CollectionScope::kYoung);
    heap.wait_for_collection();
    const VerifyReport v = heap.verify();  // (finishes the sweep, which reports)
    EXPECT_TRUE(v.ok) << v.summary();
    const CycleRecord next = heap.stats().recent.back();
    EXPECT_TRUE(next.young);
    EXPECT_GE(next.freed_bytes, kGarbage * 9 / 10) << "a young cycle did not free last cycle's newborns";
    EXPECT_LT(heap.stats().live_bytes, kMiB);
  }
}

// A full cycle is due once the old generation has grown by more than full_gc_growth x
// max(L, min_gc_trigger) since the last full cycle: objects a young cycle traces (live
// at its snapshot) are promoted, and once enough are, the next cycle asked to be young
// is full.
TEST_P(GenerationalPacingTest, OldGenerationGrowthMakesTheNextCycleFull) {
  constexpr size_t kMinTrigger = 16 * kMiB;
  HeapOptions o = options(kMinTrigger);
  // (Every batch lives on: adaptive aging would soon count what a cycle keeps young as
  // old growth too - generations_test.cc, AdaptiveAgingTest - and this test measures
  // the old generation alone.)
  o.adaptive_aging = false;
  Heap heap(o);
  MutatorScope attach(heap);
  internal::Collector& collector = heap.impl().collector;
  heap.collect();  // a full cycle: L = min_gc_trigger from here
  const auto allowance = static_cast<size_t>(o.full_gc_growth * static_cast<double>(kMinTrigger));
  Persistent<RefArray> kept(heap, RefArray::create(2 * allowance / 256));
  size_t promoted = 0;
  for (size_t i = 0; promoted <= allowance; ++i) {
    // A batch of live objects, then a young cycle that promotes them.
    for (size_t n = 0; n < kMiB / 256; ++n) kept->set(i * (kMiB / 256) + n, RefArray::create(30).value());
    heap.start_collection(CollectionScope::kYoung);
    heap.wait_for_collection();
    ASSERT_TRUE(heap.verify().ok);  // (finishes the sweep, which reports the old generation's size)
    ASSERT_TRUE(heap.stats().recent.back().young) << "a full cycle before the old generation grew enough";
    promoted = collector.old_generation_bytes();
  }
  heap.start_collection(CollectionScope::kYoung);
  heap.wait_for_collection();
  EXPECT_FALSE(heap.stats().recent.back().young) << "the old generation grew past the allowance";
}

// Pacing counts (heap/allocator.cc): a TLAB's run is counted toward the trigger a chunk
// at a time, so a few objects in many classes count a little each, not a page each; and
// what a thread really allocates is all counted.
ClassId byte_class_of_cell(size_t cell) {
  return define_fixed_class("pacing.bytes" + std::to_string(cell), static_cast<uint32_t>(cell - kHeaderSize));
}

TEST(PacingCountsTest, AFewObjectsInEveryClassCountAChunkEachNotARun) {
  HeapOptions o;
  o.min_gc_trigger = size_t{1} << 30;  // no cycle: only the counts
  Heap heap(o);
  MutatorScope attach(heap);
  std::vector<ClassId> classes;
  for (size_t c = 0; c < internal::kNumSizeClasses; ++c) classes.push_back(byte_class_of_cell(internal::kClassSize[c]));
  heap.collect();  // every TLAB retired: the next allocation in each class takes a fresh run
  internal::HeapImpl& impl = heap.impl();
  const size_t before = impl.allocated_since_cycle();
  for (ClassId id : classes)
    for (int i = 0; i < 3; ++i) (void)allocate_instance(id);
  impl.report_allocated(internal::current_thread());
  const size_t counted = impl.allocated_since_cycle() - before;
  // A fresh page is one 256 KiB run: whole-run counting would say 35 x 256 KiB.
  EXPECT_LE(counted, internal::kNumSizeClasses * (size_t{32} << 10)) << counted;
  EXPECT_GE(counted, internal::kNumSizeClasses * 3 * 16);
}

TEST(PacingCountsTest, EverythingAThreadAllocatesIsCounted) {
  HeapOptions o;
  o.min_gc_trigger = size_t{1} << 30;
  Heap heap(o);
  MutatorScope attach(heap);
  heap.collect();
  internal::HeapImpl& impl = heap.impl();
  const size_t before = impl.allocated_since_cycle();
  constexpr size_t kObjects = 100000;  // 2.4 MiB of 24-byte cells: many chunks and runs
  Persistent<RefArray> keep(heap, RefArray::create(kObjects));
  for (size_t i = 0; i < kObjects; ++i) keep->set(i, make<Node>().value());
  impl.report_allocated(internal::current_thread());
  const size_t counted = impl.allocated_since_cycle() - before;
  const size_t used = kObjects * internal::kClassSize[internal::size_class_of(kHeaderSize + sizeof(Node))];
  EXPECT_GE(counted, used);
  EXPECT_LE(counted, used + (size_t{1} << 20)) << "the array and at most a chunk per class beyond";
}

TEST(PacingCountsTest, NoCycleStormOnASmallHeapAllocatingInManyClasses) {
  // A small live set, objects of every small class in turn: with whole runs counted, each
  // cycle's retired TLABs made the next cycle due almost at once.
  HeapOptions o;
  o.min_gc_trigger = size_t{4} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  std::vector<ClassId> classes;
  for (size_t c = 0; c < 16; ++c) classes.push_back(byte_class_of_cell(internal::kClassSize[c]));
  size_t bytes = 0;
  const uint64_t cycles_before = heap.stats().collections;
  while (bytes < (size_t{64} << 20)) {
    for (ClassId id : classes) {
      (void)allocate_instance(id);
      bytes += class_info(id).instance_size + kHeaderSize;
    }
  }
  heap.wait_for_collection();
  const uint64_t cycles = heap.stats().collections - cycles_before;
  // 64 MiB at one cycle per 4 MiB or so (the runway may start them earlier): far fewer
  // than one per MiB.
  EXPECT_LE(cycles, 40u) << "cycles for 64 MiB of garbage";
  EXPECT_GE(cycles, 4u);
}

INSTANTIATE_TEST_SUITE_P(Generations, PacingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "generational" : "non_generational"; });
INSTANTIATE_TEST_SUITE_P(Generations, GenerationalPacingTest, ::testing::Values(true),
                         [](const ::testing::TestParamInfo<bool>&) { return "generational"; });

}  // namespace
}  // namespace shoal::test
