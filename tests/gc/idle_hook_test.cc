// The idle-time hook (Heap::idle, Collector::idle in gc/collector.cc): once
// idle_gc_fraction of the pacing goal has been allocated, idle() starts the next cycle
// early - concurrent on a concurrent heap, a collection inside the call on a
// stop-the-world heap, and there only when the last stop-the-world pause fits the
// budget. Below the fraction it starts nothing. It needs a running thread of the heap.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGoal = 16 * kMiB;  // min_gc_trigger: the first goal

HeapOptions idle_options(bool concurrent) {
  HeapOptions o;
  o.concurrent_marking = concurrent;
  o.generational = concurrent;
  o.min_gc_trigger = kGoal;
  o.idle_gc_fraction = 0.5;
  o.idle_full_cycle_after = std::chrono::milliseconds(0);  // (no background idle cycle)
  return o;
}

// Allocates about `bytes` of garbage (nodes dropped at once).
[[gnu::noinline]] void allocate_garbage(size_t bytes) {
  for (size_t done = 0; done < bytes; done += sizeof(Node) + 8) (void)make<Node>();
}

uint64_t idle_cycles(const Heap& heap) {
  uint64_t n = 0;
  for (const CycleRecord& r : heap.stats().recent) n += std::strcmp(r.cause, "idle") == 0;
  return n;
}

class IdleHookTest : public ::testing::TestWithParam<bool> {};  // concurrent or not

TEST_P(IdleHookTest, BelowTheFractionItStartsNothing) {
  Heap heap(idle_options(GetParam()));
  MutatorScope attach(heap);
  allocate_garbage(kGoal / 8);
  EXPECT_FALSE(heap.idle(seconds(10)));
  EXPECT_EQ(heap.stats().collections, 0u);
}

TEST_P(IdleHookTest, PastTheFractionItStartsTheNextCycle) {
  Heap heap(idle_options(GetParam()));
  MutatorScope attach(heap);
  allocate_garbage(kGoal * 5 / 8);  // past half the goal, short of the goal itself
  ASSERT_EQ(heap.stats().collections, 0u);
  EXPECT_TRUE(heap.idle(seconds(10)));
  heap.wait_for_collection();
  const GcStats s = heap.stats();
  ASSERT_EQ(s.collections, 1u);
  EXPECT_STREQ(s.recent.back().cause, "idle");
  EXPECT_EQ(s.recent.back().concurrent, GetParam());
  // The cycle restarted the count: nothing is due until the fraction is allocated again.
  (void)heap.idle(seconds(1));  // (may sweep what the cycle left)
  heap.wait_for_collection();
  EXPECT_EQ(heap.stats().collections, 1u);
  EXPECT_TRUE(heap.verify().ok);
}

INSTANTIATE_TEST_SUITE_P(Heaps, IdleHookTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("concurrent") : std::string("stop_the_world");
                         });

TEST(IdleHookStopTheWorldTest, APauseLongerThanTheBudgetWaitsForALongerIdle) {
  Heap heap(idle_options(false));
  MutatorScope attach(heap);
  Persistent<Node> live(heap, make_list(10000));  // something to mark: the pause takes time
  heap.collect();
  ASSERT_GT(heap.stats().recent.back().pause_ns, 0u);
  allocate_garbage(kGoal * 5 / 8);
  EXPECT_FALSE(heap.idle(nanoseconds(0)));  // the last pause does not fit
  EXPECT_EQ(idle_cycles(heap), 0u);
  EXPECT_TRUE(heap.idle(seconds(10)));
  EXPECT_EQ(idle_cycles(heap), 1u);
  EXPECT_EQ(list_length_checked(live.get()), 10000u);
}

// No idle time - a deadline already passed, as `deadline - now` gives - does nothing,
// on either kind of heap (a negative budget, converted to unsigned, "fitted" any pause:
// a stop-the-world heap collected in the call).
TEST_P(IdleHookTest, ANegativeOrZeroBudgetDoesNothing) {
  Heap heap(idle_options(GetParam()));
  MutatorScope attach(heap);
  allocate_garbage(kGoal * 5 / 8);  // due
  EXPECT_FALSE(heap.idle(std::chrono::milliseconds(-1)));
  EXPECT_FALSE(heap.idle(nanoseconds(0)));
  heap.wait_for_collection();
  EXPECT_EQ(heap.stats().collections, 0u);
  EXPECT_TRUE(heap.idle(seconds(10)));
}

TEST(IdleHookThreadStateTest, ItNeedsARunningThreadOfTheHeap) {
  Heap heap(idle_options(true));
  MutatorScope attach(heap);
  std::thread unattached([&] { EXPECT_THROW(heap.idle(seconds(1)), NotAttached); });
  run_native([&] { unattached.join(); });
  run_native([&] { EXPECT_THROW(heap.idle(seconds(1)), ThreadStateError); });
  Heap other(idle_options(false));
  std::thread elsewhere([&] {
    MutatorScope on_other(other);
    EXPECT_THROW(heap.idle(seconds(1)), NotAttached);
  });
  run_native([&] { elsewhere.join(); });
}

}  // namespace
}  // namespace shoal::test
