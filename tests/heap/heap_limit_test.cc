// The heap limit: collections before failure, typed OutOfMemory, a usable heap after.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

class HeapLimitTest : public HeapTest {
  HeapOptions options() override {
    HeapOptions o;
    o.heap_limit = size_t{8} << 20;
    o.min_gc_trigger = size_t{1} << 20;
    return o;
  }
};

TEST_F(HeapLimitTest, GarbageNeverExhaustsTheHeap) {
  // 200 MB of garbage through an 8 MB heap: collections keep it going.
  for (int i = 0; i < 200 * 1024; ++i) ByteArray::create(1000);
  for (int i = 0; i < 200; ++i) ByteArray::create(1 << 20);
  const GcStats s = heap().stats();
  EXPECT_GT(s.collections, 20u);
  EXPECT_LE(s.footprint_bytes, s.heap_limit);
  expect_heap_ok();
}

TEST_F(HeapLimitTest, RetainingTooMuchThrowsOutOfMemoryAndTheHeapSurvives) {
  Persistent<Node> list(heap(), Ref<Node>());
  bool threw = false;
  try {
    for (;;) {
      Ref<Node> n = make<Node>();
      n.set(&Node::left, list.get());
      list.set(n);
    }
  } catch (const OutOfMemory& e) {
    threw = true;
    EXPECT_GT(e.limit(), 0u);
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos);
  }
  ASSERT_TRUE(threw);
  EXPECT_LE(heap().stats().footprint_bytes, size_t{8} << 20);
  const size_t n = list_length_checked(list.get());
  EXPECT_GT(n, 100000u);  // the list built so far is intact
  expect_heap_ok();
  // Dropping the data makes the heap usable again.
  list.set(Ref<Node>());
  heap().collect();
  EXPECT_NO_THROW({
    for (int i = 0; i < 100000; ++i) make<Node>();
  });
  expect_heap_ok();
}

TEST_F(HeapLimitTest, LargeObjectOverTheLimitThrows) {
  EXPECT_THROW(ByteArray::create(size_t{16} << 20), OutOfMemory);
  Ref<ByteArray> ok = ByteArray::create(size_t{2} << 20);
  EXPECT_TRUE(ok);
  expect_heap_ok();
}

TEST_F(HeapLimitTest, FreePagesAreDecommittedForLargeObjects) {
  // Fill most of the limit with small objects, drop them, then ask for a large object
  // that only fits if the now-free pages are given back.
  in_own_frame([&] {
    Persistent<Node> list(heap(), make_list(150000));  // ~4.8 MB of nodes
    EXPECT_GT(heap().stats().footprint_bytes, size_t{4} << 20);
  });
  clobber_stack();
  heap().collect();
  EXPECT_NO_THROW(ByteArray::create(size_t{6} << 20));
  expect_heap_ok();
}

TEST(HeapLimitOptions, LimitSmallerThanAPageIsRejected) {
  HeapOptions o;
  o.heap_limit = 4096;
  EXPECT_THROW(Heap heap(o), InvalidArgument);
  o.heap_limit = 0;
  o.gc_growth = 0;
  EXPECT_THROW(Heap heap(o), InvalidArgument);
}

}  // namespace
}  // namespace shoal::test
