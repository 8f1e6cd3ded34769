// Parallel marking (gc/parallel_marker.h): with several workers, every reachable object
// is marked exactly once (the counts are exact, not just "nothing was lost"), deep
// structures that cannot be split still work, and the idle hook does collection work.
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

// kLists lists of kLength nodes hanging off one RefArray: kLists * kLength + 1 objects.
constexpr size_t kLists = 256, kLength = 400;
constexpr size_t kReachable = kLists * kLength + 1;

Ref<RefArray> build_forest() {
  Ref<RefArray> a = RefArray::create(kLists);
  for (size_t i = 0; i < kLists; ++i) a->set(i, make_list(kLength).value());
  return a;
}

size_t count_forest(Ref<RefArray> a) {
  size_t n = 0;
  for (size_t i = 0; i < kLists; ++i) n += list_length_checked(Ref<Node>::from_value(a->get(i)));
  return n;
}

class ParallelMarkerTest : public ::testing::TestWithParam<unsigned> {};  // workers

TEST_P(ParallelMarkerTest, StopTheWorldMarksEveryReachableObjectExactlyOnce) {
  HeapOptions o;
  o.concurrent_marking = false;
  o.verify_after_gc = true;
  Heap heap(o);
  heap.impl().collector.set_pause_workers_for_testing(GetParam());
  MutatorScope attach(heap);
  Persistent<RefArray> forest(heap, build_forest());
  for (int c = 0; c < 3; ++c) {
    heap.collect();
    const CycleRecord r = heap.stats().recent.back();
    // Conservative stack words may add a few (garbage nodes from the build); a lost or
    // double-counted object would show up as a deficit or a surplus of hundreds.
    EXPECT_GE(r.objects_marked, kReachable);
    EXPECT_LE(r.objects_marked, kReachable + 64);
    EXPECT_GE(r.bytes_marked, kReachable * 32);
  }
  EXPECT_EQ(count_forest(forest.get()), kLists * kLength);
}

TEST_P(ParallelMarkerTest, ConcurrentCyclesWithParallelMarkersAndMutators) {
  HeapOptions o;
  o.marker_threads = GetParam();
  o.verify_after_gc = true;
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  heap.impl().collector.set_pause_workers_for_testing(GetParam());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      MutatorScope attach(heap);
      Ref<RefArray> forest = build_forest();
      for (int round = 0; round < 40; ++round) {
        // Swap lists between slots (the only reference moves) and replace one.
        const size_t a = static_cast<size_t>(round * 7) % kLists, b = static_cast<size_t>(round * 13 + 1) % kLists;
        const Value va = forest->get(a);
        forest->set(a, forest->get(b));
        forest->set(b, va);
        forest->set(static_cast<size_t>(round) % kLists, make_list(kLength).value());
        if (round % 10 == 0) heap.start_collection();
      }
      if (count_forest(forest) != kLists * kLength) failures++;
    });
  }
  for (auto& t : threads) t.join();
  MutatorScope attach(heap);
  heap.wait_for_collection();
  EXPECT_NO_THROW(heap.collect());  // rethrows a failed verification of any cycle
  EXPECT_EQ(failures.load(), 0);
  bool saw_parallel = false;
  for (const CycleRecord& r : heap.stats().recent) saw_parallel |= r.concurrent && r.marker_threads == GetParam();
  EXPECT_TRUE(saw_parallel);
}

// A system that refuses the collector's threads: a heap that asks for 6 marker threads
// (and pauses with 6 workers) gets one helper - the second is refused - and its
// concurrent and stop-the-world cycles mark with the threads there are, every reachable
// object found. A refused helper used to end the process from the marker thread
// (std::terminate), or throw std::system_error out of an allocation.
TEST(ParallelMarkerRefusedThreadsTest, CyclesMarkWithTheHelpersThereAre) {
  HeapOptions o;
  o.marker_threads = 6;
  o.verify_after_gc = true;
  Heap heap(o);
  heap.impl().collector.parallel_marker_for_testing().refuse_helpers_from_for_testing(2);
  heap.impl().collector.set_pause_workers_for_testing(6);
  MutatorScope attach(heap);
  Persistent<RefArray> forest(heap, build_forest());
  for (int c = 0; c < 3; ++c) {
    heap.start_collection(CollectionScope::kFull);
    heap.wait_for_collection();
    EXPECT_GE(heap.stats().recent.back().objects_marked, kReachable);
  }
  heap.collect();
  EXPECT_GE(heap.stats().recent.back().objects_marked, kReachable);
  EXPECT_EQ(count_forest(forest.get()), kLists * kLength);
#if defined(__linux__)
  const std::set<std::string> names = thread_names();
  EXPECT_EQ(names.count("shoal-mark-1"), 1u);
  EXPECT_EQ(names.count("shoal-mark-2"), 0u);
#endif
}

