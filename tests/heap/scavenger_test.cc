// The scavenger (heap/scavenger.cc) and Heap::release_free_memory: free pages beyond
// what recent cycles needed go back to the system, so the footprint follows the heap
// down; a steady heap does not churn; pages faulted back in are zero and usable; the
// explicit call works from every thread state the docs allow.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kCell = 256;  // RefArray::create(30): a 256-byte cell

// `bytes` of live 256-byte arrays under one persistent root.
Persistent<RefArray> make_live(Heap& heap, size_t bytes) {
  Persistent<RefArray> live(heap, RefArray::create(bytes / kCell));
  for (size_t i = 0; i < bytes / kCell; ++i) live->set(i, RefArray::create(30).value());
  return live;
}

// Garbage until `cycles` more collections have run (allocation-paced: concurrent or
// stop-the-world as the heap is configured).
void churn_cycles(Heap& heap, uint64_t cycles) {
  const uint64_t until = heap.stats().collections + cycles;
  while (heap.stats().collections < until)
    for (int i = 0; i < 1000; ++i) (void)RefArray::create(30);
}

enum class Mode { kStopTheWorld, kConcurrent, kGenerational };

class ScavengerTest : public ::testing::TestWithParam<Mode> {
 protected:
  HeapOptions options() const {
    HeapOptions o;
    o.concurrent_marking = GetParam() != Mode::kStopTheWorld;
    o.generational = GetParam() == Mode::kGenerational;
    o.min_gc_trigger = 4 * kMiB;
    o.gc_growth = 1.0;
    return o;
  }
};

// 64 MiB live, then dropped: with 2 MiB live, once the burst's cycles have left the
// scavenger's memory (kScavengeCycles), the footprint falls to what the small heap
// needs. The decommitted pages come back zeroed when the heap grows again.
TEST_P(ScavengerTest, AfterABurstTheFootprintFollowsTheLiveSetDown) {
  Heap heap(options());
  MutatorScope attach(heap);
  on_helper_thread(heap, [&] {
    Persistent<RefArray> burst = make_live(heap, 64 * kMiB);
    heap.collect();
    EXPECT_GT(heap.stats().footprint_bytes, 64 * kMiB);
  });
  // (With generations the dropped burst is old garbage that only a full cycle frees:
  // young cycles do not grow the old generation enough to call one.)
  heap.collect();
  ASSERT_LT(heap.stats().live_bytes, 8 * kMiB);
  Persistent<RefArray> small = make_live(heap, 2 * kMiB);
  churn_cycles(heap, 12);
  EXPECT_TRUE(eventually([&] { return heap.stats().footprint_bytes < 24 * kMiB; }))
      << "footprint " << heap.stats().footprint_bytes / kMiB << " MiB after the burst";
  const GcStats s = heap.stats();
  EXPECT_GE(s.bytes_released, 40 * kMiB);
  EXPECT_GT(s.pages_decommitted, 0u);
  EXPECT_TRUE(heap.verify().ok);

  // Grow again through the decommitted pages: every new array reads back null (a page
  // handed out as clean must be zero) and the heap verifies.
  Persistent<RefArray> again = make_live(heap, 48 * kMiB);
  for (size_t i = 0; i < again->length(); i += 7) {
    Ref<RefArray> a = Ref<RefArray>::from_value(again->get(i));
    for (size_t j = 0; j < a->length(); ++j) ASSERT_TRUE(a->get(j).is_null()) << i << "/" << j;
  }
  heap.collect();
  EXPECT_TRUE(heap.verify().ok);
}

// An idle heap shrinks too: no cycle runs after the burst, and once its peak is older
// than the scavenger's window (5 s) the marker thread, waking once a second, gives the
// pages back. (A stop-the-world heap has no marker thread: it shrinks at its cycles.)
TEST(ScavengerIdleTest, AnIdleConcurrentHeapShrinksWithoutAnotherCycle) {
  HeapOptions o;
  o.min_gc_trigger = 4 * kMiB;
  o.generational = false;
  Heap heap(o);
  MutatorScope attach(heap);
  heap.start_collection();  // (the marker thread exists from the first concurrent cycle)
  heap.wait_for_collection();
  on_helper_thread(heap, [&] { Persistent<RefArray> burst = make_live(heap, 64 * kMiB); });
  heap.collect();  // frees the burst; its peak is the newest
  const GcStats after = heap.stats();
  ASSERT_LT(after.live_bytes, 8 * kMiB);
  ASSERT_GT(after.footprint_bytes, 56 * kMiB);
  const uint64_t cycles = after.collections;
  EXPECT_TRUE(eventually([&] { return heap.stats().footprint_bytes < 24 * kMiB; }))
      << "footprint " << heap.stats().footprint_bytes / kMiB << " MiB";
  EXPECT_EQ(heap.stats().collections, cycles) << "no cycle ran meanwhile";
  EXPECT_TRUE(heap.verify().ok);
}

