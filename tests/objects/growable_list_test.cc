// GrowableList: every operation single-threaded, errors, iteration and
// ConcurrentModificationError, the mutation checks (frozen, foreign), collections
// (elements survive, removed ones are freed, holes never appear), copy and transfer.
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

Value I(int64_t v) { return Value::from_int(v); }

std::vector<int64_t> ints(const GrowableList& l) {
  std::vector<int64_t> out;
  for (Value v : l) out.push_back(v.as_int());
  return out;
}

using GrowableListTest = VerifiedHeapTest;

TEST_F(GrowableListTest, AddGetSetLengthAndGrowth) {
  Ref<GrowableList> l = GrowableList::create();
  EXPECT_TRUE(l->empty());
  EXPECT_EQ(l->capacity(), 0u);
  for (int64_t i = 0; i < 1000; ++i) l->add(I(i));
  EXPECT_EQ(l->length(), 1000u);
  EXPECT_GE(l->capacity(), 1000u);
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(l->get(i).as_int(), i);
  l->set(500, I(-1));
  EXPECT_EQ((*l)[500].as_int(), -1);
  l->set(3, Value::null());  // null is an element like any other
  EXPECT_TRUE(l->get(3).is_null());
  EXPECT_EQ(GrowableList::create(10)->capacity(), 10u);
}

TEST_F(GrowableListTest, RangeErrors) {
  Ref<GrowableList> l = GrowableList::create(4);
  EXPECT_THROW(l->get(0), RangeError);
  EXPECT_THROW(l->set(0, I(1)), RangeError);
  EXPECT_THROW(l->remove_last(), RangeError);
  EXPECT_THROW(l->remove_at(0), RangeError);
  EXPECT_THROW(l->insert(1, I(1)), RangeError);
  l->add(I(1));
  EXPECT_THROW(l->get(1), RangeError);  // within capacity, beyond the length
  EXPECT_THROW(l->get(SIZE_MAX), RangeError);
  EXPECT_EQ(l->length(), 1u);
}

TEST_F(GrowableListTest, InsertRemoveAtRemoveLastClearAddAll) {
  Ref<GrowableList> l = GrowableList::create();
  l->add_all({I(1), I(2), I(4)});
  l->insert(2, I(3));
  l->insert(0, I(0));
  l->insert(5, I(5));
  EXPECT_EQ(ints(*l), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(l->remove_at(1).as_int(), 1);
  EXPECT_EQ(l->remove_last().as_int(), 5);
  EXPECT_EQ(ints(*l), (std::vector<int64_t>{0, 2, 3, 4}));
  l->add_all(*l);  // itself: its elements at the call, once
  EXPECT_EQ(ints(*l), (std::vector<int64_t>{0, 2, 3, 4, 0, 2, 3, 4}));
  Ref<GrowableList> other = GrowableList::create();
  other->add_all(*l);
  EXPECT_EQ(other->length(), 8u);
  l->clear();
  EXPECT_EQ(l->length(), 0u);
  EXPECT_THROW(l->get(0), RangeError);
  l->add(I(9));
  EXPECT_EQ(ints(*l), (std::vector<int64_t>{9}));
  EXPECT_EQ(other->length(), 8u);
}

TEST_F(GrowableListTest, RemovedPositionsHoldHolesNeverElementsOrNulls) {
  Ref<GrowableList> l = GrowableList::create();
  for (int i = 0; i < 8; ++i) l->add(make<Node>().value());
  l->remove_last();
  l->remove_at(0);
  // The storage beyond the length: holes only (no stale reference kept alive).
  struct Inspect final : SlotVisitor {
    std::vector<uint64_t> raw;
    void visit(const Slot* s, size_t n) override {
      for (size_t i = 0; i < n; ++i) raw.push_back(s[i].load().raw());
    }
  } storage_slots, list_slots;
  default_object_model().trace(l.object(), list_slots);
  ASSERT_EQ(list_slots.raw.size(), 1u);
  default_object_model().trace(Value::from_raw(list_slots.raw[0]).as_object(), storage_slots);
  ASSERT_EQ(storage_slots.raw.size(), l->capacity());
  for (size_t i = 0; i < storage_slots.raw.size(); ++i) {
    if (i < l->length()) EXPECT_TRUE(Value::from_raw(storage_slots.raw[i]).is_object()) << i;
    else EXPECT_EQ(storage_slots.raw[i], internal::kHoleBits) << i;
  }
  EXPECT_FALSE(internal::kHole.is_object());
  EXPECT_FALSE(internal::kHole.is_null());
  EXPECT_FALSE(internal::kHole.is_int());
}

TEST_F(GrowableListTest, ElementsSurviveCollectionsAndRemovedOnesAreFreed) {
  Persistent<GrowableList> l(heap(), GrowableList::create());
  HiddenPtr removed;
  in_own_frame([&] {
    for (int i = 0; i < 100; ++i) l.get()->add(make_tree(3).value());
    removed = HiddenPtr(l.get()->remove_last().as_object());
    l.get()->remove_at(10);
  });
  clobber_stack();
  heap().collect();  // verify_after_gc
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), removed));
  ASSERT_EQ(l.get()->length(), 98u);
  for (Value v : *l.get()) EXPECT_EQ(check_tree(Ref<Node>::from_value(v), 3), 15);
  expect_heap_ok();
}