TEST_P(ParallelMarkerTest, LongListCannotBeSplitButIsMarked) {
  HeapOptions o;
  o.concurrent_marking = false;
  Heap heap(o);
  heap.impl().collector.set_pause_workers_for_testing(GetParam());
  MutatorScope attach(heap);
  Persistent<Node> list(heap, make_list(300000));
  heap.collect();
  EXPECT_GE(heap.stats().recent.back().objects_marked, 300000u);
  EXPECT_EQ(list_length_checked(list.get()), 300000u);
}

INSTANTIATE_TEST_SUITE_P(Workers, ParallelMarkerTest, ::testing::Values(1u, 2u, 4u, 8u));

using internal::HeapImpl;
using internal::Marker;
using internal::MarkTotals;
using internal::ParallelMarker;

constexpr size_t kLongLength = 4 * kLength;  // the assist test's lists: drains of ~400k objects

size_t count_unmarked(HeapImpl& heap, Ref<RefArray> forest) {
  size_t n = Marker::is_marked(heap, forest.object()) ? 0 : 1;
  for (size_t i = 0; i < kLists; ++i)
    for (Ref<Node> p = Ref<Node>::from_value(forest->get(i)); p; p = p->left.get())
      if (!Marker::is_marked(heap, p.object())) ++n;
  return n;
}

// A mutator's marking assist (ParallelMarker::assist) takes grey objects from a running
// drain - the workers donate a chunk when an assist asks, however shallow their stack -
// and hands back what it does not trace; the drain does not end while an assist holds
// grey objects. So when drain() returns every reachable object is marked (before, an
// assist could still be tracing a chunk: a concurrent cycle then left that subgraph to
// its final pause), and the drain's workers and the assist together marked each object
// exactly once. The drain is seeded with the lists' heads, so with several workers the
// helpers join and share them. Heaps, one drain each, until an assist found work or
// kPatience has passed (on a loaded machine - CI runs two tests at once, some with four
// threads - the assisting thread may not get a core during a drain of a few ms: 20
// attempts were once not enough); every drain must be complete whatever happens.
TEST_P(ParallelMarkerTest, AssistsShareARunningDrainWhichWaitsForThem) {
  constexpr auto kPatience = std::chrono::seconds(20);
  constexpr size_t kObjects = 1 + kLists * kLongLength;
  size_t assisted = 0;
  int attempts = 0;
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  for (; assisted == 0 && (attempts == 0 || std::chrono::steady_clock::now() < give_up); ++attempts) {
    HeapOptions o;
    o.concurrent_marking = false;
    o.min_gc_trigger = size_t{1} << 30;  // no collection: this test owns the mark bits
    Heap heap(o);
    MutatorScope attach(heap);
    HeapImpl& impl = heap.impl();
    ParallelMarker marker(impl);
    marker.start_helpers(GetParam());
    Persistent<RefArray> forest(heap, RefArray::create(kLists));
    for (size_t i = 0; i < kLists; ++i) forest->set(i, make_list(kLongLength).value());
    std::vector<Object*> heads;
    ASSERT_TRUE(Marker::try_mark(impl, forest.get().object()));
    for (size_t i = 0; i < kLists; ++i) {
      Object* head = forest->get(i).as_object();
      ASSERT_TRUE(Marker::try_mark(impl, head));
      heads.push_back(head);
    }
    std::atomic<bool> ready{false}, drained{false};
    size_t assist_traced = 0, assist_marked = 0, assist_left = 0;
    std::thread assistant([&] {
      Marker m(impl);
      while (!drained.load()) {
        assist_traced += marker.assist(m, 64);
        ready.store(true);
      }
      assist_marked = m.objects_marked();
      assist_left = m.grey_count();
    });
    while (!ready.load()) std::this_thread::yield();  // the assistant is running
    MarkTotals totals;
    marker.drain(std::move(heads), GetParam(), totals);
    const size_t unmarked = count_unmarked(impl, forest.get());
    drained.store(true);
    assistant.join();
    EXPECT_EQ(unmarked, 0u) << "attempt " << attempts << ": the drain ended while an assist held grey objects";
    EXPECT_EQ(assist_left, 0u);
    // (The root and the heads were marked here.)
    EXPECT_EQ(totals.objects_marked + assist_marked, kObjects - 1 - kLists) << "attempt " << attempts;
    assisted += assist_traced;
  }
  EXPECT_GT(assisted, 0u) << "no assist found work in " << attempts << " drains";
  RecordProperty("attempts", attempts);
}

#if defined(__linux__)
// The collector's threads carry names (for top, perf sched and debuggers): the marker
// thread of a concurrent cycle and the marking helpers of a pause.
TEST(CollectorThreadNamesTest, MarkerAndHelperThreadsAreNamed) {
  HeapOptions o;
  o.marker_threads = 2;
  Heap heap(o);
  heap.impl().collector.set_pause_workers_for_testing(2);
  MutatorScope attach(heap);
  Persistent<RefArray> forest(heap, build_forest());
  heap.start_collection();
  heap.wait_for_collection();
  const std::set<std::string> names = thread_names();
  EXPECT_EQ(names.count("shoal-marker"), 1u);
  EXPECT_EQ(names.count("shoal-mark-1"), 1u);
}
#endif

}  // namespace
}  // namespace shoal::test
