// Roots: locals (conservative), Persistent handles from any thread, global slots.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

class RootsTest : public HeapTest {};

TEST_F(RootsTest, ObjectReferencedOnlyFromALocalSurvives) {
  Ref<Node> local = make<Node>();
  local->value = 1234;
  const HiddenPtr hidden(local.object());
  for (int i = 0; i < 3; ++i) heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  EXPECT_EQ(local->value, 1234);
  expect_heap_ok();
}

TEST_F(RootsTest, UnreferencedObjectsAreFreed) {
  std::vector<HiddenPtr> hidden;
  in_own_frame([&] {
    for (int i = 0; i < 1000; ++i) hidden.emplace_back(make<Node>().object());
  });
  clobber_stack();
  heap().collect();
  size_t still = 0;
  for (auto& h : hidden) still += is_allocated(heap(), h);
  // Conservative scanning may retain a stray one or two; not hundreds.
  EXPECT_LE(still, 5u);
  EXPECT_GT(heap().stats().bytes_freed, 900u * 32);
}

// Under conservative stack scanning a stray stack word may retain any one object, so
// the "is freed" checks below use many independent objects and allow a few survivors;
// a root that failed to keep, or to let go, would affect all of them.
constexpr size_t kBatch = 100;
constexpr size_t kStrayAllowance = 5;

size_t count_allocated(Heap& heap, const std::vector<HiddenPtr>& objects) {
  size_t n = 0;
  for (const auto& h : objects) n += is_allocated(heap, h);
  return n;
}

TEST_F(RootsTest, PersistentHeldByAnotherThreadKeepsObjectsAlive) {
  // A thread that is NOT attached holds the only references, through Persistents.
  std::vector<Persistent<Node>> handles;
  std::vector<HiddenPtr> hidden;
  in_own_frame([&] {
    for (size_t i = 0; i < kBatch; ++i) {
      Ref<Node> list = make_list(10);
      hidden.emplace_back(list.object());
      handles.emplace_back(heap(), list);
    }
  });
  std::atomic<bool> checked{false};
  std::thread holder([this, h = std::move(handles), &checked]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // Unattached, the handles can be tested but not dereferenced; attach to read them.
    for (auto& p : h) EXPECT_TRUE(p);
    EXPECT_THROW(h[0].get(), ThreadStateError);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
      MutatorScope attach(heap());  // read after collections
      for (auto& p : h) EXPECT_EQ(list_length_checked(p.get()), 10u);
    }
    checked = true;
  });
  clobber_stack();
  heap().collect();
  heap().collect();
  EXPECT_EQ(count_allocated(heap(), hidden), kBatch);
  run_native([&] { holder.join(); });  // the handles die with the thread's lambda
  EXPECT_TRUE(checked.load());
  clobber_stack();
  heap().collect();
  EXPECT_LE(count_allocated(heap(), hidden), kStrayAllowance);
}

TEST_F(RootsTest, PersistentSetAndResetFromAnotherAttachedThread) {
  std::vector<Persistent<Node>> handles(kBatch);
  for (auto& h : handles) h = Persistent<Node>(heap(), Ref<Node>());
  std::vector<HiddenPtr> hidden(kBatch);
  std::thread t([&] {
    MutatorScope attach(heap());
    for (size_t i = 0; i < kBatch; ++i) {
      Ref<Node> n = make<Node>();
      n->value = static_cast<int64_t>(i);
      hidden[i] = HiddenPtr(n.object());
      handles[i].set(n);
    }
  });
  run_native([&] { t.join(); });
  clobber_stack();
  heap().collect();
  ASSERT_EQ(count_allocated(heap(), hidden), kBatch);
  in_own_frame([&] {
    for (size_t i = 0; i < kBatch; ++i) EXPECT_EQ(handles[i]->value, static_cast<int64_t>(i));
  });
  for (auto& h : handles) h.reset();
  clobber_stack();
  heap().collect();
  EXPECT_LE(count_allocated(heap(), hidden), kStrayAllowance);
}

