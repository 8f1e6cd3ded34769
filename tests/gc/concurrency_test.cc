// Several threads allocate and rewire linked structures while collections run (started
// by any of them, by pacing or explicitly); the verifier runs after every cycle.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(ConcurrencyTest, FourThreadsBuildingStructuresWithVerifiedCollections) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  Persistent<RefArray> shared;
  {
    MutatorScope attach(heap);
    shared = Persistent<RefArray>(heap, RefArray::create(kThreads));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      std::mt19937 rng(static_cast<unsigned>(t));
      Ref<Node> list = make_list(100);
      Ref<Node> tree = make_tree(8);
      for (int round = 0; round < 400; ++round) {
        // Rewire: splice a fresh segment in, drop an old one.
        Ref<Node> seg = make_list(50);
        Ref<Node> tail = seg;
        while (tail->left.get()) tail = tail->left.get();
        tail.set(&Node::left, Ref<Node>());
        if (round % 3 == 0) tree = make_tree(8);
        if (rng() % 4 == 0) shared->set(static_cast<size_t>(t), tree.value());  // publish
        if (rng() % 50 == 0) heap.collect();
        if (list_length_checked(list) != 100 || check_tree(tree, 8) != 511) failures++;
        // Read another thread's published tree.
        auto other = Ref<Node>::from_value(shared->get(static_cast<size_t>((t + 1) % kThreads)));
        if (other && check_tree(other, 8) != 511) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(heap.stats().collections, 10u);
  MutatorScope attach(heap);
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

}  // namespace
}  // namespace shoal::test
