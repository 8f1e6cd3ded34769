// Pacing under the heap limit (HeapOptions::heap_limit; heap/heap.cc, "Heap limit", and
// heap/allocator.cc on heap-limit collections): the pacer fits its goal under
// kLimitPacingFraction of the limit, with no floor but min_gc_trigger; with
// generations, old growth beyond the room left makes the next cycle full; and a thread
// that hits the limit while a concurrent cycle marks is served by that cycle, without
// a stop-the-world collection right after it.
//
// The goal tests read the goal (HeapImpl::trigger_bytes) after a stop-the-world
// collect(), which sets it from exact figures: the bytes it marked are what it kept.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "gc/collector.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr double kGrowth = 4.0;
constexpr size_t kCell = 256;  // RefArray::create(30): a 256-byte cell

class HeapLimitPacingTest : public ::testing::TestWithParam<bool> {
 protected:
  HeapOptions options(size_t heap_limit) const {
    HeapOptions o;
    o.min_gc_trigger = 4 * kMiB;
    o.gc_growth = kGrowth;
    o.generational = GetParam();
    o.full_gc_growth = 100;  // (only the limit asks for full cycles here)
    o.heap_limit = heap_limit;
    return o;
  }

  // `bytes` of live 256-byte arrays under one persistent root.
  static Persistent<RefArray> make_live(Heap& heap, size_t bytes) {
    Persistent<RefArray> live(heap, RefArray::create(bytes / kCell));
    for (size_t i = 0; i < bytes / kCell; ++i) live->set(i, RefArray::create(30).value());
    return live;
  }

  static double goal(Heap& heap) { return static_cast<double>(heap.impl().trigger_bytes()); }
  static double kept(Heap& heap) { return static_cast<double>(heap.stats().recent.back().bytes_marked); }
  // The goal the heap limit gives: the room under the pacing target / k, k the pages'
  // overhead.
  static double room(Heap& heap) {
    return static_cast<double>(heap.impl().limit_pacing_target()) / heap.impl().pacing_overhead() - kept(heap);
  }
};

// 20 MiB live and gc_growth 4: the pacer's budget is 80 MiB, which a 64 MiB heap cannot
// hold. The goal is the room under 7/8 of the limit (about 36 MiB). With 44 MiB live
// the room (under 12 MiB) is less than the floor: a quarter of the budget (44 MiB, as
// the soft limit's) but no more than the room under the limit itself (under 20 MiB).
// A limit with room for the whole budget leaves it alone.
TEST_P(HeapLimitPacingTest, TheGoalIsCutToTheRoomUnderTheLimit) {
  {
    Heap heap(options(64 * kMiB));
    MutatorScope attach(heap);
    Persistent<RefArray> live = make_live(heap, 20 * kMiB);
    heap.collect();
    ASSERT_GT(kept(heap), 20.0 * kMiB);
    ASSERT_LT(kept(heap), 22.0 * kMiB);
    EXPECT_NEAR(goal(heap), room(heap), 0.5 * kMiB);
    EXPECT_LT(goal(heap), 40.0 * kMiB);
    Persistent<RefArray> more = make_live(heap, 24 * kMiB);
    heap.collect();
    ASSERT_GT(kept(heap), 44.0 * kMiB);
    const double room_under_limit = 64.0 * kMiB / heap.impl().pacing_overhead() - kept(heap);
    ASSERT_GT(room_under_limit, room(heap));
    EXPECT_NEAR(goal(heap), room_under_limit, 0.5 * kMiB);
    EXPECT_LT(goal(heap), kGrowth * kept(heap) / 4 - 20.0 * kMiB) << "below a quarter of the budget";
  }
  {
    Heap heap(options(1024 * kMiB));
    MutatorScope attach(heap);
    Persistent<RefArray> live = make_live(heap, 20 * kMiB);
    heap.collect();
    EXPECT_NEAR(goal(heap), kGrowth * kept(heap), 0.5 * kMiB) << "room for the whole budget";
  }
}

// Live data half the limit, a thread churning: every paced cycle ends under the limit,
// none is a stop-the-world heap-limit collection. Before the pacer knew the limit,
// every other cycle was one (the goal, gc_growth x live, passed the limit), and with
// generations the young cycles left the old garbage to them.
TEST_P(HeapLimitPacingTest, ChurnAtHalfTheLimitStaysConcurrent) {
  HeapOptions o = options(32 * kMiB);
  o.gc_growth = 1.0;
  Heap heap(o);
  MutatorScope attach(heap);
  constexpr size_t kLive = 15 * kMiB;
  Persistent<RefArray> live = make_live(heap, kLive);
  heap.collect();
  const uint64_t first = heap.stats().collections;
  // Replace live arrays at random: the garbage is spread over the pages as in a real
  // program's old generation.
  uint64_t x = 88172645463325252ull;
  const size_t n = kLive / kCell;
  while (heap.stats().collections < first + 24) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    live->set(x % n, RefArray::create(30).value());
  }
  heap.wait_for_collection();
  size_t at_limit = 0, cycles = 0;
  for (const CycleRecord& r : heap.stats().recent) {
    if (r.index <= first) continue;
    ++cycles;
    if (std::strcmp(r.cause, "heap-limit") == 0) ++at_limit;
  }
  ASSERT_GE(cycles, 20u);
  // (Slack for a loaded machine, where the marker thread may not keep up: before the
  // pacer knew the limit, half the cycles.)
  EXPECT_LE(at_limit, cycles / 10) << at_limit << " of " << cycles << " cycles were stop-the-world at the limit";
  EXPECT_TRUE(heap.verify().ok);
}

