// Idle full cycles (gc/idle_cycle.cc, HeapOptions::idle_full_cycle_after): a generational
// heap that goes quiet holding old garbage gets one full cycle from its marker thread,
// and the scavenger then returns the pages. It happens once per quiet stretch, never on
// a busy heap and never with the option off. The marker thread starts the cycle whatever
// the other threads are doing: in run_native, attached and polling, or detached.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using std::chrono::milliseconds;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kCell = 256;  // RefArray::create(30): a 256-byte cell
constexpr size_t kPage = size_t{256} << 10;

// Small-object pages holding objects, live or dead (a young cycle's live_bytes counts
// only what it traced, not the old generation).
size_t in_use_bytes(const Heap& heap) { return heap.stats().pages_in_use * kPage; }

HeapOptions idle_options(milliseconds after, bool concurrent = true) {
  HeapOptions o;
  o.concurrent_marking = concurrent;
  o.generational = concurrent;
  o.min_gc_trigger = 4 * kMiB;
  // No paced full cycle while the burst is built: only an idle cycle (or collect())
  // can free it once it is dropped.
  o.full_gc_growth = 1000;
  o.idle_full_cycle_after = after;
  return o;
}

size_t idle_cycles(const Heap& heap) {
  size_t n = 0;
  for (const CycleRecord& r : heap.stats().recent)
    if (std::strcmp(r.cause, "idle-background") == 0) ++n;
  return n;
}

// A full cycle first (a baseline, and the marker thread started), then 48 MiB built
// and promoted by young cycles on a helper thread, and dropped there: old garbage.
void make_old_garbage(Heap& heap) {
  if (heap.options().concurrent_marking) {
    heap.start_collection(CollectionScope::kFull);
    heap.wait_for_collection();
  } else {
    heap.collect();
  }
  on_helper_thread(heap, [&] {
    Persistent<RefArray> burst(heap, RefArray::create(48 * kMiB / kCell));
    for (size_t i = 0; i < burst->length(); ++i) burst->set(i, RefArray::create(30).value());
    if (heap.options().concurrent_marking) {
      heap.start_collection(CollectionScope::kYoung);
      heap.wait_for_collection();
    }
  });
}

void sleep_native(milliseconds d) {
  run_native([&] { std::this_thread::sleep_for(d); });
}

// The control: with the option off, nothing frees the dropped burst - the heap keeps it
// however long it idles (so the next test's result is the idle cycle's doing).
TEST(IdleCycleTest, WithoutItAQuietGenerationalHeapKeepsItsOldGarbage) {
  Heap heap(idle_options(milliseconds{0}));
  MutatorScope attach(heap);
  make_old_garbage(heap);
  sleep_native(milliseconds{1500});
  heap.start_collection(CollectionScope::kYoung);  // young: the burst stays (old, marked)
  heap.wait_for_collection();
  const GcStats s = heap.stats();
  EXPECT_EQ(idle_cycles(heap), 0u);
  EXPECT_GT(s.pages_in_use * kPage, 40 * kMiB);
  EXPECT_GT(s.footprint_bytes, 40 * kMiB);
}

// A delay of centuries never comes: about 584 years overflowed the count of nanoseconds
// it was compared in and wrapped to half a millisecond.
TEST(IdleCycleTest, ADelayOfCenturiesNeverComes) {
  Heap heap(idle_options(milliseconds{18'446'744'073'710}));
  MutatorScope attach(heap);
  make_old_garbage(heap);
  sleep_native(milliseconds{3500});  // (the marker thread wakes once a second: three quiet wakes)
  EXPECT_EQ(idle_cycles(heap), 0u);
}

TEST(IdleCycleTest, AQuietHeapGetsOneFullCycleAndShrinks) {
  Heap heap(idle_options(milliseconds{100}));
  MutatorScope attach(heap);
  make_old_garbage(heap);
  ASSERT_GT(heap.stats().footprint_bytes, 48 * kMiB);
  EXPECT_TRUE(eventually([&] { return idle_cycles(heap) == 1; }));
  EXPECT_TRUE(eventually([&] { return in_use_bytes(heap) < 8 * kMiB; }))
      << in_use_bytes(heap) / kMiB << " MiB of pages in use after the idle cycle";
  // The scavenger then returns the pages, once the burst's peak leaves its window.
  EXPECT_TRUE(eventually([&] { return heap.stats().footprint_bytes < 24 * kMiB; }))
      << "footprint " << heap.stats().footprint_bytes / kMiB << " MiB";
  for (const CycleRecord& r : heap.stats().recent)
    if (std::strcmp(r.cause, "idle-background") == 0) {
      EXPECT_TRUE(r.concurrent);
      EXPECT_FALSE(r.young);
    }
  // Once per quiet stretch: ten more intervals, no second one.
  sleep_native(milliseconds{1000});
  EXPECT_EQ(idle_cycles(heap), 1u);
  EXPECT_TRUE(heap.verify().ok);
}

