// The heap limit: collections before failure, typed OutOfMemory, a usable heap after.
#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class HeapLimitTest : public HeapTest {
  HeapOptions options() override {
    HeapOptions o;
    o.heap_limit = size_t{8} << 20;
    o.min_gc_trigger = size_t{1} << 20;
    return o;
  }
};

TEST_F(HeapLimitTest, GarbageNeverExhaustsTheHeap) {
  // 200 MB of garbage through an 8 MB heap: collections keep it going.
  for (int i = 0; i < 200 * 1024; ++i) ByteArray::create(1000);
  for (int i = 0; i < 200; ++i) ByteArray::create(1 << 20);
  const GcStats s = heap().stats();
  EXPECT_GT(s.collections, 20u);
  EXPECT_LE(s.footprint_bytes, s.heap_limit);
  expect_heap_ok();
}

TEST_F(HeapLimitTest, RetainingTooMuchThrowsOutOfMemoryAndTheHeapSurvives) {
  // The data hangs off 64 persistent chunks, so a stray conservative root can pin at
  // most one chunk once the data is dropped.
  constexpr size_t kChunks = 64;
  Persistent<RefArray> chunks(heap(), RefArray::create(kChunks));
  size_t built = 0;
  in_own_frame([&] {
    bool threw = false;
    try {
      for (size_t i = 0;; ++i) {
        const size_t c = i % kChunks;
        Ref<Node> n = make<Node>();
        n->value = static_cast<int64_t>(i / kChunks);
        n.set(&Node::left, Ref<Node>::from_value(chunks->get(c)));
        chunks->set(c, n.value());
        ++built;
      }
    } catch (const OutOfMemory& e) {
      threw = true;
      EXPECT_GT(e.limit(), 0u);
      EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos);
    }
    EXPECT_TRUE(threw);
  });
  EXPECT_GT(built, 100000u);
  EXPECT_LE(heap().stats().footprint_bytes, size_t{8} << 20);
  // Everything built before the failure is intact.
  in_own_frame([&] {
    size_t total = 0;
    for (size_t c = 0; c < kChunks; ++c) total += list_length_checked(Ref<Node>::from_value(chunks->get(c)));
    EXPECT_EQ(total, built);
  });
  expect_heap_ok();
  // Dropping the data makes the heap usable again: at least half of it can be refilled.
  for (size_t c = 0; c < kChunks; ++c) chunks->set(c, Value::null());
  clobber_stack();
  heap().collect();
  EXPECT_NO_THROW(in_own_frame([&] {
    Ref<Node> keep;
    for (size_t i = 0; i < built / 2; ++i) {
      Ref<Node> n = make<Node>();
      n.set(&Node::left, keep);
      keep = n;
    }
  }));
  expect_heap_ok();
}

TEST_F(HeapLimitTest, LargeObjectOverTheLimitThrows) {
  EXPECT_THROW(ByteArray::create(size_t{16} << 20), OutOfMemory);
  Ref<ByteArray> ok = ByteArray::create(size_t{2} << 20);
  EXPECT_TRUE(ok);
  expect_heap_ok();
}

TEST_F(HeapLimitTest, FreePagesAreDecommittedForLargeObjects) {
  // Fill most of the limit with small objects, drop them, then ask for a large object
  // that only fits if the now-free pages are given back.
  in_own_frame([&] {
    Persistent<Node> list(heap(), make_list(150000));  // ~4.8 MB of nodes
    EXPECT_GT(heap().stats().footprint_bytes, size_t{4} << 20);
  });
  clobber_stack();
  heap().collect();
  EXPECT_NO_THROW(ByteArray::create(size_t{6} << 20));
  expect_heap_ok();
}

