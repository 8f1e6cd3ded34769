// Typed data: element lists, views sharing one buffer, alignment and range checks,
// atomic element operations (also across threads), frozen buffers.
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class TypedDataTest : public HeapTest {};

TEST_F(TypedDataTest, ElementListsReadAndWriteTheirNumbers) {
  auto u8 = Uint8List::create(10);
  auto i32 = Int32List::create(10);
  auto i64 = Int64List::create(10);
  auto f64 = Float64List::create(10);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(u8->get(i), 0);
    EXPECT_EQ(f64->get(i), 0.0);
    u8->set(i, static_cast<uint8_t>(250 + i));  // wraps like uint8_t
    i32->set(i, -static_cast<int32_t>(i));
    i64->set(i, int64_t{1} << (40 + i));
    f64->set(i, 0.5 * i);
  }
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(u8->get(i), static_cast<uint8_t>(250 + i));
    EXPECT_EQ((*i32)[i], -static_cast<int32_t>(i));
    EXPECT_EQ(i64->get(i), int64_t{1} << (40 + i));
    EXPECT_EQ(f64->get(i), 0.5 * i);
  }
  EXPECT_EQ(i64->length_in_bytes(), 80u);
  EXPECT_EQ(i64->buffer()->length(), 80u);
  EXPECT_THROW(i32->get(10), RangeError);
  EXPECT_THROW(f64->set(10, 1.0), RangeError);
  EXPECT_THROW(i64->fetch_add(11, 1), RangeError);
}

TEST_F(TypedDataTest, ViewsShareBytesAndCheckAlignmentAndRange) {
  auto bytes = Uint8List::create(32);
  auto words = Int64List::view(bytes->buffer(), 8, 3);  // bytes 8..31
  auto ints = Int32List::view(bytes->buffer(), 4, 7);   // bytes 4..31
  EXPECT_EQ(words->byte_offset(), 8u);
  words->set(0, 0x0102030405060708);
  EXPECT_EQ(bytes->get(8), 0x08);  // little-endian machines (x86-64, AArch64)
  EXPECT_EQ(bytes->get(15), 0x01);
  EXPECT_EQ(ints->get(1), 0x05060708);
  bytes->set(16, 0xff);
  EXPECT_EQ(words->get(1), 0xff);
  EXPECT_THROW(Int64List::view(bytes->buffer(), 4, 1), InvalidArgument);  // misaligned
  EXPECT_THROW(Int32List::view(bytes->buffer(), 2, 1), InvalidArgument);
  EXPECT_THROW(Int64List::view(bytes->buffer(), 8, 4), RangeError);  // 8 + 32 > 32
  EXPECT_THROW(Int64List::view(bytes->buffer(), 40, 0), RangeError);
  EXPECT_THROW(Int64List::view(Ref<ByteArray>(), 0, 0), InvalidArgument);
  EXPECT_EQ(Int64List::view(bytes->buffer(), 32, 0)->length(), 0u);
  EXPECT_EQ(Uint8List::view(ByteArray::create(3), 1, 2)->length(), 2u);
}

TEST_F(TypedDataTest, AtomicElementOperations) {
  auto a = Int32List::create(4);
  auto b = Int64List::create(4);
  EXPECT_EQ(a->fetch_add(0, 5), 0);
  EXPECT_EQ(a->fetch_sub(0, 2), 5);
  EXPECT_EQ(a->fetch_or(1, 0b1010), 0);
  EXPECT_EQ(a->fetch_and(1, 0b0110), 0b1010);
  EXPECT_EQ(a->fetch_xor(1, 0b0011), 0b0010);
  EXPECT_EQ(a->load(1), 0b0001);
  EXPECT_EQ(a->compare_and_swap(0, 3, 9), 3);  // swapped: witness == expected
  EXPECT_EQ(a->compare_and_swap(0, 3, 7), 9);  // not: witness is the value
  EXPECT_EQ(a->get(0), 9);
  EXPECT_EQ(a->exchange(2, -1), 0);
  a->store(3, 12, std::memory_order_release);
  EXPECT_EQ(a->load(3, std::memory_order_acquire), 12);
  EXPECT_EQ(b->fetch_add(0, int64_t{1} << 40), 0);
  EXPECT_EQ(b->compare_and_swap(0, int64_t{1} << 40, -5), int64_t{1} << 40);
  EXPECT_EQ(b->get(0), -5);
}

TEST_F(TypedDataTest, AtomicCountersAcrossThreadsLoseNothing) {
  Persistent<Int64List> counters(heap(), Int64List::create(2));
  constexpr int kThreads = 4, kAdds = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      MutatorScope attach(heap());
      Ref<Int64List> c = counters.get();
      for (int i = 0; i < kAdds; ++i) {
        c->fetch_add(0, 1);
        int64_t seen = c->load(1);
        while (c->compare_and_swap(1, seen, seen + 2) != seen) seen = c->load(1);
      }
    });
  run_native([&] {
    for (auto& t : ts) t.join();
  });
  EXPECT_EQ(counters.get()->get(0), kThreads * kAdds);
  EXPECT_EQ(counters.get()->get(1), 2 * kThreads * kAdds);
}

TEST_F(TypedDataTest, FrozenBuffersRefuseWritesThroughEveryView) {
  auto bytes = Uint8List::create(16);
  auto view = Int64List::view(bytes->buffer(), 0, 2);
  view->set(0, 42);
  freeze(bytes.value());  // freezes the buffer too
  EXPECT_TRUE(is_frozen(bytes->buffer().value()));
  EXPECT_THROW(bytes->set(0, 1), InvalidMutabilityError);
  EXPECT_THROW(view->set(1, 1), InvalidMutabilityError);  // the view itself is not frozen
  EXPECT_THROW(view->fetch_add(0, 1), InvalidMutabilityError);
  EXPECT_THROW(view->compare_and_swap(0, 42, 1), InvalidMutabilityError);
  EXPECT_EQ(view->get(0), 42);
  auto late = Int32List::view(bytes->buffer(), 4, 2);  // a view made after the freeze
  EXPECT_THROW(late->set(0, 1), InvalidMutabilityError);
  EXPECT_THROW(late->exchange(1, 1), InvalidMutabilityError);
  EXPECT_EQ(late->get(1), 0);
  EXPECT_EQ(view->get(0), 42);
}

TEST(TypedDataIsolationTest, AnotherIsolatesBufferIsRefused) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  IsolateScope in_a(a);
  auto xs = Int32List::create(4);
  run_in(b, [&] {
    EXPECT_THROW(xs->set(0, 1), IncorrectDereferenceError);
    EXPECT_THROW(xs->fetch_add(0, 1), IncorrectDereferenceError);
    EXPECT_EQ(xs->get(0), 0);
    // A view this isolate makes over a's buffer is b's object, but its elements are
    // a's bytes: writes through it are refused the same way.
    auto view = Uint8List::view(xs->buffer(), 0, 16);
    EXPECT_THROW(view->set(0, 1), IncorrectDereferenceError);
    EXPECT_THROW(view->compare_and_swap(1, 0, 1), IncorrectDereferenceError);
    EXPECT_EQ(view->get(0), 0);
  });
  xs->set(0, 7);  // a's own thread: fine
  EXPECT_EQ(xs->get(0), 7);
}

}  // namespace
}  // namespace shoal::test