// The idle cycle's pauses stop every attached thread, whatever it is doing: one polls
// safepoint() without allocating, one sleeps in run_native; the main thread detaches.
// Objects they hold survive it.
TEST(IdleCycleTest, ItStopsThreadsInEveryState) {
  Heap heap(idle_options(milliseconds{100}));
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::unique_ptr<Persistent<RefArray>> kept;
  {
    MutatorScope attach(heap);
    make_old_garbage(heap);
    kept = std::make_unique<Persistent<RefArray>>(heap, RefArray::create(1000));
    for (size_t i = 0; i < 1000; ++i) (*kept)->set(i, String::create("kept").value());
  }
  // (Each thread first wipes the stack it runs on: glibc reuses a finished thread's
  // stack for a new one, and a stale copy of the burst's address from the helper that
  // built it, left in a frame the new thread never writes, was a conservative root -
  // the idle cycle then kept the burst, on a loaded machine 2 runs in 20.)
  std::thread polling([&] {
    clobber_stack();
    MutatorScope a(heap);
    Ref<RefArray> mine = RefArray::create(10);
    mine->set(0, String::create("mine").value());
    ready.fetch_add(1);
    while (!stop.load()) safepoint();
    EXPECT_EQ(Ref<String>::from_value(mine->get(0))->view(), "mine");
  });
  std::thread native([&] {
    clobber_stack();
    MutatorScope a(heap);
    ready.fetch_add(1);
    run_native([&] {
      while (!stop.load()) std::this_thread::sleep_for(milliseconds{5});
    });
  });
  while (ready.load() < 2) std::this_thread::yield();
  bool seen = false;
  for (int i = 0; i < 2000 && !seen; ++i) {
    seen = idle_cycles(heap) == 1;
    std::this_thread::sleep_for(milliseconds{10});
  }
  stop.store(true);
  polling.join();
  native.join();
  EXPECT_TRUE(seen);
  MutatorScope attach(heap);
  EXPECT_TRUE(eventually([&] { return in_use_bytes(heap) < 8 * kMiB; }));
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(Ref<String>::from_value((*kept)->get(i))->view(), "kept");
  kept.reset();
  EXPECT_TRUE(heap.verify().ok);
}

// A heap that keeps allocating is never idle, even slowly: ~10 MiB/s, a paced cycle
// every few hundred ms - longer than the quiet time asked for, so the marker thread's
// idle wakes do come, but each sees allocation since the one before at a rate far
// above the goal per minute.
TEST(IdleCycleTest, AHeapThatKeepsAllocatingGetsNone) {
  Heap heap(idle_options(milliseconds{200}));
  MutatorScope attach(heap);
  Persistent<RefArray> live(heap, RefArray::create(4096));
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; std::chrono::steady_clock::now() < start + milliseconds{2500}; ++i) {
    for (int j = 0; j < 400; ++j) live->set((i * 400 + j) % 4096, RefArray::create(30).value());  // 100 KiB
    sleep_native(milliseconds{10});
  }
  EXPECT_GT(heap.stats().collections, 2u);
  EXPECT_EQ(idle_cycles(heap), 0u);
}

// Nor is a heap whose paced cycles are merely far apart: a 16 MiB goal, 2 MiB/s (a
// paced cycle every ~8 s). Quiet means pacing would not collect for over a minute; a
// rule of "an eighth of the goal per wake" took this heap for quiet and gave it an extra
// full cycle every few seconds.
TEST(IdleCycleTest, AHeapThatAllocatesSlowlyIsNotQuiet) {
  HeapOptions o = idle_options(milliseconds{200});
  o.min_gc_trigger = 16 * kMiB;
  Heap heap(o);
  MutatorScope attach(heap);
  heap.start_collection(CollectionScope::kFull);  // (the marker thread)
  heap.wait_for_collection();
  Persistent<RefArray> live(heap, RefArray::create(4096));
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; std::chrono::steady_clock::now() < start + milliseconds{4000}; ++i) {
    for (int j = 0; j < 82; ++j) live->set((i * 82 + j) % 4096, RefArray::create(30).value());  // 20 KiB
    sleep_native(milliseconds{10});
  }
  EXPECT_EQ(idle_cycles(heap), 0u);
}

// A stop-the-world heap has no marker thread: nothing collects it while it idles.
TEST(IdleCycleTest, AStopTheWorldHeapHasNone) {
  Heap heap(idle_options(milliseconds{50}, /*concurrent=*/false));
  MutatorScope attach(heap);
  make_old_garbage(heap);
  sleep_native(milliseconds{500});
  EXPECT_EQ(idle_cycles(heap), 0u);
}

}  // namespace
}  // namespace shoal::test