// A page serves one size class until it is empty. A five-page heap whose pages each
// hold one live object of a different class has no page for a sixth class, and no room
// for another - but free cells in the others: the object goes into a cell of the
// smallest larger class with one (heap/allocator.cc, allocate_in_larger_class), not
// OutOfMemory. The heap stays consistent.
TEST(HeapLimitSizeClasses, AClassWithNoPageUsesAFreeCellOfALargerClass) {
  HeapOptions o;
  o.heap_limit = 5 * internal::kPageSize;
  o.min_gc_trigger = size_t{1} << 30;  // no paced cycles
  Heap heap(o);
  MutatorScope attach(heap);
  constexpr size_t kSizes[] = {100, 400, 1000, 3000};  // four classes, a page each
  Persistent<RefArray> keep(heap, RefArray::create(4));  // and a fifth
  Persistent<RefArray> made(heap, RefArray::create(51));  // (the 400-byte array's class)
  for (size_t i = 0; i < 4; ++i) keep->set(i, ByteArray::create(kSizes[i]).value());
  ASSERT_EQ(heap.stats().footprint_bytes, 5 * internal::kPageSize);
  auto cell_of = [&](const void* object) {
    return static_cast<size_t>(heap.impl().pages.page_of(reinterpret_cast<uintptr_t>(object)).cell_size);
  };
  const size_t cell_1000 = cell_of(Ref<ByteArray>::from_value(keep->get(2)).object());
  const size_t cell_3000 = cell_of(Ref<ByteArray>::from_value(keep->get(3)).object());
  ASSERT_LT(cell_1000, 1500u);
  in_own_frame([&] {
    Ref<ByteArray> b = ByteArray::create(1500);  // none of the five classes
    EXPECT_EQ(cell_of(b.object()), cell_3000) << "the smallest larger class with a free cell";
    for (size_t i = 0; i < b->length(); ++i) b->data()[i] = static_cast<uint8_t>(i);
    made->set(0, b.value());
  });
  // Until a refill of it succeeds, the class is known to have no page: its next
  // allocations go to the larger class without collecting first (a full collection
  // each made a test's 3 MiB heap run 43,000 of them) - also with two such classes in
  // turn (1500 and 1200 bytes), where a mark tied to the newest full collection made
  // each class's collection stale for the other.
  const uint64_t collections = heap.stats().collections;
  EXPECT_EQ(collections, 1u);
  auto size_of = [](size_t i) -> size_t { return i % 2 == 0 ? 1500 : 1200; };
  for (size_t i = 1; i < 51; ++i) made->set(i, ByteArray::create(size_of(i)).value());
  EXPECT_LE(heap.stats().collections, collections + 1) << "the 1200-byte class's first allocation may collect";
  EXPECT_TRUE(heap.verify().ok);
  // Garbage in the missing class goes on finding cells (the larger classes', after
  // collections).
  for (int i = 0; i < 10000; ++i) ByteArray::create(1500);
  EXPECT_TRUE(heap.verify().ok);
  for (size_t i = 0; i < 51; ++i) EXPECT_EQ(Ref<ByteArray>::from_value(made->get(i))->length(), size_of(i));
  const Ref<ByteArray> first = Ref<ByteArray>::from_value(made->get(0));
  for (size_t i = 0; i < first->length(); ++i) ASSERT_EQ(first->data()[i], static_cast<uint8_t>(i));
}

// No page and no larger class with a free cell, but less than a page of room left in
// the footprint: the cell goes there as a large object (jemalloc) - the last resort
// before OutOfMemory (a random-size churn threw for the largest class in use with
// 232 KiB of room).
TEST(HeapLimitSizeClasses, LessThanAPageOfRoomStillHoldsACellAsALargeObject) {
  HeapOptions o;
  o.heap_limit = 4 * internal::kPageSize + (size_t{64} << 10);
  o.min_gc_trigger = size_t{1} << 30;  // no paced cycles
  Heap heap(o);
  MutatorScope attach(heap);
  constexpr size_t kSizes[] = {100, 400, 1000};  // three classes, a page each
  Persistent<RefArray> keep(heap, RefArray::create(4));  // and a fourth
  for (size_t i = 0; i < 3; ++i) keep->set(i, ByteArray::create(kSizes[i]).value());
  ASSERT_EQ(heap.stats().footprint_bytes, 4 * internal::kPageSize);
  in_own_frame([&] {
    Ref<ByteArray> b = ByteArray::create(3000);  // the largest class in use
    EXPECT_FALSE(heap.impl().pages.contains(b.object())) << "a large object";
    EXPECT_EQ(heap.stats().large_objects, 1u);
    for (size_t i = 0; i < b->length(); ++i) b->data()[i] = static_cast<uint8_t>(i);
    keep->set(3, b.value());
  });
  // The next ones too, without a collection each (the class is known to have no page;
  // a full collection per allocation made a test's 3 MiB heap run for minutes).
  const uint64_t collections = heap.stats().collections;
  in_own_frame([&] {
    Persistent<RefArray> more(heap, RefArray::create(4));  // (the keep array's class)
    for (size_t i = 0; i < 4; ++i) more->set(i, ByteArray::create(3000).value());
    EXPECT_EQ(heap.stats().collections, collections);
    EXPECT_EQ(heap.stats().large_objects, 5u);
  });
  EXPECT_TRUE(heap.verify().ok);
  heap.collect();
  in_own_frame([&] {
    const Ref<ByteArray> b = Ref<ByteArray>::from_value(keep->get(3));
    ASSERT_EQ(b->length(), 3000u);
    for (size_t i = 0; i < b->length(); ++i) ASSERT_EQ(b->data()[i], static_cast<uint8_t>(i));
    keep->set(3, Value::null());
  });
  clobber_stack();
  heap.collect();
  EXPECT_EQ(heap.stats().large_objects, 0u) << "freed like any large object";
  EXPECT_TRUE(heap.verify().ok);
}