TEST_F(GrowableListTest, IterationThrowsConcurrentModificationError) {
  Ref<GrowableList> l = GrowableList::create();
  l->add_all({I(1), I(2), I(3)});
  int64_t sum = 0;
  for (Value v : *l) sum += v.as_int();
  EXPECT_EQ(sum, 6);
  auto iterate_and = [&](auto mutate) {
    for (Value v : *l) {
      (void)v;
      mutate();
    }
  };
  EXPECT_THROW(iterate_and([&] { l->add(I(4)); }), ConcurrentModificationError);
  EXPECT_THROW(iterate_and([&] { l->remove_last(); }), ConcurrentModificationError);
  EXPECT_THROW(iterate_and([&] { l->insert(0, I(0)); }), ConcurrentModificationError);
  EXPECT_THROW(iterate_and([&] { l->clear(); }), ConcurrentModificationError);  // at the end test
  l->add_all({I(1), I(2)});
  EXPECT_NO_THROW(iterate_and([&] { l->set(0, I(7)); }));  // not a structural change
}

TEST_F(GrowableListTest, FrozenListsRefuseEveryMutationAndStayReadable) {
  Ref<GrowableList> l = GrowableList::create();
  l->add_all({I(1), I(2), I(3)});
  freeze(l.value());
  EXPECT_TRUE(is_frozen(l.value()));
  EXPECT_THROW(l->add(I(4)), InvalidMutabilityError);
  EXPECT_THROW(l->add_all({I(4)}), InvalidMutabilityError);
  EXPECT_THROW(l->add_all(*l), InvalidMutabilityError);
  EXPECT_THROW(l->set(0, I(4)), InvalidMutabilityError);
  EXPECT_THROW(l->insert(0, I(4)), InvalidMutabilityError);
  EXPECT_THROW(l->remove_last(), InvalidMutabilityError);
  EXPECT_THROW(l->remove_at(0), InvalidMutabilityError);
  EXPECT_THROW(l->clear(), InvalidMutabilityError);
  EXPECT_EQ(ints(*l), (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(GrowableListTest, FreezeWhileFullMustNotLetAGrowingAddThrough) {
  // add() that grows allocates (a safepoint) between its check and its store; the
  // store is re-checked after the growth. Freeze the list from a finalizer-free path:
  // a second thread freezes while this one is adding across growth points.
  Persistent<GrowableList> l(heap(), GrowableList::create());
  std::atomic<bool> frozen{false};
  std::thread t([&] {
    MutatorScope attach(heap());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    freeze(l.get().value());
    frozen = true;
  });
  size_t added = 0;
  try {
    for (int i = 0; i < 10'000'000; ++i) {
      l.get()->add(I(i));
      ++added;
    }
  } catch (const InvalidMutabilityError&) {
  }
  run_native([&] { t.join(); });
  ASSERT_TRUE(frozen);
  // Every add that returned is in the list; nothing after the freeze got in.
  EXPECT_EQ(l.get()->length(), added);
  EXPECT_THROW(l.get()->add(I(0)), InvalidMutabilityError);
}

TEST(GrowableListIsolationTest, AnotherIsolatesListIsRefusedAndCopiesAndTransfersWork) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<GrowableList> l = GrowableList::create();
  for (int i = 0; i < 20; ++i) l->add(make<Node>().value());
  l->remove_last();
  run_in(b, [&] {
    EXPECT_THROW(l->add(I(1)), IncorrectDereferenceError);
    EXPECT_THROW(l->remove_last(), IncorrectDereferenceError);
    EXPECT_THROW(l->set(0, I(1)), IncorrectDereferenceError);
    EXPECT_THROW(l->clear(), IncorrectDereferenceError);
  });
  run_shared(group, [&] { EXPECT_THROW(l->add(I(1)), IsolationError); });
  EXPECT_EQ(l->length(), 19u);
  inbox.send_port().send(l.value(), SendMode::kCopy);
  inbox.send_port().send(l.value(), SendMode::kTransfer);
  run_in(b, [&] {
    Ref<GrowableList> copy = cast<GrowableList>(inbox.receive());
    Ref<GrowableList> moved = cast<GrowableList>(inbox.receive());
    EXPECT_NE(copy, moved);
    EXPECT_EQ(moved, l);
    for (Ref<GrowableList> x : {copy, moved}) {
      ASSERT_EQ(x->length(), 19u);
      for (Value v : *x) EXPECT_TRUE(cast<Node>(v));
      x->add(I(5));  // b's now
      EXPECT_EQ(x->remove_last().as_int(), 5);
      x->remove_last();
      EXPECT_EQ(x->length(), 18u);
    }
  });
  EXPECT_THROW(l->add(I(1)), IncorrectDereferenceError);  // transferred away from a
}

TEST(GrowableListIsolationTest, AnUnownedListGrownInsideAnIsolateKeepsItsStorageUnowned) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  ReceivePort inbox(b);
  MutatorScope attach(group.heap());
  Persistent<GrowableList> l(group.heap(), GrowableList::create());  // outside isolates: unowned
  run_in(a, [&] {
    for (int i = 0; i < 100; ++i) l.get()->add(I(i));  // grows from inside a
  });
  run_in(b, [&] {
    for (int i = 0; i < 100; ++i) l.get()->add(I(i));  // b may write it too
    // ...and copy it: its storage is unowned like the list, not a's.
    inbox.send_port().send(l.get().value(), SendMode::kCopy);
    EXPECT_EQ(cast<GrowableList>(inbox.receive())->length(), 200u);
  });
}

}  // namespace
}  // namespace shoal::test
