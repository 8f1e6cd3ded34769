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
  // The data hangs off 64 persistent chunks, so a stray conservative root can pin at
  // most one chunk once the data is dropped.
  constexpr size_t kChunks = 64;
  Persistent<RefArray> chunks(heap(), RefArray::create(kChunks));
  size_t built = 0;
  in_own_frame([&] {
    bool threw = false;
    try {
      for (size_t i = 0;; ++i) {
        const size_t c = i % kChunks;
        Ref<Node> n = make<Node>();
        n->value = static_cast<int64_t>(i / kChunks);
        n.set(&Node::left, Ref<Node>::from_value(chunks->get(c)));
        chunks->set(c, n.value());
        ++built;
      }
    } catch (const OutOfMemory& e) {
      threw = true;
      EXPECT_GT(e.limit(), 0u);
      EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos);
    }
    EXPECT_TRUE(threw);
  });
  EXPECT_GT(built, 100000u);
  EXPECT_LE(heap().stats().footprint_bytes, size_t{8} << 20);
  // Everything built before the failure is intact.
  in_own_frame([&] {
    size_t total = 0;
    for (size_t c = 0; c < kChunks; ++c) total += list_length_checked(Ref<Node>::from_value(chunks->get(c)));
    EXPECT_EQ(total, built);
  });
  expect_heap_ok();
  // Dropping the data makes the heap usable again: at least half of it can be refilled.
  for (size_t c = 0; c < kChunks; ++c) chunks->set(c, Value::null());
  clobber_stack();
  heap().collect();
  EXPECT_NO_THROW(in_own_frame([&] {
    Ref<Node> keep;
    for (size_t i = 0; i < built / 2; ++i) {
      Ref<Node> n = make<Node>();
      n.set(&Node::left, keep);
      keep = n;
    }
  }));
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