// Random sizes at a sixth of a 12 MiB heap: the live cells spread over some 25 classes
// and 48 pages, and without the fallback above the thread got OutOfMemory after a few
// dozen collections (every run of 5); with it, none.
TEST(HeapLimitSizeClasses, RandomSizesInASmallHeapNeverThrowSpuriously) {
  HeapOptions o;
  o.heap_limit = size_t{12} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  constexpr size_t kLive = 2600;  // ~2 MiB of 24-1524-byte arrays
  Persistent<RefArray> keep(heap, RefArray::create(kLive));
  uint64_t x = 88172645463325252ull;
  auto churn = [&] {
    for (int i = 0; i < 1000000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      Ref<ByteArray> b = ByteArray::create(24 + (x >> 20) % 1500);
      if (x % 4 == 0) keep->set((x >> 8) % kLive, b.value());
    }
  };
  EXPECT_NO_THROW(churn());
  EXPECT_TRUE(heap.verify().ok);
}

// Threads that hit the limit together share full collections, and none of them gets an
// OutOfMemory while the heap is mostly garbage - not even when another thread takes the
// room a collection made first (heap/allocator.cc, retry_at_limit). Pacing is off (the
// trigger is above the limit), so every collection is a heap-limit one. Each thread
// keeps a small live list and churns garbage; one thread churning the same total is the
// baseline.
struct ChurnResult {
  uint64_t limit_collections = 0;
  int out_of_memory = 0;
};

ChurnResult churn_at_the_limit(int threads, size_t nodes_per_thread) {
  HeapOptions o;
  o.heap_limit = size_t{4} << 20;
  o.min_gc_trigger = size_t{1} << 30;
  Heap heap(o);
  std::atomic<int> out_of_memory{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      MutatorScope attach(heap);
      Persistent<Node> live(heap, make_list(1000));  // ~32 KB each
      ready.fetch_add(1);
      run_native([&] {
        while (ready.load() < threads) std::this_thread::yield();
      });
      try {
        for (size_t i = 0; i < nodes_per_thread; ++i) {
          Ref<Node> garbage = make<Node>();
          garbage->value = static_cast<int64_t>(i);
          if (i % 64 == 0) ByteArray::create(2000);
        }
      } catch (const OutOfMemory&) {
        out_of_memory.fetch_add(1);
      }
      EXPECT_EQ(list_length_checked(live.get()), 1000u);
    });
  }
  for (std::thread& w : workers) w.join();
  ChurnResult r;
  r.out_of_memory = out_of_memory.load();
  for (const CycleRecord& c : heap.impl().collector.cycle_log())
    if (std::string(c.cause) == "heap-limit") ++r.limit_collections;
  EXPECT_EQ(heap.stats().collections, r.limit_collections);  // pacing never collected
  return r;
}

