// shoal::freeze: deep, one-way, no recursion, cycles; every mutation of a frozen object
// refused with the object unchanged; safe against racing writers, readers and freezers.
#include <atomic>
#include <thread>
#include <unordered_set>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class FreezeTest : public HeapTest {};

// Every object reachable from v through strong slots (iterative).
std::vector<Object*> reachable(Value v) {
  std::vector<Object*> out, stack;
  std::unordered_set<Object*> seen;
  if (v.is_object()) stack.push_back(v.as_object());
  struct Collect final : SlotVisitor {
    std::vector<Object*>* s;
    void visit(const Slot* slots, size_t n) override {
      for (size_t i = 0; i < n; ++i)
        if (slots[i].load().is_object()) s->push_back(slots[i].load().as_object());
    }
  } c;
  c.s = &stack;
  while (!stack.empty()) {
    Object* o = stack.back();
    stack.pop_back();
    if (!seen.insert(o).second) continue;
    out.push_back(o);
    default_object_model().trace(o, c);
  }
  return out;
}

size_t count_not_frozen(Value v) {
  size_t n = 0;
  for (Object* o : reachable(v)) n += !o->is_frozen();
  return n;
}

TEST_F(FreezeTest, FreezesTheWholeGraphAndOnlyIt) {
  Ref<Node> tree = make_tree(6);
  Ref<Node> outside = make<Node>();
  EXPECT_FALSE(is_frozen(tree.value()));
  EXPECT_FALSE(is_shareable(tree.value()));
  freeze(tree);
  EXPECT_EQ(count_not_frozen(tree.value()), 0u);
  EXPECT_EQ(reachable(tree.value()).size(), 127u);
  EXPECT_TRUE(is_shareable(tree.value()));
  EXPECT_FALSE(outside.object()->is_frozen());
  EXPECT_EQ(check_tree(tree, 6), 127);
  outside.set(&Node::left, tree);  // storing a frozen object into a mutable one is fine
  EXPECT_EQ(outside->left.get(), tree);
}

TEST_F(FreezeTest, SmallIntegersNullAndStringsAreFrozenAlready) {
  EXPECT_TRUE(is_frozen(Value::from_int(3)));
  EXPECT_TRUE(is_frozen(Value::null()));
  EXPECT_TRUE(is_shareable(String::create("s").value()));
  EXPECT_TRUE(is_frozen(String::create("s").value()));
  freeze(Value::from_int(3));  // no-op
  freeze(Value::null());
}