TEST_F(RootsTest, GlobalRootSlots) {
  static Slot globals[kBatch];
  std::vector<HiddenPtr> hidden;
  for (auto& g : globals) heap().add_root(&g);
  in_own_frame([&] {
    for (auto& g : globals) {
      Ref<Node> n = make<Node>();
      hidden.emplace_back(n.object());
      heap().store_root(&g, n.value());
    }
  });
  clobber_stack();
  heap().collect();
  EXPECT_EQ(count_allocated(heap(), hidden), kBatch);
  for (auto& g : globals) heap().remove_root(&g);
  clobber_stack();
  heap().collect();
  EXPECT_LE(count_allocated(heap(), hidden), kStrayAllowance);
  for (auto& g : globals) heap().store_root(&g, Value::null());
  EXPECT_THROW(heap().remove_root(&globals[0]), InvalidArgument);
}

// A slot may be written before it is registered (store_root works on unregistered
// slots). Registered while a concurrent cycle marks, after the initial pause scanned the
// registered slots, with the only other path to its value on this thread's stack - not
// scanned yet (initial_pause_stack_budget 0; the scans held until the frame is gone):
// registering must shade the value, or the cycle frees what a root holds.
class RegisterWhileMarkingTest : public ::testing::TestWithParam<bool> {};

TEST_P(RegisterWhileMarkingTest, ASlotRegisteredWhileACycleMarksKeepsItsValue) {
  static Slot globals[kBatch];
  HeapOptions o;
  o.generational = GetParam();
  o.initial_pause_stack_budget = 0;  // every stack scanned after the initial pause
  o.poison_freed_memory = true;
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<bool> frame_gone{false};
  internal::Collector& collector = heap.impl().collector;
  collector.set_before_stack_scan_hook_for_testing([&] {
    while (!frame_gone.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
  });
  std::vector<HiddenPtr> hidden;
  in_own_frame([&] {
    for (size_t i = 0; i < kBatch; ++i) {
      Ref<Node> n = make<Node>();
      n->value = static_cast<int64_t>(i);
      hidden.emplace_back(n.object());
      heap.store_root(&globals[i], n.value());  // not a root yet
    }
    ASSERT_EQ(heap.stats().collections, 0u);  // (no cycle has run between the stores and this one)
    heap.start_collection();  // the registered slots are scanned; this stack is not
    ASSERT_TRUE(heap.is_marking());
    for (auto& g : globals) heap.add_root(&g);
  });
  clobber_stack();
  frame_gone = true;
  heap.wait_for_collection();  // (in native: the scanner scans this stack now)
  collector.set_before_stack_scan_hook_for_testing(nullptr);
  const VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_EQ(count_allocated(heap, hidden), kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    Ref<Node> n = Ref<Node>::from_value(globals[i].load());
    EXPECT_EQ(n->value, static_cast<int64_t>(i));
  }
  for (auto& g : globals) {
    heap.remove_root(&g);
    heap.store_root(&g, Value::null());
  }
}

INSTANTIATE_TEST_SUITE_P(Generations, RegisterWhileMarkingTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("generational") : std::string("non_generational");
                         });

TEST_F(RootsTest, InteriorPointerOnTheStackKeepsTheObject) {
  HiddenPtr hidden;
  volatile int64_t* interior = nullptr;
  in_own_frame([&] {
    Ref<Node> n = make<Node>();
    n->value = 5;
    hidden = HiddenPtr(n.object());
    interior = &n->value;
  });
  clobber_stack();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  EXPECT_EQ(*interior, 5);
}

TEST_F(RootsTest, SmallIntegersAreNotReferences) {
  Ref<RefArray> a = RefArray::create(4);
  a->set(0, Value::from_int(-1));
  a->set(1, Value::from_int(Value::kMaxSmallInt));
  heap().collect();
  EXPECT_EQ(a->get(0).as_int(), -1);
  EXPECT_EQ(a->get(1).as_int(), Value::kMaxSmallInt);
  expect_heap_ok();
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

TEST(PersistentLifetimeTest, PersistentOutlivingItsHeapReadsNullAndDoesNotCrash) {
  std::unique_ptr<Persistent<Node>> survivor;
  {
    Heap heap;
    MutatorScope attach(heap);
    survivor = std::make_unique<Persistent<Node>>(heap, make<Node>());
    EXPECT_TRUE(survivor->get());
  }
  EXPECT_FALSE(survivor->get());
  EXPECT_THROW(Persistent<Node> copy(*survivor), InvalidArgument);
  survivor.reset();  // no crash, no touch of the dead heap
}

}  // namespace
}  // namespace shoal::test
