// The write barrier's entry point: every reference store goes through shoal::write.
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

}  // namespace
}  // namespace shoal::test
