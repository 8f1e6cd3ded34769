// Concurrent marking (SATB): mutators rearrange the graph while the marker runs, and
// nothing reachable may be lost.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

HeapOptions concurrent_options() {
  HeapOptions o;
  o.concurrent_marking = true;
  o.verify_after_gc = true;
  o.poison_freed_memory = true;
  o.min_gc_trigger = size_t{1} << 20;
  o.marker_threads = 3;  // parallel marking (helpers) in the concurrent phase
  return o;
}

// The classic lost-object interleaving, made deterministic with the marker's trace hook:
//   R (a root) -> U -> W, and W is referenced from nowhere else.
//   The marker traces R (R is black, U grey, W white) and stops.
//   The mutator moves the only reference to W into R (already scanned) and deletes it
//   from U (not yet scanned). The marker resumes.
// Without the deletion barrier W is never marked and the sweep frees a reachable object.
TEST(ConcurrentMarkingTest, ReferenceMovedIntoAScannedObjectSurvives) {
  Heap heap(concurrent_options());
  MutatorScope attach(heap);
  Ref<Node> root = make<Node>();
  HiddenPtr w_hidden;
  in_own_frame([&] {
    Ref<Node> u = make<Node>();
    Ref<Node> w = make<Node>();
    w->value = 4242;
    u.set(&Node::left, w);
    root.set(&Node::left, u);
    w_hidden = HiddenPtr(w.object());
  });
  clobber_stack();

  internal::Collector& collector = heap.impl().collector;
  MarkerPause pause(heap, root.object());
  collector.start_concurrent_cycle_for_testing(internal::current_thread());
  ASSERT_TRUE(collector.marking_concurrently());
  pause.wait_until_held();
  in_own_frame([&] {  // the mutation, while the marker waits after tracing R
    Ref<Node> u = root->left.get();
    root.set(&Node::right, u->left.get());  // into the black object: no barrier needed
    u.set(&Node::left, Ref<Node>());        // deleted from the grey one: barrier shades W
  });
  pause.release();
  clobber_stack();
  heap.collect();  // waits for the concurrent cycle, then collects again
  EXPECT_TRUE(is_allocated(heap, w_hidden));
  EXPECT_EQ(root->right.get()->value, 4242);
  const GcStats s = heap.stats();
  ASSERT_GE(s.recent.size(), 2u);
  EXPECT_TRUE(s.recent[s.recent.size() - 2].concurrent);
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

// As above, but the mutation is made by a thread that then detaches: the object its
// barrier shaded (W, whose child X is reachable only through W) sits in that thread's
// SATB buffer, which must reach the marker although the thread is gone.
TEST(ConcurrentMarkingTest, ShadedObjectsOfADetachingThreadAreStillTraced) {
  Heap heap(concurrent_options());
  MutatorScope attach(heap);
  Ref<Node> root = make<Node>();
  HiddenPtr x_hidden;
  in_own_frame([&] {
    Ref<Node> u = make<Node>();
    Ref<Node> w = make<Node>();
    Ref<Node> x = make<Node>();
    x->value = 7;
    w.set(&Node::left, x);
    u.set(&Node::left, w);
    root.set(&Node::left, u);
    x_hidden = HiddenPtr(x.object());
  });
  clobber_stack();
  MarkerPause pause(heap, root.object());
  heap.impl().collector.start_concurrent_cycle_for_testing(internal::current_thread());
  pause.wait_until_held();
  run_native([&] {
    std::thread other([&] {
      MutatorScope attach_other(heap);
      Ref<Node> u = root->left.get();
      root.set(&Node::right, u->left.get());
      u.set(&Node::left, Ref<Node>());  // shades W into this thread's buffer
    });                                 // ...and the thread detaches
    other.join();
  });
  pause.release();
  clobber_stack();
  heap.collect();
  EXPECT_TRUE(is_allocated(heap, x_hidden));
  EXPECT_EQ(root->right.get()->left.get()->value, 7);
  EXPECT_TRUE(heap.verify().ok);
}

TEST(ConcurrentMarkingTest, ObjectsAllocatedDuringMarkingSurviveTheCycle) {
  Heap heap(concurrent_options());
  MutatorScope attach(heap);
  std::mutex mu;
  std::condition_variable cv;
  bool marker_waiting = false, release = false;
  internal::Collector& collector = heap.impl().collector;
  collector.set_concurrent_trace_hook([&](Object*) {
    std::unique_lock<std::mutex> lock(mu);
    if (release) return;
    marker_waiting = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  Ref<Node> anchor = make_list(10);
  collector.start_concurrent_cycle_for_testing(internal::current_thread());
  run_native([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return marker_waiting; });
  });
  // Allocated after the snapshot and linked only into a (black or grey) anchor: black.
  Ref<Node> fresh = make_list(5000);
  Ref<ByteArray> big = ByteArray::create(100000);
  anchor.set(&Node::right, fresh);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  heap.collect();
  collector.set_concurrent_trace_hook(nullptr);
  EXPECT_EQ(list_length_checked(anchor->right.get()), 5000u);
  EXPECT_EQ(big->length(), 100000u);
  EXPECT_TRUE(heap.verify().ok);
}

// Several threads keep moving references between objects - from unscanned places into
// scanned ones and dropping the originals - while paced concurrent cycles run; every
// cycle ends with the verifier, and each thread checks its structures' contents.
TEST(ConcurrentMarkingTest, MutatorsRearrangingGraphsDuringManyCycles) {
  Heap heap(concurrent_options());
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      std::mt19937 rng(static_cast<unsigned>(t) + 11);
      constexpr size_t kSlots = 32;
      Ref<RefArray> slots = RefArray::create(kSlots);
      for (size_t i = 0; i < kSlots; ++i) slots->set(i, make_list(20).value());
      for (int round = 0; round < 3000; ++round) {
        const size_t a = rng() % kSlots, b = rng() % kSlots;
        Ref<Node> from = Ref<Node>::from_value(slots->get(a));
        Ref<Node> to = Ref<Node>::from_value(slots->get(b));
        if (from && to && a != b) {
          // Move the tail of list a (reachable only through a) into the head of list b's
          // spare field, then cut it off list a: the reference now lives only in b.
          Ref<Node> tail = from->left.get();
          if (tail) {
            Ref<Node> spare = to->right.get();
            to.set(&Node::right, tail);
            from.set(&Node::left, spare);  // give a the old spare (or null)
          }
        }
        if (rng() % 8 == 0) slots->set(rng() % kSlots, make_list(20).value());  // churn
        for (int i = 0; i < 200; ++i) make<Node>();                               // garbage
      }
      // Every node still reachable must still be a Node with a sane value.
      for (size_t i = 0; i < kSlots; ++i) {
        int budget = 100000;
        std::vector<Ref<Node>> work{Ref<Node>::from_value(slots->get(i))};
        while (!work.empty() && budget-- > 0) {
          Ref<Node> n = work.back();
          work.pop_back();
          if (!n) continue;
          if (n.object()->class_id() != class_id_of<Node>() || n->value < 0 || n->value >= 20) failures++;
          work.push_back(n->left.get());
          work.push_back(n->right.get());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  MutatorScope attach(heap);
  EXPECT_NO_THROW(heap.collect());  // rethrows a verification failure from any cycle
  EXPECT_EQ(failures.load(), 0);
  const GcStats s = heap.stats();
  size_t concurrent = 0;
  for (const auto& c : s.recent) concurrent += c.concurrent;
  EXPECT_GE(concurrent, 3u) << "expected paced concurrent cycles";
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

// A marker that cannot keep up (slowed by the trace hook) must not let allocation run
// away: allocating threads assist it, and past a bound they wait for the cycle to end.
TEST(ConcurrentPacingTest, SlowMarkingMakesAllocatorsAssistAndThrottle) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  heap.impl().collector.set_concurrent_trace_hook(
      [](Object*) { std::this_thread::sleep_for(std::chrono::microseconds(10)); });
  Ref<RefArray> live = RefArray::create(256);
  for (size_t i = 0; i < 256; ++i) live->set(i, make_list(64).value());  // ~16k live nodes
  for (int i = 0; i < 300000; ++i) {
    make<Node>();  // 10 MB of garbage in all
    if (i % 1000 == 0) live->set(static_cast<size_t>(i / 1000) % 256, make_list(64).value());
  }
  heap.impl().collector.set_concurrent_trace_hook(nullptr);
  heap.collect();
  size_t assisted = 0, throttled = 0, concurrent = 0;
  for (const CycleRecord& c : heap.stats().recent) {
    concurrent += c.concurrent;
    assisted += c.assist_objects;
    throttled += c.throttle_waits;
  }
  EXPECT_GE(concurrent, 1u);
  EXPECT_GT(assisted + throttled, 0u) << "assisted " << assisted << ", throttled " << throttled;
  RecordProperty("assisted", static_cast<int>(assisted));
  RecordProperty("throttled", static_cast<int>(throttled));
  // Bounded growth: never far beyond kThrottleFactor x the trigger above the live set.
  EXPECT_LT(heap.stats().footprint_bytes, size_t{48} << 20);
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

// After a concurrent cycle the pages are swept outside the pause: by allocating threads
// that need pages and by the background thread. Freed memory is reused (the footprint
// does not grow), the statistics receive the freed bytes, and the heap verifies.
TEST(LazySweepTest, PagesAreSweptAfterThePauseAndReused) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.poison_freed_memory = true;
  o.min_gc_trigger = size_t{1} << 30;  // only the cycles this test starts
  Heap heap(o);
  MutatorScope attach(heap);
  Ref<Node> keep = make_list(2000);
  in_own_frame([&] {
    for (int i = 0; i < 600000; ++i) make<Node>();  // ~19 MB of garbage
  });
  clobber_stack();
  const size_t footprint = heap.stats().footprint_bytes;
  const uint64_t freed_before = heap.stats().bytes_freed;
  internal::Collector& collector = heap.impl().collector;
  collector.start_concurrent_cycle_for_testing(internal::current_thread());
  collector.wait_for_concurrent_cycle_for_testing(internal::current_thread());
  const CycleRecord last = heap.stats().recent.back();
  EXPECT_TRUE(last.concurrent);
  // Allocation right after the cycle sweeps lazily and reuses the garbage's pages.
  in_own_frame([&] {
    for (int i = 0; i < 300000; ++i) make<Node>();
  });
  EXPECT_LE(heap.stats().footprint_bytes, footprint + internal::kPageSize * 2);
  VerifyReport r = heap.verify();  // finishes any sweep left, then checks everything
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_GT(heap.stats().bytes_freed - freed_before, size_t{15} << 20);
  EXPECT_EQ(list_length_checked(keep), 2000u);
}

}  // namespace
}  // namespace shoal::test