// A thread at the limit whose collection freed a few scattered cells, which another
// thread then takes into its TLAB before the first retries: the first must go round
// once more (a second collection retires the other TLAB), not throw. Allocation is
// counted per thread in batches; near the limit a taken run must count at once, or the
// first thread sees nothing handed out since its collection and gives up.
TEST(HeapLimitThreads, AThreadWhoseFreedRoomAnotherTookGoesRoundOnceMore) {
  HeapOptions o;
  o.heap_limit = size_t{512} << 10;    // two pages
  o.min_gc_trigger = size_t{1} << 30;  // no paced cycles: only heap-limit collections
  std::atomic<int> phase{0};           // 1: the collection ran, B may take the room; 2: it did
  o.on_finalizers_pending = [&phase] {
    int expected = 0;
    if (phase.compare_exchange_strong(expected, 1))
      while (phase.load() != 2) std::this_thread::yield();
  };
  Heap heap(o);
  std::atomic<bool> b_attached{false};
  std::thread b([&] {
    MutatorScope attach(heap);
    b_attached = true;
    run_native([&] {
      while (phase.load() != 1) std::this_thread::yield();
    });
    (void)make<Node>();  // takes the page with the freed cells as its TLAB's page
    phase = 2;
    run_native([&] {
      while (phase.load() != 3) std::this_thread::yield();
    });
  });
  while (!b_attached) std::this_thread::yield();
  bool out_of_memory = false;
  {
    MutatorScope attach(heap);
    Ref<Node> head;
    for (int i = 0; i < 10000; ++i) {  // a live chain (within the limit)
      Ref<Node> n = make<Node>();
      n.set(&Node::left, head);
      head = n;
    }
    try {
      // More of it, with a dead finalizable object now and then: the heap-limit
      // collection queues their finalizers, which lets B in (above).
      for (int i = 0; i < 20000 && phase.load() < 2; ++i) {
        Ref<Node> n = make<Node>();
        n.set(&Node::left, head);
        head = n;
        if (i % 4 == 0) in_own_frame([&] { heap.add_finalizer(make<Node>().value(), [] {}); });
      }
      for (int i = 0; i < 10; ++i) (void)make<Node>();
    } catch (const OutOfMemory&) {
      out_of_memory = true;
    }
    EXPECT_EQ(phase.load(), 2) << "the heap never reached its limit";
    phase = 3;
  }
  b.join();
  EXPECT_FALSE(out_of_memory) << "another thread took the freed room; a second round would have served this one";
}

TEST(HeapLimitThreads, ThreadsChurningAtTheLimitNeverThrowSpuriously) {
  constexpr size_t kNodes = 120000;  // per thread: ~3.8 MB of nodes and ~3.7 MB of arrays
  const ChurnResult one = churn_at_the_limit(1, 4 * kNodes);
  const ChurnResult four = churn_at_the_limit(4, kNodes);
  EXPECT_EQ(one.out_of_memory, 0);
  EXPECT_EQ(four.out_of_memory, 0);
  EXPECT_GT(one.limit_collections, 2u);
  // The same garbage in total: without coalescing, every thread that finds the heap full
  // runs a collection of its own (up to 4x as many).
  EXPECT_LE(four.limit_collections, 2 * one.limit_collections + 2)
      << "one thread: " << one.limit_collections << ", four threads: " << four.limit_collections;
}

TEST(HeapLimitThreads, ThreadsThatFailTogetherShareOneCollection) {
  // Each round: the main thread fills the footprint up to the limit with objects it
  // drops once a concurrent cycle has started (they are in its snapshot: it keeps them)
  // and holds that cycle's marker; four threads each allocate a large object, fail,
  // and wait for the cycle (a heap-limit collection waits for it). Once all four wait,
  // the marker goes on; the cycle's end serves them (each retries) but frees nothing,
  // and the first waiter's full collection makes room for all four.
  HeapOptions o;
  o.heap_limit = size_t{4} << 20;
  o.min_gc_trigger = size_t{1} << 30;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make<Node>());
  constexpr int kThreads = 4, kRounds = 4;
  constexpr size_t kLarge = size_t{64} << 10;
  const size_t large_bytes = internal::LargeObjectSpace::allocation_size(kLarge, o.generational);
  std::atomic<int> round{0}, arrived{0}, done{0}, out_of_memory{0};
  std::vector<internal::MutatorThread*> threads(kThreads, nullptr);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      MutatorScope attach_worker(heap);
      threads[t] = internal::current_thread();
      std::vector<Persistent<ByteArray>> kept;
      for (int r = 1; r <= kRounds; ++r) {
        run_native([&] {
          while (round.load() < r) std::this_thread::yield();
        });
        arrived.fetch_add(1);  // from here on, native only inside the heap-limit collection
        try {
          // (Kept: garbage from the round before would be room the cycle frees.)
          kept.emplace_back(heap, ByteArray::create(kLarge));
        } catch (const OutOfMemory&) {
          out_of_memory.fetch_add(1);
        }
        done.fetch_add(1);
      }
    });
  }
  auto all_waiting = [&](int r) {
    if (arrived.load() < r * kThreads) return false;
    for (internal::MutatorThread* t : threads)
      if (t->state.load() != internal::ThreadState::kNative) return false;
    return true;
  };
  for (int r = 1; r <= kRounds; ++r) {
    std::optional<Persistent<RefArray>> filler;
    in_own_frame([&] {  // (no pointer to the filler left in this frame: it must die)
      filler.emplace(heap, RefArray::create(o.heap_limit / kLarge));
      for (size_t i = 0; heap.impl().footprint() + large_bytes <= o.heap_limit; ++i)
        (*filler)->set(i, ByteArray::create(kLarge).value());
    });
    clobber_stack();
    MarkerPause pause(heap, anchor.get().object());
    heap.start_collection();
    pause.wait_until_held();
    filler.reset();
    round.store(r);
    run_native([&] {
      while (!all_waiting(r)) std::this_thread::yield();
    });
    pause.release();
    run_native([&] {
      while (done.load() < r * kThreads) std::this_thread::yield();
    });
  }
  run_native([&] {
    for (std::thread& w : workers) w.join();
  });
  uint64_t limit_collections = 0;
  for (const CycleRecord& c : heap.impl().collector.cycle_log())
    if (std::string(c.cause) == "heap-limit") ++limit_collections;
  EXPECT_EQ(out_of_memory.load(), 0);
  EXPECT_EQ(limit_collections, static_cast<uint64_t>(kRounds)) << "four threads failed together in each round";
}

