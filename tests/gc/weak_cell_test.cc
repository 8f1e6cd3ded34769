// Weak slots inside heap objects (WeakCell, custom classes with visit_weak): cleared in
// the pause that finds the target dead, together with every WeakRef to it; never
// dangling; a read during concurrent marking keeps what it returns.
#include <atomic>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class WeakCellTest : public CycleKindTest {};

TEST_P(WeakCellTest, ClearedWhenTheTargetDiesKeptWhileItLives) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 200;
  Ref<RefArray> cells = RefArray::create(kN);
  Ref<RefArray> strong = RefArray::create(kN);
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = make<Node>();
      n->value = static_cast<int64_t>(i);
      cells->set(i, WeakCell::create(n.value()).value());
      if (i % 2 == 0) strong->set(i, n.value());
    }
  });
  clobber_stack();
  cycle(heap);
  size_t cleared = 0;
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<WeakCell> cell = Ref<WeakCell>::from_value(cells->get(i));
      Ref<Node> n = Ref<Node>::from_value(cell->get());
      if (i % 2 == 0) {
        ASSERT_TRUE(n) << i;
        EXPECT_EQ(n->value, static_cast<int64_t>(i));
      } else if (!n) {
        ++cleared;
        EXPECT_TRUE(cell->expired());
      }
    }
  });
  EXPECT_GE(cleared, kN / 2 - 5) << "stray stack words may keep a few";
  EXPECT_TRUE(heap.verify().ok);
}

// A WeakRef and a WeakCell to the same object are cleared in the same cycle: no thread
// can find one cleared and the other still pointing at the object.
TEST_P(WeakCellTest, WeakRefsAndWeakSlotsToOneTargetClearTogether) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 100;
  Ref<RefArray> cells = RefArray::create(kN);
  std::vector<WeakRef<Node>> refs;
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = make<Node>();
      cells->set(i, WeakCell::create(n.value()).value());
      refs.emplace_back(heap, n);
    }
  });
  clobber_stack();
  for (int c = 0; c < 2; ++c) {
    cycle(heap);
    for (size_t i = 0; i < kN; ++i)
      EXPECT_EQ(Ref<WeakCell>::from_value(cells->get(i))->expired(), refs[i].expired()) << i;
  }
}

// A custom class with a strong and a weak field: the strong one keeps its target, the
// weak one does not, and the verifier checks the weak one never dangles.
struct Pair {
  Slot strong;
  Slot weak;
};
ClassId pair_class() {
  static const ClassId id = [] {
    ClassDescriptor d;
    d.name = "test.Pair";
    d.layout = Layout::kCustom;
    d.size = [](const Object*) -> size_t { return kHeaderSize + sizeof(Pair); };
    d.trace = [](const Object* o, SlotVisitor& v) {
      const Pair* p = static_cast<const Pair*>(o->payload());
      v.visit(p->strong);
      v.visit_weak(p->weak);
    };
    return define_class(d);
  }();
  return id;
}

TEST_P(WeakCellTest, CustomClassWeakField) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 100;
  Ref<RefArray> pairs = RefArray::create(kN);
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Object* o = allocate_custom(pair_class(), kHeaderSize + sizeof(Pair));
      Pair* p = static_cast<Pair*>(o->payload());
      write(o, p->strong, make<Node>().value());
      write_weak(p->weak, make<Node>().value());
      pairs->set(i, Value::from_object(o));
    }
  });
  clobber_stack();
  cycle(heap);
  size_t weak_cleared = 0;
  for (size_t i = 0; i < kN; ++i) {
    const Pair* p = static_cast<const Pair*>(pairs->get(i).as_object()->payload());
    EXPECT_TRUE(p->strong.load().is_object());
    weak_cleared += read_weak(p->weak).is_null() ? 1 : 0;
  }
  EXPECT_GE(weak_cleared, kN - 5);
}

// Threads keep creating weak cells to short-lived objects, reading them and storing
// what they read into long-lived objects, while cycles run; every cycle is verified.
TEST_P(WeakCellTest, ReadersAndWritersRacingCollections) {
  HeapOptions o = options();
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Ref<RefArray> cells = RefArray::create(64);
      Ref<Node> keep = make<Node>();
      for (int i = 0; i < 6000; ++i) {
        Ref<Node> n = make<Node>();
        n->value = 1000 + t;
        if (i % 5 == 0) keep.set(&Node::left, n);  // some stay reachable for a while
        cells->set(static_cast<size_t>(i) % 64, WeakCell::create(n.value()).value());
        for (size_t k = 0; k < 64; k += 7) {
          Ref<WeakCell> c = Ref<WeakCell>::from_value(cells->get(k));
          if (!c) continue;
          Ref<Node> x = Ref<Node>::from_value(c->get());
          if (!x) continue;
          if (x.object()->class_id() != class_id_of<Node>() || x->value != 1000 + t) bad++;
          keep.set(&Node::right, x);  // a strong reference from a weak read
        }
        for (int g = 0; g < 20; ++g) make<Node>();
        if (t == 0 && i % 1000 == 0) heap.start_collection();
      }
    });
  }
  for (auto& t : threads) t.join();
  MutatorScope attach(heap);
  EXPECT_NO_THROW(heap.collect());  // rethrows a failed verification of any cycle
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(heap.stats().collections, 2u);  // cycles ran while the threads raced
}

INSTANTIATE_TEST_SUITE_P(Cycles, WeakCellTest, ::testing::Values(false, true), cycle_kind_name);

}  // namespace
}  // namespace shoal::test
