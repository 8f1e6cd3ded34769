// Roots: locals (conservative), Persistent handles from any thread, global slots.
#include <thread>
#include <vector>

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

TEST_F(RootsTest, PersistentHeldByAnotherThreadKeepsObjectsAlive) {
  // A thread that is NOT attached holds the only reference, through a Persistent.
  Persistent<Node> handle;
  HiddenPtr hidden;
  in_own_frame([&] {
    Ref<Node> list = make_list(1000);
    hidden = HiddenPtr(list.object());
    handle = Persistent<Node>(heap(), list);
  });
  std::thread holder([h = std::move(handle)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(list_length_checked(h.get()), 1000u);  // read after collections
  });
  clobber_stack();
  heap().collect();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  holder.join();  // the handle dies with the thread
  clobber_stack();
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), hidden));
}

TEST_F(RootsTest, PersistentSetAndResetFromAnotherAttachedThread) {
  Persistent<Node> handle(heap(), Ref<Node>());
  HiddenPtr hidden;
  std::thread t([&] {
    MutatorScope attach(heap());
    Ref<Node> n = make<Node>();
    n->value = 77;
    hidden = HiddenPtr(n.object());
    handle.set(n);
  });
  run_native([&] { t.join(); });
  clobber_stack();
  heap().collect();
  ASSERT_TRUE(is_allocated(heap(), hidden));
  EXPECT_EQ(handle->value, 77);
  handle.reset();
  clobber_stack();
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), hidden));
}

TEST_F(RootsTest, GlobalRootSlot) {
  static Slot global;
  heap().add_root(&global);
  HiddenPtr hidden;
  in_own_frame([&] {
    Ref<Node> n = make<Node>();
    hidden = HiddenPtr(n.object());
    global.store_root(n.value());
  });
  clobber_stack();
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), hidden));
  heap().remove_root(&global);
  clobber_stack();
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), hidden));
  global.store_root(Value::null());
  EXPECT_THROW(heap().remove_root(&global), InvalidArgument);
}

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
