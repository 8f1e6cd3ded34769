// GC torture: a collection at every Nth safepoint poll (allocations included), with the
// verifier run after every cycle. Stop-the-world torture collects at every Nth poll;
// concurrent torture starts a concurrent cycle at every Nth poll when none is marking,
// and otherwise makes the polling thread trace a few grey objects itself, so marking
// runs nearly all the time and interleaves with every mutation.
#include <chrono>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

HeapOptions torture(uint32_t interval, bool concurrent = false) {
  HeapOptions o;
  o.concurrent_marking = concurrent;
  o.gc_torture_interval = interval;
  o.verify_after_gc = true;
  o.poison_freed_memory = true;
  return o;
}

TEST(TortureTest, CollectAtEveryAllocation) {
  Heap heap(torture(1));
  MutatorScope attach(heap);
  Ref<Node> tree = make_tree(6);  // each allocation collects and verifies
  Ref<Node> list = make_list(200);
  EXPECT_EQ(check_tree(tree, 6), 127);
  EXPECT_EQ(list_length_checked(list), 200u);
  EXPECT_GE(heap.stats().collections, 300u);
}

TEST(TortureTest, EveryTenthPollWithMixedSizes) {
  Heap heap(torture(10));
  MutatorScope attach(heap);
  Ref<RefArray> keep = RefArray::create(64);
  for (int i = 0; i < 3000; ++i) {
    const size_t slot = static_cast<size_t>(i) % 64;
    switch (i % 4) {
      case 0: keep->set(slot, make_list(5).value()); break;
      case 1: keep->set(slot, String::create(std::string(static_cast<size_t>(i % 300), 'x')).value()); break;
      case 2: keep->set(slot, ByteArray::create(static_cast<size_t>(i % 5) * 5000).value()); break;
      case 3: safepoint(); break;
    }
  }
  for (size_t i = 0; i < 64; ++i) EXPECT_FALSE(keep->get(i).is_int());
  EXPECT_GE(heap.stats().collections, 200u);
}

TEST(TortureTest, ThreadsUnderTorture) {
  Heap heap(torture(25));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Ref<Node> mine = make_list(10);
      for (int round = 0; round < 150; ++round) {
        Ref<Node> extra = make_list(8);
        extra->value += t;  // keep it distinct per thread
        mine = make_list(10);
        if (list_length_checked(mine) != 10) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(heap.stats().collections, 50u);
}

TEST(TortureTest, ConcurrentTortureKeepsEveryStructureIntact) {
  Heap heap(torture(1, /*concurrent=*/true));
  MutatorScope attach(heap);
  Ref<RefArray> keep = RefArray::create(32);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int round = 0;
  while (heap.stats().collections < 40 && std::chrono::steady_clock::now() < deadline) {
    const size_t slot = static_cast<size_t>(round) % 32;
    // Rearrange while marking runs: move the only reference to the old tree from its slot
    // into a fresh list's node, then drop the slot's reference.
    Ref<Node> old = Ref<Node>::from_value(keep->get(slot));
    Ref<Node> list = make_list(5);
    if (old) list.set(&Node::left, old);
    keep->set(slot, make_tree(3).value());
    if (old) {
      EXPECT_EQ(check_tree(Ref<Node>::from_value(list->left.value()), 3), 15);
    }
    ++round;
  }
  heap.wait_for_collection();
  for (size_t i = 0; i < 32; ++i) {
    if (keep->get(i).is_object()) {
      EXPECT_EQ(check_tree(Ref<Node>::from_value(keep->get(i)), 3), 15);
    }
  }
  const GcStats stats = heap.stats();
  EXPECT_GE(stats.collections, 40u) << "rounds: " << round;
  size_t concurrent = 0;
  for (const CycleRecord& c : stats.recent) concurrent += c.concurrent ? 1 : 0;
  EXPECT_EQ(concurrent, stats.recent.size());
  EXPECT_TRUE(heap.verify().ok);
}

TEST(TortureTest, ConcurrentTortureWithFourThreads) {
  Heap heap(torture(3, /*concurrent=*/true));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Ref<Node> mine = make_list(10);
      while (!done.load()) {
        Ref<Node> extra = make_list(8);
        extra->value += t;
        mine.set(&Node::right, extra);  // hang the new list on the old head...
        mine = make_list(10);           // ...and drop both
        if (list_length_checked(mine) != 10) failures++;
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (heap.stats().collections < 30 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  MutatorScope attach(heap);
  heap.wait_for_collection();
  EXPECT_GE(heap.stats().collections, 30u);
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test
