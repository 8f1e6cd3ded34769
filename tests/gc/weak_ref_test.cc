// Weak handles: cleared when the target dies, never dangling, safe under concurrent marking.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(WeakRefTest, ClearedWhenTheTargetDiesKeptWhileItLives) {
  Heap heap;
  MutatorScope attach(heap);
  constexpr size_t kN = 100;
  std::vector<WeakRef<Node>> weak;
  Ref<RefArray> strong = RefArray::create(kN / 2);
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = make<Node>();
      n->value = static_cast<int64_t>(i);
      weak.emplace_back(heap, n);
      if (i % 2 == 0) strong->set(i / 2, n.value());
    }
  });
  clobber_stack();
  heap.collect();
  size_t cleared = 0;
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = weak[i].get();
      if (i % 2 == 0) {
        ASSERT_TRUE(n) << i;  // strongly held: never cleared
        EXPECT_EQ(n->value, static_cast<int64_t>(i));
      } else if (!n) {
        ++cleared;
        EXPECT_TRUE(weak[i].expired());
      }
    }
  });
  EXPECT_GE(cleared, kN / 2 - 5) << "stray stack words may keep a few";
  EXPECT_TRUE(heap.verify().ok);
  WeakRef<Node> empty;
  EXPECT_FALSE(empty.get());
  EXPECT_TRUE(empty.expired());
}

// Upgrading a weak reference during concurrent marking: the object was not reachable
// at the snapshot, the mutator gets it from the WeakRef and stores it into an object the
// marker has already scanned. get() must shade it, or the sweep frees a reachable object.
TEST(WeakRefTest, GetDuringConcurrentMarkingKeepsTheTarget) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.verify_after_gc = true;
  Heap heap(o);
  MutatorScope attach(heap);
  Ref<Node> root = make<Node>();
  WeakRef<Node> weak;
  in_own_frame([&] {
    Ref<Node> w = make<Node>();
    w->value = 99;
    weak = WeakRef<Node>(heap, w);
  });
  clobber_stack();
  MarkerPause pause(heap, root.object());
  heap.impl().collector.start_concurrent_cycle_for_testing(internal::current_thread());
  pause.wait_until_held();
  in_own_frame([&] { root.set(&Node::right, weak.get()); });  // R is black already
  pause.release();
  clobber_stack();
  heap.collect();  // rethrows a failed verification of the concurrent cycle
  ASSERT_TRUE(root->right.get());
  EXPECT_EQ(root->right.get()->value, 99);
  EXPECT_FALSE(weak.expired());
}

TEST(WeakRefTest, ReadersRacingCollectionsSeeTheObjectOrNull) {
  HeapOptions o;
  o.min_gc_trigger = size_t{1} << 20;
  o.concurrent_marking = true;
  Heap heap(o);
  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      std::vector<WeakRef<Node>> weak;
      Ref<Node> keep;
      for (int i = 0; i < 4000 && !stop.load(); ++i) {
        Ref<Node> n = make<Node>();
        n->value = 1000 + t;
        if (i % 3 == 0) keep = n;  // some stay reachable for a while
        weak.emplace_back(heap, n);
        if (weak.size() > 64) weak.erase(weak.begin());
        for (auto& w : weak) {
          Ref<Node> x = w.get();
          if (x && (x.object()->class_id() != class_id_of<Node>() || x->value != 1000 + t)) bad++;
        }
        for (int g = 0; g < 50; ++g) make<Node>();
      }
    });
  }
  for (auto& t : threads) t.join();
  MutatorScope attach(heap);
  EXPECT_NO_THROW(heap.collect());
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test
