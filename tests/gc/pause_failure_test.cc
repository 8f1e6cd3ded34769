// A pause cannot unwind: an exception inside one (here std::bad_alloc, injected at the
// pause's start) used to escape with the registry lock held and every other mutator
// parked for ever. Now the process stops with a message naming the pause. Death tests:
// each case runs in a child process, with a second mutator that would otherwise hang.
#include <atomic>
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

enum class Which { kStopTheWorld, kInitial, kFinal };

void fail_a_pause(Which which) {
  HeapOptions o;
  o.concurrent_marking = which != Which::kStopTheWorld;
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<bool> stop{false};
  std::thread other([&] {
    MutatorScope attach_other(heap);
    while (!stop.load()) make<Node>();  // parks at its next allocation in every pause
  });
  internal::Collector& collector = heap.impl().collector;
  switch (which) {
    case Which::kStopTheWorld:
      collector.inject_pause_fault_for_testing();
      heap.collect();
      break;
    case Which::kInitial:
      collector.inject_pause_fault_for_testing();
      heap.start_collection();
      break;
    case Which::kFinal: {
      // The marker thread is held as it takes the cycle over, before it traces anything:
      // held after its first traced object instead, it was never held when
      // the other thread's assists had traced the whole snapshot first, and the child
      // hung (under qemu, 2 runs in 12 with four at once).
      MarkerPause hold(heap, MarkerPause::BeforeTracing{});
      Persistent<Node> root(heap, make<Node>());
      heap.start_collection();
      hold.wait_until_held();
      collector.inject_pause_fault_for_testing();  // the next pause is the final one
      hold.release();
      heap.wait_for_collection();
      break;
    }
  }
  stop = true;  // (reached only if the pause did not stop the process)
  run_native([&] { other.join(); });
}

TEST(PauseFailureDeathTest, ExceptionInAStopTheWorldPauseStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fail_a_pause(Which::kStopTheWorld), "std::bad_alloc thrown inside the stop-the-world pause");
}

TEST(PauseFailureDeathTest, ExceptionInTheInitialPauseStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fail_a_pause(Which::kInitial), "std::bad_alloc thrown inside the initial pause");
}

TEST(PauseFailureDeathTest, ExceptionInTheFinalPauseStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fail_a_pause(Which::kFinal), "std::bad_alloc thrown inside the final pause");
}

}  // namespace
}  // namespace shoal::test
