// GC torture: a collection at every Nth safepoint poll (allocations included), with the
// verifier run after every cycle.
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

HeapOptions torture(uint32_t interval) {
  HeapOptions o;
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

}  // namespace
}  // namespace shoal::test