// A heap whose demand does not change does not churn: the pages it frees each cycle
// are the ones the next cycle allocates in, not pages given back and committed again.
// Churn is what was both given back and committed meanwhile. (What it gives back once -
// a peak from a cycle that ran long on a loaded machine, leaving the scavenger's window
// - is not churn: it is not committed again; nor is growth with nothing given back. A
// test of the bytes released alone failed so, at 5.06 % of the allocation against 5 %,
// under ASan on a busy machine.)
TEST_P(ScavengerTest, ASteadyHeapDoesNotChurn) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> live = make_live(heap, 16 * kMiB);
  churn_cycles(heap, 4);
  const GcStats before = heap.stats();
  churn_cycles(heap, 20);
  const GcStats after = heap.stats();
  const uint64_t released = after.bytes_released - before.bytes_released;
  const uint64_t allocated = after.bytes_allocated - before.bytes_allocated;
  // Committed meanwhile: what the footprint grew by plus what it gave back.
  const int64_t committed = static_cast<int64_t>(after.footprint_bytes) - static_cast<int64_t>(before.footprint_bytes) +
                            static_cast<int64_t>(released);
  const int64_t churned = std::min(committed, static_cast<int64_t>(released));
  EXPECT_LT(churned, static_cast<int64_t>(allocated / 20))
      << committed / static_cast<int64_t>(kMiB) << " MiB committed and " << released / kMiB << " MiB released of "
      << allocated / kMiB << " MiB allocated";
}

// A soft limit lowered at run time: the pacer's goal shrinks, and the pages the bigger
// goal had committed go back, down to the limit - or, where the pacer cannot fit under
// it (a concurrent cycle keeps what was allocated while it marked, and the goal's cut
// stops at a floor), down to what the pacer expects each cycle to need.
TEST_P(ScavengerTest, ALoweredSoftLimitBringsTheFootprintDown) {
  HeapOptions o = options();
  o.gc_growth = 3.0;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<RefArray> live = make_live(heap, 16 * kMiB);
  churn_cycles(heap, 4);
  const size_t before = heap.stats().footprint_bytes;
  ASSERT_GT(before, 60 * kMiB);
  heap.set_soft_heap_limit(40 * kMiB);
  churn_cycles(heap, 6);
  auto bound = [&] { return std::max(46 * kMiB, heap.impl().scavenge_retain_bytes() + kMiB); };
  EXPECT_TRUE(eventually([&] { return heap.stats().footprint_bytes < bound(); }))
      << "footprint " << heap.stats().footprint_bytes / kMiB << " MiB under a 40 MiB limit, bound " << bound() / kMiB;
  EXPECT_LT(heap.stats().footprint_bytes, before * 4 / 5)
      << "footprint " << heap.stats().footprint_bytes / kMiB << " MiB, " << before / kMiB << " before";
  if (GetParam() != Mode::kConcurrent) {
    EXPECT_LT(heap.stats().footprint_bytes, 46 * kMiB);
  }
  EXPECT_TRUE(heap.verify().ok);
}

INSTANTIATE_TEST_SUITE_P(Marking, ScavengerTest,
                         ::testing::Values(Mode::kStopTheWorld, Mode::kConcurrent, Mode::kGenerational),
                         [](const auto& info) {
                           switch (info.param) {
                             case Mode::kStopTheWorld: return "StopTheWorld";
                             case Mode::kConcurrent: return "Concurrent";
                             default: return "Generational";
                           }
                         });

// Free pages for release_free_memory to return: garbage, collected.
void make_free_pages(Heap& heap) {
  on_helper_thread(heap, [&] { Persistent<RefArray> garbage = make_live(heap, 8 * kMiB); });
  heap.collect();
}