class HeapLimitGenerationalTest : public HeapLimitPacingTest {};

// Young cycles promote (two of them, with aging) 16 MiB of objects that then die: old
// garbage a young cycle cannot free. Under a 48 MiB limit the room left (7/8 x 48 - 24
// = under 18 MiB) is less than the old generation has grown by (16 MiB, plus what the
// young cycles' own arrays added) ... so the next cycle asked to be young is full.
// Once it has freed the old garbage cycles are young again. With a limit far away,
// all stay young (full_gc_growth is out of reach).
TEST_P(HeapLimitGenerationalTest, OldGrowthBeyondTheRoomMakesTheNextCycleFull) {
  for (const bool limited : {true, false}) {
    SCOPED_TRACE(limited ? "under a 48 MiB heap limit" : "under a 1 GiB heap limit");
    Heap heap(options(limited ? 48 * kMiB : 1024 * kMiB));
    MutatorScope attach(heap);
    Persistent<RefArray> live = make_live(heap, 8 * kMiB);
    heap.collect();  // full: L = 8 MiB
    {
      Persistent<RefArray> doomed = make_live(heap, 20 * kMiB);
      for (int i = 0; i < 2; ++i) {  // (aging: the second young cycle makes them old)
        heap.start_collection(CollectionScope::kYoung);
        heap.wait_for_collection();
        ASSERT_TRUE(heap.verify().ok);  // (finishes the sweep, which reports)
        ASSERT_TRUE(heap.stats().recent.back().young);
      }
      ASSERT_GE(heap.impl().collector.old_generation_bytes(), 26 * kMiB) << "the young cycles promoted them";
    }
    heap.start_collection(CollectionScope::kYoung);
    heap.wait_for_collection();
    ASSERT_TRUE(heap.verify().ok);
    EXPECT_EQ(heap.stats().recent.back().young, !limited);
    heap.start_collection(CollectionScope::kYoung);
    heap.wait_for_collection();
    ASSERT_TRUE(heap.verify().ok);
    EXPECT_TRUE(heap.stats().recent.back().young) << "the old garbage is gone: no more full cycles";
    if (limited) {
      EXPECT_LT(heap.impl().collector.old_generation_bytes(), 12 * kMiB) << "the full cycle freed it";
    }
    for (const CycleRecord& r : heap.stats().recent) EXPECT_STRNE(r.cause, "heap-limit");
  }
}

// A thread that hits the limit while a concurrent cycle marks waits for that cycle, and
// the cycle - which frees the garbage that filled the heap - serves it: its allocation
// goes on without another, stop-the-world, collection of the whole heap right after.
// The marker is held until the thread waits (in the native state, in collect()).
TEST_P(HeapLimitPacingTest, ACycleThatEndsWhileAThreadWaitsAtTheLimitServesIt) {
  HeapOptions o = options(24 * kMiB);
  o.min_gc_trigger = 512 * kMiB;  // no paced cycle: only the ones this test starts
  Heap heap(o);
  MutatorScope attach(heap);
  in_own_frame([&] {
    for (size_t bytes = 0; bytes < 20 * kMiB; bytes += kCell) (void)RefArray::create(30);  // garbage
  });
  clobber_stack();
  ASSERT_EQ(heap.stats().collections, 0u);
  MarkerPause pause(heap, MarkerPause::BeforeTracing{});
  heap.start_collection();
  pause.wait_until_held();

  std::atomic<internal::MutatorThread*> worker_thread{nullptr};
  std::atomic<bool> done{false};
  std::thread worker([&] {
    MutatorScope scope(heap);
    worker_thread.store(internal::current_thread());
    // 8 MiB more garbage: it passes the limit after 4 MiB or so.
    for (size_t bytes = 0; bytes < 8 * kMiB; bytes += kCell) (void)RefArray::create(30);
    done.store(true);
  });
  // The worker waits for the cycle once it is in the native state (its allocation's
  // collect(): nothing else in its loop leaves the running state but safepoints, which
  // park it).
  EXPECT_TRUE(eventually([&] {
    internal::MutatorThread* t = worker_thread.load();
    return done.load() || (t && t->state.load() == internal::ThreadState::kNative);
  }));
  EXPECT_FALSE(done.load()) << "the worker never reached the limit";
  pause.release();
  run_native([&] { worker.join(); });
  EXPECT_TRUE(done.load());
  heap.wait_for_collection();
  const GcStats s = heap.stats();
  EXPECT_EQ(s.collections, 1u) << "only the concurrent cycle: no stop-the-world collection after it";
  for (const CycleRecord& r : s.recent) EXPECT_STRNE(r.cause, "heap-limit");
  EXPECT_TRUE(heap.verify().ok);
}

INSTANTIATE_TEST_SUITE_P(Generations, HeapLimitPacingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "generational" : "non_generational"; });
INSTANTIATE_TEST_SUITE_P(Generations, HeapLimitGenerationalTest, ::testing::Values(true),
                         [](const ::testing::TestParamInfo<bool>&) { return "generational"; });

}  // namespace
}  // namespace shoal::test
