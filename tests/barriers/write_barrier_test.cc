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

TEST(WriteBarrierDeathTest, SlowPathIsUnreachableWithoutConcurrentMarking) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        internal::g_write_barrier_active.store(1);
        Slot s;
        internal::write_barrier_slow(nullptr, &s, Value::null(), Value::null());
      },
      "write barrier slow path");
}

}  // namespace
}  // namespace shoal::test