TEST_F(FreezeTest, EveryMutationOfAFrozenObjectIsRefusedAndChangesNothing) {
  Ref<Node> n = make<Node>();
  Ref<Node> child = make<Node>();
  n.set(&Node::left, child);
  Ref<RefArray> arr = RefArray::create(3);
  arr->set(0, n.value());
  Ref<ByteArray> bytes = ByteArray::create(4);
  bytes->set(1, 7);
  Ref<WeakCell> cell = WeakCell::create(child.value());
  Ref<Ephemeron> eph = Ephemeron::create(child.value(), n.value());
  arr->set(1, bytes.value());
  arr->set(2, cell.value());
  Ref<RefArray> holder = RefArray::create(1);
  holder->set(0, eph.value());
  freeze(arr);
  freeze(holder);
  Ref<Node> other = make<Node>();
  EXPECT_THROW(n.set(&Node::left, other), InvalidMutabilityError);
  EXPECT_THROW(n.set(&Node::right, other), InvalidMutabilityError);
  EXPECT_THROW(child.set(&Node::left, other), InvalidMutabilityError);
  EXPECT_THROW(arr->set(0, Value::from_int(1)), InvalidMutabilityError);
  EXPECT_THROW(bytes->set(1, 9), InvalidMutabilityError);
  EXPECT_THROW(cell->set(other.value()), InvalidMutabilityError);
  EXPECT_THROW(eph->set_value(other.value()), InvalidMutabilityError);
  EXPECT_THROW(store_field(n.object(), 0, other.value()), InvalidMutabilityError);
  EXPECT_THROW(holder->set(0, Value::null()), InvalidMutabilityError);
  EXPECT_EQ(n->left.get(), child);
  EXPECT_FALSE(n->right.get());
  EXPECT_FALSE(child->left.get());
  EXPECT_EQ(arr->get(0), n.value());
  EXPECT_EQ(bytes->get(1), 7);
  EXPECT_EQ(cell->get(), child.value());
  EXPECT_EQ(eph->value(), n.value());
  EXPECT_EQ(holder->get(0), eph.value());
  // The message names the class and the state.
  try {
    n.set(&Node::left, other);
    FAIL();
  } catch (const InvalidMutabilityError& e) {
    EXPECT_NE(std::string(e.what()).find("test.Node"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("frozen"), std::string::npos) << e.what();
  }
  expect_heap_ok();
}

TEST_F(FreezeTest, WeakSlotsAndEphemeronKeysAreNotFollowed) {
  Ref<Node> target = make<Node>();
  Ref<Node> key = make<Node>();
  Ref<Node> value = make<Node>();
  Ref<RefArray> arr = RefArray::create(2);
  arr->set(0, WeakCell::create(target.value()).value());
  arr->set(1, Ephemeron::create(key.value(), value.value()).value());
  freeze(arr);
  EXPECT_FALSE(target.object()->is_frozen());
  EXPECT_FALSE(key.object()->is_frozen());
  EXPECT_TRUE(value.object()->is_frozen());  // an ephemeron's value is a strong field
}

TEST_F(FreezeTest, CyclesAndSharing) {
  Ref<Node> a = make<Node>();
  Ref<Node> b = make<Node>();
  a.set(&Node::left, b);
  b.set(&Node::left, a);
  a.set(&Node::right, b);
  b.set(&Node::right, b);
  freeze(a);
  EXPECT_TRUE(a.object()->is_frozen());
  EXPECT_TRUE(b.object()->is_frozen());
  EXPECT_EQ(a->left.get(), b);
  EXPECT_EQ(b->left.get(), a);
}

TEST_F(FreezeTest, AMillionLongListNeedsNoRecursion) {
  Ref<Node> list = make_list(1'000'000);
  freeze(list);
  size_t n = 0;
  for (Ref<Node> p = list; p; p = p->left.get()) {
    ASSERT_TRUE(p.object()->is_frozen());
    ++n;
  }
  EXPECT_EQ(n, 1'000'000u);
  heap().collect();
  EXPECT_EQ(list_length_checked(list), 1'000'000u);
}

TEST_F(FreezeTest, FreezingAFrozenGraphAgainIsCheap) {
  Ref<Node> list = make_list(1000);
  freeze(list);
  Ref<Node> head = make<Node>();
  head.set(&Node::left, list);
  freeze(head);  // stops at the frozen list
  EXPECT_TRUE(head.object()->is_frozen());
}

TEST_F(FreezeTest, ThreadStates) {
  Ref<Node> n = make<Node>();
  EXPECT_THROW(run_native([&] { freeze(n.value()); }), ThreadStateError);
  EXPECT_FALSE(n.object()->is_frozen());
  Persistent<Node> keep(heap(), n);
  std::thread([&] { EXPECT_THROW(freeze(Value::from_object(reinterpret_cast<Object*>(16))), NotAttached); }).join();
  EXPECT_THROW(handshake_all(heap(), [&](size_t) { freeze(n.value()); }), ThreadStateError);
  EXPECT_FALSE(n.object()->is_frozen());
}

// A graph is frozen while writers keep storing fresh nodes into it: when freeze
// returns, everything reachable is frozen (a late store either landed before the claim
// and was found by the settle rescan, or was refused); the writers see only
// InvalidMutabilityError after that.
TEST_F(FreezeTest, RacingWritersCannotSlipAMutableObjectIntoAFrozenGraph) {
  for (int round = 0; round < 20; ++round) {
    Persistent<RefArray> root(heap(), RefArray::create(64));
    for (size_t i = 0; i < 64; ++i) root->set(i, make<Node>().value());
    std::atomic<bool> stop{false};
    std::atomic<size_t> refused{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&, w] {
        MutatorScope attach(heap());
        Ref<RefArray> arr = root.get();
        uint64_t x = 88172645463325252ull + w;
        while (!stop.load(std::memory_order_relaxed)) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          Ref<Node> fresh = make<Node>();
          fresh.set(&Node::left, make<Node>());
          try {
            if (x & 1) {
              arr->set(x % 64, fresh.value());
            } else {
              Ref<Node> n = try_cast<Node>(arr->get(x % 64));
              if (n) n.set(&Node::right, fresh);
            }
          } catch (const InvalidMutabilityError&) {
            refused.fetch_add(1, std::memory_order_relaxed);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 5)));
    freeze(root.get());
    EXPECT_EQ(count_not_frozen(root.get().value()), 0u) << "round " << round;
    run_native([&] {
      // Every writer's next store is refused; wait (bounded) to see some.
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (refused.load() == 0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      stop = true;
      for (auto& t : writers) t.join();
    });
    EXPECT_EQ(count_not_frozen(root.get().value()), 0u) << "round " << round;
    EXPECT_GT(refused.load(), 0u);
  }
  expect_heap_ok();
}

// Threads freeze overlapping graphs at once (a shared core plus private parts, linked
// both ways); each checks, right after its own freeze returns, that nothing reachable
// from its root can still be mutated, and at the end everything is frozen.
TEST_F(FreezeTest, OverlappingFreezesFromManyThreads) {
  for (int round = 0; round < 10; ++round) {
    Persistent<Node> core(heap(), make_list(2000));
    constexpr int kThreads = 4;
    std::vector<Persistent<Node>> roots;
    for (int t = 0; t < kThreads; ++t) {
      Ref<Node> mine = make_list(500);
      Ref<Node> joint = make<Node>();
      joint.set(&Node::left, mine);
      joint.set(&Node::right, core.get());
      // The core's tail points back at one of the private parts: the graphs overlap
      // in both directions.
      if (t == 0) {
        Ref<Node> p = core.get();
        while (p->left.get()) p = p->left.get();
        p.set(&Node::right, joint);
      }
      roots.emplace_back(heap(), joint);
    }
    std::atomic<int> go{0};
    std::atomic<size_t> mutable_after{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        MutatorScope attach(heap());
        go.fetch_add(1);
        while (go.load() < kThreads) {
        }
        Ref<Node> r = roots[t].get();
        freeze(r);
        for (Object* o : reachable(r.value()))
          if (!o->has_tag(header::kFrozen | header::kFreezing)) mutable_after.fetch_add(1);
      });
    }
    run_native([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_EQ(mutable_after.load(), 0u);
    for (auto& r : roots) EXPECT_EQ(count_not_frozen(r.get().value()), 0u);
  }
}

// Freezing while a concurrent collection marks (and collecting right after) keeps every
// object: the verifier checks the heap.
TEST_F(FreezeTest, FreezeDuringConcurrentMarking) {
  Persistent<Node> keep(heap(), make_tree(14));
  for (int i = 0; i < 5; ++i) {
    heap().start_collection();
    Ref<Node> t = make_tree(10);
    freeze(t);
    keep->left.get();
    Ref<Node> holder = make<Node>();
    holder.set(&Node::left, t);
    heap().wait_for_collection();
    heap().collect();
    EXPECT_EQ(check_tree(t, 10), 2047);
  }
  expect_heap_ok();
}

}  // namespace
}  // namespace shoal::test
