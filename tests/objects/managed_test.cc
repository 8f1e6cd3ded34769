// The typed C++ layer: offsets derived from kRefs, make<T>, Ref<T>::set.
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

struct Mixed {
  int32_t a = 1;
  Member<Node> first;
  double d = 2.5;
  Slot any;
  Member<Mixed> self;
  static constexpr auto kRefs = refs(&Mixed::first, &Mixed::any, &Mixed::self);
};

struct Plain {
  int64_t x = 0;
  int64_t y = 0;
};

class ManagedTest : public HeapTest {};

TEST_F(ManagedTest, OffsetsComeFromTheMemberList) {
  const ClassInfo& c = class_info(class_id_of<Mixed>());
  EXPECT_EQ(c.instance_size, sizeof(Mixed));
  EXPECT_EQ(c.ref_offsets, (std::vector<uint32_t>{8, 24, 32}));
  EXPECT_EQ(class_id_of<Mixed>(), class_id_of<Mixed>());
  EXPECT_TRUE(class_info(class_id_of<Plain>()).ref_offsets.empty());
  EXPECT_EQ(class_info(class_id_of<Node>()).name, "test.Node");
}

TEST_F(ManagedTest, MakeConstructsAndFieldsKeepTargetsAlive) {
  Ref<Mixed> m = make<Mixed>();
  EXPECT_EQ(m->a, 1);
  EXPECT_EQ(m->d, 2.5);
  HiddenPtr n_hidden, s_hidden;
  in_own_frame([&] {
    Ref<Node> n = make<Node>();
    n->value = 3;
    m.set(&Mixed::first, n);
    Ref<String> s = String::create("any");
    m.set(&Mixed::any, s.value());
    m.set(&Mixed::self, m);
    n_hidden = HiddenPtr(n.object());
    s_hidden = HiddenPtr(s.object());
  });
  clobber_stack();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), n_hidden));
  EXPECT_TRUE(is_allocated(heap(), s_hidden));
  in_own_frame([&] {  // reading m->first must not leave its address in this frame
    EXPECT_EQ(m->first.get()->value, 3);
    EXPECT_EQ(m->self.get(), m);
  });
  m.set(&Mixed::first, Ref<Node>());
  clobber_stack();
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), n_hidden));
  expect_heap_ok();
}

TEST_F(ManagedTest, CheckedCasts) {
  Ref<Node> n = make<Node>();
  Ref<String> s = String::create("x");
  EXPECT_EQ(try_cast<Node>(n.value()), n);
  EXPECT_FALSE(try_cast<Node>(s.value()));
  EXPECT_FALSE(try_cast<Node>(Value::from_int(3)));
  EXPECT_FALSE(try_cast<Node>(Value::null()));
  EXPECT_EQ(try_cast<String>(s.value()), s);
  EXPECT_EQ(cast<Node>(n.value()), n);
  EXPECT_FALSE(cast<Node>(Value::null()));
  try {
    cast<Node>(s.value());
    ADD_FAILURE() << "cast of a String to a Node did not throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("String"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.Node"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cast<RefArray>(Value::from_int(1)), InvalidArgument);
}

// keep_alive holds a local's object to that point even though nothing reads the local
// after the collection.
TEST_F(ManagedTest, KeepAliveKeepsTheLocal) {
  HiddenPtr hidden;
  Ref<Node> n = make<Node>();
  hidden = HiddenPtr(n.object());
  clobber_stack();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  keep_alive(n);
}

// A heap write from a thread that may not touch the heap, while the barrier is on, is
// refused before the store (its overwritten value could not be shaded).
TEST(ManagedMisuseTest, WriteOffTheRunningStateWhileMarkingIsRefused) {
  HeapOptions o;
  o.concurrent_marking = true;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make<Node>());
  Ref<Node> n = make<Node>();
  n.set(&Node::left, make<Node>());
  MarkerPause pause(heap, nullptr);
  heap.start_collection();
  pause.wait_until_held();
  const Value before = n->left.value();
  std::thread([&] { EXPECT_THROW(n.set(&Node::left, Ref<Node>()), NotAttached); }).join();
  EXPECT_THROW(run_native([&] { n.set(&Node::left, Ref<Node>()); }), ThreadStateError);
  EXPECT_EQ(n->left.value(), before);  // unchanged
  pause.release();
  heap.wait_for_collection();
  keep_alive(n);
}

// Compile-time: a Slot cannot be written except through the barrier.
template <class S>
concept PlainStorable = requires(S s, Value v) { s.store(v); };
static_assert(!PlainStorable<Slot>);
static_assert(!std::is_copy_assignable_v<Slot>);

}  // namespace
}  // namespace shoal::test
