// Large objects (> 8 KiB) through jemalloc: zeroed, tracked, kept, freed, interior refs.
#if !defined(SHOAL_SANITIZER_BUILD)
#include <jemalloc/jemalloc.h>
#endif

#include <string>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class LargeObjectTest : public HeapTest {};

TEST_F(LargeObjectTest, AllocatedZeroedAndTracked) {
  Ref<ByteArray> big = ByteArray::create(100000);
  EXPECT_EQ(big->length(), 100000u);
  for (size_t i = 0; i < big->length(); ++i) ASSERT_EQ(big->get(i), 0);
  EXPECT_FALSE(heap().impl().pages.contains(big.object())) << "large objects live outside the page space";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.object()) % kObjectAlignment, 0u);
  EXPECT_EQ(heap().stats().large_objects, 1u);
  big->set(99999, 7);
  heap().collect();
  EXPECT_EQ(big->get(99999), 7);
  EXPECT_EQ(heap().stats().large_objects, 1u);
  expect_heap_ok();
}

#if !defined(SHOAL_SANITIZER_BUILD)
// The footprint counts what jemalloc really hands out for a large object - its size
// class, up to a quarter more than asked: counting the request let the memory behind
// large objects pass heap_limit by as much (found by review).
TEST_F(LargeObjectTest, TheFootprintCountsTheAllocatorsSizeClass) {
  for (size_t bytes : {size_t{8300}, size_t{10300}, size_t{16300}, size_t{1} << 20}) {
    const size_t before = heap().stats().large_bytes;
    Ref<ByteArray> a = ByteArray::create(bytes);
    internal::LargeObject* l = internal::LargeObject::of(a.object());
    EXPECT_EQ(l->allocation_bytes, sallocx(l, 0)) << bytes;
    EXPECT_EQ(heap().stats().large_bytes - before, sallocx(l, 0)) << bytes;
  }
}
#endif

#if !defined(SHOAL_SANITIZER_BUILD)
// Near the heap limit, the memory of the large objects a collection freed leaves the
// process after it (LargeObjectSpace::purge_freed): jemalloc kept it resident for its
// decay time (10 s), and churning 8-20 KiB objects under a 16 MiB limit peaked at
// 24-36 MiB of RSS. Far from the limit it stays, for reuse without page faults.
TEST(LargeObjectPurge, NearTheLimitWhatACollectionFreesLeavesTheProcess) {
  const int arena = internal::LargeObjectSpace::arena_index();
  ASSERT_GE(arena, 0);
  auto dirty_pages = [&] {
    uint64_t epoch = 1;
    size_t size = sizeof(epoch);
    mallctl("epoch", &epoch, &size, &epoch, size);  // (refreshes the statistics)
    size_t pages = 0;
    size = sizeof(pages);
    const std::string name = "stats.arenas." + std::to_string(arena) + ".pdirty";
    EXPECT_EQ(mallctl(name.c_str(), &pages, &size, nullptr, 0), 0);
    return pages;
  };
  constexpr size_t kMiB = size_t{1} << 20;
  size_t page = 0;  // jemalloc's page (64 KiB on some AArch64 builds, whatever the system's)
  size_t page_size = sizeof(page);
  ASSERT_EQ(mallctl("arenas.page", &page, &page_size, nullptr, 0), 0);
  for (const size_t limit : {16 * kMiB, 1024 * kMiB}) {
    SCOPED_TRACE(limit / kMiB);
    HeapOptions o;
    o.heap_limit = limit;
    o.min_gc_trigger = size_t{1} << 30;  // no paced cycle
    Heap heap(o);
    MutatorScope attach(heap);
    in_own_frame([] {
      for (size_t bytes = 0; bytes < 15 * kMiB; bytes += 20000) (void)ByteArray::create(20000);
    });
    clobber_stack();
    heap.collect();
    ASSERT_LT(heap.stats().large_bytes, kMiB) << "the collection freed them";
    if (limit == 16 * kMiB) {
      EXPECT_EQ(dirty_pages(), 0u);
    } else {
      EXPECT_GT(dirty_pages(), 10 * kMiB / page);
    }
  }
}
#endif

TEST_F(LargeObjectTest, CardsOnlyWithGenerations) {
  // With generations the barrier remembers a large object by 512-byte card, two sets of
  // one byte each after the object; without, there is nothing to remember and no card.
  for (bool generational : {true, false}) {
    HeapOptions o;
    o.generational = generational;
    o.min_gc_trigger = size_t{1} << 30;
    make_heap(o);
    const size_t before = heap().stats().large_bytes;
    Ref<RefArray> big = RefArray::create(100000);
    internal::LargeObject* l = internal::LargeObject::of(big.object());
    EXPECT_EQ(l->card_count, generational ? internal::LargeObject::cards_for(l->object_bytes) : 0u);
    EXPECT_EQ((big.object()->header_word() & header::kCarded) != 0, generational);
    EXPECT_EQ(heap().stats().large_bytes - before,
              internal::LargeObjectSpace::allocation_size(l->object_bytes, generational));
    EXPECT_EQ(l->allocation_bytes, internal::LargeObjectSpace::allocation_size(l->object_bytes, generational));
    big->set(99999, Value::from_object(make<Node>().object()));
    heap().collect();
    EXPECT_TRUE(big->get(99999).is_object());
    expect_heap_ok();
  }
}

TEST_F(LargeObjectTest, UnreferencedLargeObjectsAreFreed) {
  HeapOptions o;
  o.min_gc_trigger = size_t{1} << 30;  // no paced collection while they are created
  make_heap(o);
  in_own_frame([&] {
    for (int i = 0; i < 50; ++i) ByteArray::create(1 << 20);
  });
  clobber_stack();
  const size_t before = heap().stats().large_bytes;
  heap().collect();
  const GcStats s = heap().stats();
  EXPECT_GE(before, size_t{50} << 20);
  EXPECT_LE(s.large_objects, 2u);
  EXPECT_LT(s.large_bytes, before / 10);
  expect_heap_ok();
}

TEST_F(LargeObjectTest, InteriorPointerOnStackKeepsItAlive) {
  HiddenPtr hidden;
  volatile uint8_t* interior = nullptr;
  in_own_frame([&] {
    Ref<ByteArray> big = ByteArray::create(50000);
    big->set(40000, 9);
    hidden = HiddenPtr(big.object());
    interior = big->data() + 40000;
  });
  clobber_stack();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  EXPECT_EQ(*interior, 9);
  expect_heap_ok();
}

TEST_F(LargeObjectTest, ReferencedFromSmallObjectSurvives) {
  Ref<RefArray> holder = RefArray::create(3);
  in_own_frame([&] {
    for (size_t i = 0; i < 3; ++i) {
      Ref<RefArray> big = RefArray::create(5000);  // 40 KB of slots
      big->set(4999, Value::from_int(static_cast<int64_t>(i)));
      holder->set(i, big.value());
    }
  });
  clobber_stack();
  heap().collect();
  for (size_t i = 0; i < 3; ++i) {
    auto big = Ref<RefArray>::from_value(holder->get(i));
    ASSERT_TRUE(big);
    EXPECT_EQ(big->get(4999).as_int(), static_cast<int64_t>(i));
  }
  expect_heap_ok();
}

}  // namespace
}  // namespace shoal::test