TEST(HeapLimitOptions, LimitSmallerThanAPageIsRejected) {
  HeapOptions o;
  o.heap_limit = 4096;
  EXPECT_THROW(Heap heap(o), InvalidArgument);
  o.heap_limit = 0;
  o.gc_growth = 0;
  EXPECT_THROW(Heap heap(o), InvalidArgument);
}

// Pacing factors and counts a heap cannot use are refused up front: a NaN full-cycle
// growth meant no full cycle ever (every comparison false), and 100,000 marker threads
// ended the process from the marker thread when the system refused one.
TEST(HeapLimitOptions, UnusableFactorsAndCountsAreRejected) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double g : {inf, nan, -1.0}) {
    HeapOptions o;
    o.gc_growth = g;
    EXPECT_THROW(Heap heap(o), InvalidArgument) << g;
    o = HeapOptions();
    o.full_gc_growth = g;
    EXPECT_THROW(Heap heap(o), InvalidArgument) << g;
    o = HeapOptions();
    o.idle_gc_fraction = g;
    EXPECT_THROW(Heap heap(o), InvalidArgument) << g;
  }
  HeapOptions o;
  o.marker_threads = kMaxMarkerThreads + 1;
  EXPECT_THROW(Heap heap(o), InvalidArgument);
}

// A growth factor whose goal overflows a size saturates: the heap collects less often,
// never more (the cast of 1e30 x live gave 0 - a goal of min_gc_trigger); the heap limit
// then cuts it.
TEST(HeapLimitOptions, AHugeGrowthFactorSaturatesTheGoal) {
  for (bool generational : {false, true}) {
    HeapOptions o;
    o.gc_growth = 1e30;
    o.generational = generational;
    Heap heap(o);
    MutatorScope attach(heap);
    Persistent<Node> live(heap, make_list(1000));
    heap.start_collection(CollectionScope::kFull);
    heap.wait_for_collection();
    // (Saturated, and then cut to the room under the heap limit: the live list is a
    // few KiB.)
    EXPECT_GT(heap.impl().trigger_bytes(), heap.impl().limit_pacing_target() / 2) << generational;
    EXPECT_LE(heap.impl().trigger_bytes(), heap.impl().limit) << generational;
  }
}

// An allocation larger than the heap limit is OutOfMemory before any size arithmetic:
// near SIZE_MAX the large object's size wrapped to a few bytes and the allocation
// "succeeded" with an object of SIZE_MAX bytes in a 64-byte block.
TEST(HeapLimitOptions, AnAllocationNearSizeMaxIsOutOfMemory) {
  const ClassId id = define_every_other_slot_class("vm.HugeFrame");
  HeapOptions o;
  o.heap_limit = size_t{64} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  for (size_t bytes : {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1, size_t{65} << 20}) {
    EXPECT_THROW(allocate_custom(id, bytes), OutOfMemory) << bytes;
    EXPECT_THROW(allocate_raw(bytes, header::make(id, 0)), OutOfMemory) << bytes;
  }
  EXPECT_LT(heap.stats().footprint_bytes, size_t{1} << 20);
  EXPECT_NE(allocate_custom(id, size_t{1} << 20), nullptr);
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test
