// Mark assists (HeapOptions::mark_assists; Collector::assist_for_allocation, docs/gc.md
// "Mark assists"): while a concurrent cycle marks, allocating threads trace in step with
// what they allocate, so the cycle's progress does not depend on the marker threads
// getting a core.
//
// Each test holds the marker thread before it traces anything
// (MarkerPause::BeforeTracing): the root snapshot waits on the grey
// list, and only assists can trace it. A first, ordinary cycle sets the forecast: a
// rooted list of kNodes nodes.
#include <gtest/gtest.h>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kNodes = 40000;  // 32-byte cells: ~1.2 MiB to trace
constexpr size_t kGoal = 4 * kMiB;

HeapOptions options(bool assists, bool generational) {
  HeapOptions o;
  o.min_gc_trigger = kGoal;
  o.generational = generational;
  o.mark_assists = assists;
  o.initial_pause_stack_budget = SIZE_MAX;  // no stack is left to the scanner thread
  o.idle_full_cycle_after = std::chrono::milliseconds(0);
  return o;
}

Value make_list(size_t n) {
  Ref<Node> head;
  for (size_t i = 0; i < n; ++i) {
    Ref<Node> node = make<Node>();
    node->value = static_cast<int64_t>(i);
    node.set(&Node::left, head);
    head = node;
  }
  return head.value();
}

size_t list_length(Value head) {
  size_t n = 0;
  for (Ref<Node> node = Ref<Node>::from_value(head); node; node = node->left.get()) {
    EXPECT_EQ(node->value, static_cast<int64_t>(kNodes - 1 - n));
    ++n;
  }
  return n;
}

// Runs a full cycle with the marker held while `bytes` of garbage are allocated (256-byte
// cells); returns its record once it has ended.
CycleRecord held_cycle(Heap& heap, size_t bytes) {
  {
    MarkerPause hold(heap, MarkerPause::BeforeTracing{});
    heap.start_collection(CollectionScope::kFull);
    hold.wait_until_held();
    EXPECT_TRUE(heap.is_marking());
    for (size_t done = 0; done < bytes; done += 256) (void)RefArray::create(30);
    EXPECT_TRUE(heap.is_marking()) << "the marker is held: the cycle cannot end";
  }
  heap.wait_for_collection();
  return heap.stats().recent.back();
}

class MarkAssistTest : public ::testing::TestWithParam<bool> {};

// Three quarters of the goal allocated with the marker held: the assists must have
// traced about three quarters of the forecast (the list) - and the whole list once the
// allocation reaches the goal. Without assists nothing is traced before the goal.
TEST_P(MarkAssistTest, AllocationPaysForMarkingInProportion) {
  for (const bool assists : {true, false}) {
    SCOPED_TRACE(assists ? "assists on" : "assists off");
    Heap heap(options(assists, GetParam()));
    MutatorScope attach(heap);
    PersistentValue list(heap, make_list(kNodes));
    heap.start_collection(CollectionScope::kFull);  // the forecast: a full cycle's tracing
    heap.wait_for_collection();
    const size_t forecast = heap.stats().recent.back().bytes_marked;
    ASSERT_GT(forecast, kNodes * 24);

    const CycleRecord r = held_cycle(heap, kGoal * 3 / 4);
    if (assists) {
      EXPECT_GT(r.mark_assists, 0u);
      // Owed: forecast x allocated / runway, the runway at most the goal; a page's worth
      // of allocation may not have asked yet.
      EXPECT_GT(r.assist_objects, kNodes / 2) << "forecast " << forecast << " bytes";
    } else {
      EXPECT_EQ(r.mark_assists, 0u);
      EXPECT_EQ(r.assist_objects, 0u);
    }
    EXPECT_EQ(list_length(list.get()), kNodes);

    const CycleRecord whole = held_cycle(heap, kGoal * 5 / 4);
    if (assists) {
      EXPECT_GE(whole.assist_objects, kNodes) << "the whole list, by the goal";
    }
    EXPECT_EQ(list_length(list.get()), kNodes);
    const VerifyReport report = heap.verify();
    EXPECT_TRUE(report.ok) << report.summary();
  }
}

// With no grey object to be had (all traced), an assist returns: an allocating thread
// never waits for the held marker, below twice the goal.
TEST_P(MarkAssistTest, AnAssistNeverWaitsForTheMarker) {
  Heap heap(options(true, GetParam()));
  MutatorScope attach(heap);
  PersistentValue list(heap, make_list(kNodes));
  heap.start_collection(CollectionScope::kFull);
  heap.wait_for_collection();
  const CycleRecord r = held_cycle(heap, kGoal * 7 / 4);  // finishes: nothing waits
  EXPECT_GE(r.assist_objects, kNodes);
  EXPECT_GE(r.allocated_while_marking, kGoal * 3 / 2);
  EXPECT_EQ(list_length(list.get()), kNodes);
}

INSTANTIATE_TEST_SUITE_P(Generations, MarkAssistTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Generational" : "NonGenerational"; });

}  // namespace
}  // namespace shoal::test