// Every thread state the docs allow: attached and running, unattached, inside
// run_native, while a concurrent cycle marks, in a handshake callback (run by the
// thread itself - at a poll or on its way out of run_native - and, for a thread in
// run_native, by the requester, which holds the collector's lock), from a thread running
// on another heap, in a finalizer and in the on_finalizers_pending notification.
TEST(ReleaseFreeMemoryTest, FromEveryThreadState) {
  std::atomic<size_t> by_notification{0};
  std::atomic<int> notified{0};
  Heap* self = nullptr;
  HeapOptions o;
  o.on_finalizers_pending = [&] {
    if (notified.fetch_add(1) == 0) by_notification = self->release_free_memory() + 1;
  };
  Heap heap(o);
  self = &heap;
  MutatorScope attach(heap);

  auto check = [&](const char* state, auto&& call) {
    make_free_pages(heap);
    const size_t footprint = heap.stats().footprint_bytes;
    const uint64_t released_before = heap.stats().bytes_released;
    const size_t released = call();
    EXPECT_GT(released, 0u) << state;
    EXPECT_EQ(heap.stats().bytes_released - released_before, released) << state;
    EXPECT_LE(heap.stats().footprint_bytes, footprint - released) << state;
    EXPECT_EQ(heap.stats().pages_free, heap.stats().pages_decommitted) << state;
    EXPECT_TRUE(heap.verify().ok) << state;
  };
  check("attached", [&] { return heap.release_free_memory(); });
  check("unattached", [&] {
    size_t r = 0;
    std::thread t([&] { r = heap.release_free_memory(); });
    run_native([&] { t.join(); });
    return r;
  });
  check("run_native", [&] {
    size_t r = 0;
    run_native([&] { r = heap.release_free_memory(); });
    return r;
  });
  check("during a cycle", [&] {
    heap.start_collection();
    const size_t r = heap.release_free_memory();
    heap.wait_for_collection();
    return r;
  });
  check("handshake", [&] {
    // Three ways an operation runs: on the requester (this thread, holding the
    // collector's lock), on a running thread at its poll, and - for a thread inside
    // run_native - on the requester on its behalf. The first to run releases it all;
    // none may deadlock.
    std::atomic<size_t> r{0};
    std::atomic<int> ready{0};
    std::atomic<bool> done{false};
    std::thread polling([&] {
      MutatorScope a(heap);
      ++ready;
      while (!done) safepoint();
    });
    std::thread native([&] {
      MutatorScope a(heap);
      run_native([&] {
        ++ready;
        while (!done) std::this_thread::yield();
      });
    });
    while (ready < 2) std::this_thread::yield();
    std::atomic<int> ran{0};
    handshake_all(heap, [&](size_t) {
      r += heap.release_free_memory();
      ++ran;
    });
    EXPECT_EQ(ran.load(), 3);
    done = true;
    run_native([&] {
      polling.join();
      native.join();
    });
    return r.load();
  });
  check("handshake, run by a thread leaving run_native", [&] {
    // The thread runs the operation itself as it returns from native code, holding its
    // own handshake lock while the requester - holding the collector's lock - waits for
    // it: the call must not wait for the collector's lock (it deadlocked).
    std::atomic<size_t> r{0};
    {
      ThreadLeavingNative leaving(heap);
      for (int i = 0; i < 200; ++i) handshake_all(heap, [&](size_t) { r += heap.release_free_memory(); });
    }
    return r.load();
  });
  check("running on another heap", [&] {
    Heap other;
    size_t r = 0;
    std::thread t([&] {
      MutatorScope on_other(other);
      r = heap.release_free_memory();
    });
    run_native([&] { t.join(); });
    return r;
  });
  std::atomic<size_t> by_finalizer{0};
  in_own_frame([&] {
    (void)heap.add_finalizer(make<Node>().value(), [&] { by_finalizer = heap.release_free_memory(); });
  });
  clobber_stack();
  heap.collect();  // queues it (the notification runs)
  check("finalizer", [&] {
    EXPECT_EQ(heap.run_finalizers(), 1u);
    return by_finalizer.load();
  });
  EXPECT_GE(notified.load(), 1);
  EXPECT_GE(by_notification.load(), 1u) << "called from the notification";
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test
