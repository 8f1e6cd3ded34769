// The write barrier's entry point: every reference store goes through shoal::write.
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(WriteBarrierTest, StoresThroughTheBarrierAreVisibleAndTraced) {
  Heap heap;
  MutatorScope attach(heap);
  Ref<Node> a = make<Node>();
  Ref<Node> b = make<Node>();
  EXPECT_EQ(internal::g_write_barrier_active.load(), 0u) << "no concurrent marking: barrier off";
  write(a.object(), a->left.slot(), b.value());
  EXPECT_EQ(a->left.get(), b);
  heap.collect();
  EXPECT_EQ(internal::g_write_barrier_active.load(), 0u) << "stop-the-world cycles never enable it";
  EXPECT_EQ(a->left.get(), b);
}

TEST(WriteBarrierTest, SlowPathDoesNothingWhenThisHeapIsNotMarking) {
  Heap heap;
  MutatorScope attach(heap);
  Ref<Node> a = make<Node>();
  Ref<Node> b = make<Node>();
  a.set(&Node::left, b);
  // Another heap's concurrent marking turns the global flag on: this heap's stores take
  // the slow path, which must leave this heap's mark bits alone.
  internal::g_write_barrier_active.fetch_add(1);
  a.set(&Node::left, Ref<Node>());
  internal::g_write_barrier_active.fetch_sub(1);
  EXPECT_FALSE(a->left.get());
  internal::PageInfo& page = heap.impl().pages.page_of(b.object());
  EXPECT_FALSE(page.mark_bits.test(page.granule_of(b.object())));
  EXPECT_TRUE(heap.verify().ok);
}

// write_weak accepts any Slot. Used on a strong field while marking, it deletes a
// snapshot edge: it must shade the overwritten value like write() (the lost-object
// interleaving: the marker holds after tracing x, a is grey, a.left's list moves into x).
TEST(WriteBarrierTest, WriteWeakOnAStrongFieldWhileMarkingShadesTheOldValue) {
  expect_deleted_value_shaded(
      [](Ref<Node> list) {
        Ref<Node> a = make<Node>();
        a.set(&Node::left, list);
        return a.value();
      },
      [](Value holder) {
        Ref<Node> a = Ref<Node>::from_value(holder);
        Ref<Node> list = a->left.get();
        write_weak(a->left.slot(), Value::null());  // the deletion
        return list;
      });
}

// write_weak has no holder to check, but it refuses a thread the collector does not stop
// (unattached, in run_native, in a handshake operation) before the slot changes, as
// write() does (it stored from any of them; found by review).
TEST(WriteBarrierTest, WriteWeakNeedsARunningThread) {
  HeapOptions o;
  o.concurrent_marking = false;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> holder(heap, make<Node>());
  Persistent<Node> target(heap, make<Node>());
  Slot& slot = holder.get()->left.slot();
  const Value v = target.get().value();
  run_native([&] {
    EXPECT_THROW(write_weak(slot, v), ThreadStateError);
    std::thread([&] { EXPECT_THROW(write_weak(slot, v), NotAttached); }).join();
  });
  handshake_all(heap, [&](size_t) { EXPECT_THROW(write_weak(slot, v), ThreadStateError); });
  EXPECT_TRUE(holder.get()->left.get().value().is_null());
  write_weak(slot, v);  // the running thread: fine
  EXPECT_EQ(holder.get()->left.get().value(), v);
}

// Heap::store_root is for slots outside the heap; a field is refused (it would skip the
// barrier's shading of the overwritten value).
TEST(WriteBarrierTest, StoreRootRefusesHeapFields) {
  Heap heap;
  MutatorScope attach(heap);
  Ref<Node> n = make<Node>();
  n.set(&Node::left, make<Node>());
  EXPECT_THROW(heap.store_root(&n->left.slot(), Value::null()), InvalidArgument);
  Ref<RefArray> big = RefArray::create(100000);  // a large object
  EXPECT_THROW(heap.store_root(&big->slots()[500], Value::null()), InvalidArgument);
  EXPECT_TRUE(n->left.get());
  Slot outside;
  EXPECT_NO_THROW(heap.store_root(&outside, n.value()));
}

}  // namespace
}  // namespace shoal::test
