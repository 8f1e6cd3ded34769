// The documented races of the builtin collections, each replayed deterministically: one
// thread is stopped at a race point (include/shoal/internal/race_points.h) while
// another runs the conflicting operation, then resumed. Each test fails if the
// protection it names is removed (e.g. remove_last storing null instead of the hole
// marker makes the first test return null). Then the seed's own racing program
// (removeLast against operator[]), free-running, and the deletion barrier of each
// removal while marking runs.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using internal::RacePoint;

Value I(int64_t v) { return Value::from_int(v); }

// Stops the first thread that reaches `point` on a thread marked as the victim, until
// release(). The hook runs inside a collection operation with no safepoint allowed: it
// blocks on plain C++ synchronisation only.
class RaceStop {
 public:
  explicit RaceStop(RacePoint point) {
    state_.point = point;
    instance_ = &state_;
    internal::g_race_hook.store(&hook);
  }
  ~RaceStop() {
    release();
    internal::g_race_hook.store(nullptr);
    instance_ = nullptr;
  }
  static void mark_victim() { victim_ = true; }
  // Waits (GC-safe) until the victim is stopped at the point.
  void wait_until_stopped() {
    run_native([&] {
      std::unique_lock<std::mutex> lock(state_.mu);
      state_.cv.wait(lock, [&] { return state_.stopped; });
    });
  }
  void release() {
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.released = true;
    state_.cv.notify_all();
  }

 private:
  struct State {
    RacePoint point;
    std::mutex mu;
    std::condition_variable cv;
    bool stopped = false, released = false;
  };
  static void hook(RacePoint p) {
    State* s = instance_;
    if (!s || !victim_ || p != s->point) return;
    std::unique_lock<std::mutex> lock(s->mu);
    if (s->stopped) return;  // once
    s->stopped = true;
    s->cv.notify_all();
    s->cv.wait(lock, [&] { return s->released; });
  }
  State state_;
  static inline State* instance_ = nullptr;
  static inline thread_local bool victim_ = false;
};

class CollectionRacesTest : public HeapTest {
 protected:
  // Runs f on a new attached thread marked as the victim; join() waits GC-safe.
  template <class F>
  std::thread victim(F f) {
    return std::thread([this, f] {
      MutatorScope attach(heap());
      RaceStop::mark_victim();
      f();
    });
  }
  static void join(std::thread& t) {
    run_native([&] { t.join(); });
  }
};

Ref<GrowableList> list_of_nodes(int n) {
  Ref<GrowableList> l = GrowableList::create(n);
  for (int i = 0; i < n; ++i) {
    Ref<Node> node = make<Node>();
    node->value = i;
    l->add(node.value());
  }
  return l;
}

// get(9) passed its bounds check (length 10) when remove_last removed element 9. The
// read must not return the removed position's null: RangeError, as if it ran after.
TEST_F(CollectionRacesTest, GetBetweenBoundsCheckAndLoadRacingRemoveLast) {
  Persistent<GrowableList> l(heap(), list_of_nodes(10));
  RaceStop stop(RacePoint::kListGetAfterBoundsCheck);
  std::optional<Value> got;
  bool range_error = false;
  std::thread t = victim([&] {
    try {
      got = l.get()->get(9);
    } catch (const RangeError&) {
      range_error = true;
    }
  });
  stop.wait_until_stopped();
  Value removed = l.get()->remove_last();
  EXPECT_EQ(cast<Node>(removed)->value, 9);
  stop.release();
  join(t);
  EXPECT_TRUE(range_error) << "get returned " << (got ? got->raw() : 0) << " for a removed position";
  EXPECT_FALSE(got.has_value());
}

// The same read, but the position was removed and re-filled before the load: the read
// returns the new element (stored at that position), never the gap between.
TEST_F(CollectionRacesTest, GetRacingRemoveLastAndAddReturnsTheNewElement) {
  Persistent<GrowableList> l(heap(), list_of_nodes(10));
  RaceStop stop(RacePoint::kListGetAfterBoundsCheck);
  Value got;
  std::thread t = victim([&] { got = l.get()->get(9); });
  stop.wait_until_stopped();
  l.get()->remove_last();
  Ref<Node> fresh = make<Node>();
  fresh->value = 99;
  l.get()->add(fresh.value());
  stop.release();
  join(t);
  EXPECT_EQ(got, fresh.value());
}

// set(9) passed its bounds check when remove_last removed 9: the value lands beyond the
// length, where it is invisible; the list below the length is untouched.
TEST_F(CollectionRacesTest, SetRacingRemoveLastStoresBeyondTheLength) {
  Persistent<GrowableList> l(heap(), list_of_nodes(10));
  RaceStop stop(RacePoint::kListSetAfterBoundsCheck);
  std::thread t = victim([&] { l.get()->set(9, I(42)); });
  stop.wait_until_stopped();
  l.get()->remove_last();
  stop.release();
  join(t);
  EXPECT_EQ(l.get()->length(), 9u);
  EXPECT_THROW(l.get()->get(9), RangeError);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(cast<Node>(l.get()->get(i))->value, i);
  l.get()->add(I(7));
  EXPECT_EQ(l.get()->get(9).as_int(), 7);
}

// Two unsynchronised writers: add stored its element at 10 but had not raised the
// length when remove_last removed 9 (hole at 9); add then raised the length to 11. The
// hole below the length reads as ConcurrentModificationError - never null - and the list
// stays usable.
TEST_F(CollectionRacesTest, RacingAddAndRemoveLastLeaveAHoleThatIsNeverReturned) {
  Persistent<GrowableList> l(heap(), list_of_nodes(10));
  l.get()->add(I(0));
  l.get()->remove_last();  // capacity for the add without growth
  RaceStop stop(RacePoint::kListAddBeforeLength);
  std::thread t = victim([&] { l.get()->add(I(10)); });
  stop.wait_until_stopped();
  EXPECT_EQ(cast<Node>(l.get()->remove_last())->value, 9);
  stop.release();
  join(t);
  ASSERT_EQ(l.get()->length(), 11u);
  EXPECT_THROW(l.get()->get(9), ConcurrentModificationError);
  EXPECT_THROW(
      {
        for (Value v : *l.get()) (void)v;
      },
      ConcurrentModificationError);
  EXPECT_EQ(l.get()->get(10).as_int(), 10);
  EXPECT_EQ(l.get()->remove_last().as_int(), 10);
  EXPECT_THROW(l.get()->remove_last(), ConcurrentModificationError);  // drops the hole
  EXPECT_EQ(l.get()->length(), 9u);
  l.get()->add(I(5));
  size_t n = 0;
  for (Value v : *l.get()) n += !v.is_null();
  EXPECT_EQ(n, 10u);
}

// Growth copied the elements but has not published the new storage when another
// thread writes the old one: readers see old-storage elements throughout; afterwards
// every position holds an element (the racing set may be lost), and no hole appears.
TEST_F(CollectionRacesTest, GrowthRacingReadersAndAWriterOfTheOldStorage) {
  Persistent<GrowableList> l(heap(), list_of_nodes(8));
  ASSERT_EQ(l.get()->capacity(), 8u);
  RaceStop stop(RacePoint::kListGrowAfterCopy);
  std::thread t = victim([&] { l.get()->add(I(8)); });
  stop.wait_until_stopped();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(cast<Node>(l.get()->get(i))->value, i);
  l.get()->set(0, I(-1));  // into the storage being replaced
  stop.release();
  join(t);
  ASSERT_EQ(l.get()->length(), 9u);
  const Value first = l.get()->get(0);
  EXPECT_TRUE(first == I(-1) || (first.is_object() && cast<Node>(first)->value == 0));
  for (int i = 1; i < 8; ++i) EXPECT_EQ(cast<Node>(l.get()->get(i))->value, i);
  EXPECT_EQ(l.get()->get(8).as_int(), 8);
}

// remove_at(2) lowered the length but has not written the hole at the old last position
// when a reader reads every position: each read is an element that was stored at that
// position (the moved-down ones) or RangeError.
TEST_F(CollectionRacesTest, ReadersDuringRemoveAtSeeMovedElementsOrRangeErrors) {
  Persistent<GrowableList> l(heap(), list_of_nodes(6));
  RaceStop stop(RacePoint::kListRemoveAfterLength);
  std::thread t = victim([&] { EXPECT_EQ(cast<Node>(l.get()->remove_at(2))->value, 2); });
  stop.wait_until_stopped();
  std::vector<int64_t> seen;
  for (int i = 0; i < 6; ++i) {
    try {
      seen.push_back(cast<Node>(l.get()->get(i))->value);
    } catch (const RangeError&) {
      seen.push_back(-1);
    }
  }
  stop.release();
  join(t);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 3, 4, 5, -1}));
}

// An iteration between its modification check and its read, while another thread adds:
// the next step throws ConcurrentModificationError.
TEST_F(CollectionRacesTest, IterationRacingAddThrowsAtTheNextStep) {
  Persistent<GrowableList> l(heap(), list_of_nodes(3));
  RaceStop stop(RacePoint::kIteratorAfterCheck);
  size_t visited = 0;
  bool cme = false;
  std::thread t = victim([&] {
    try {
      for (Value v : *l.get()) {
        (void)v;
        ++visited;
      }
    } catch (const ConcurrentModificationError&) {
      cme = true;
    }
  });
  stop.wait_until_stopped();
  l.get()->add(I(3));
  stop.release();
  join(t);
  EXPECT_TRUE(cme);
  EXPECT_EQ(visited, 1u);
}

// Map::get read the bucket of k, then k was removed (and set again, in a new entry):
// the lookup returns nothing or a value stored under k - never another key's value.
TEST_F(CollectionRacesTest, MapGetRacingRemoveAndReinsert) {
  for (bool reinsert : {false, true}) {
    Persistent<Map> m(heap(), Map::create());
    for (int i = 0; i < 10; ++i) m.get()->set(I(i), I(i * 100));
    RaceStop stop(RacePoint::kMapGetAfterIndex);
    std::optional<Value> got;
    std::thread t = victim([&] { got = m.get()->get(I(5)); });
    stop.wait_until_stopped();
    EXPECT_EQ(m.get()->remove(I(5))->as_int(), 500);
    if (reinsert) m.get()->set(I(5), I(501));
    stop.release();
    join(t);
    if (got) {
      EXPECT_TRUE(*got == I(501) && reinsert) << got->as_int();
    }
  }
}

// A rehash copied the entries but has not published the new table when another thread
// replaces the value of an existing key in the old one: the two tables share entry
// objects, so the update is not lost.
TEST_F(CollectionRacesTest, MapRehashRacingAValueUpdateKeepsTheUpdate) {
  Persistent<Map> m(heap(), Map::create());
  int n = 0;
  // Fill to the first rehash point (8 entries).
  for (; n < 8; ++n) m.get()->set(I(n), I(n));
  RaceStop stop(RacePoint::kMapRehashAfterCopy);
  std::thread t = victim([&] { m.get()->set(I(100), I(100)); });
  stop.wait_until_stopped();
  m.get()->set(I(3), I(333));
  stop.release();
  join(t);
  EXPECT_EQ(m.get()->get(I(3))->as_int(), 333);
  EXPECT_EQ(m.get()->get(I(100))->as_int(), 100);
  EXPECT_EQ(m.get()->size(), 9u);
}

// A rehash allocated its new table (a safepoint) sized for the entries it saw, and
// another thread then added more than that table holds: the rehash must size again,
// not drop the entries that do not fit.
TEST_F(CollectionRacesTest, MapRehashRacingWritersDuringItsAllocationLosesNoEntry) {
  Persistent<Map> m(heap(), Map::create());
  for (int i = 0; i < 8; ++i) m.get()->set(I(i), I(i));  // full: the next new key rehashes
  RaceStop stop(RacePoint::kMapRehashAfterAllocate);
  std::thread t = victim([&] { m.get()->set(I(100), I(100)); });  // sized for 9 entries
  stop.wait_until_stopped();
  for (int i = 8; i < 40; ++i) m.get()->set(I(i), I(i));
  stop.release();
  join(t);
  for (int i = 0; i < 40; ++i) {
    const std::optional<Value> v = m.get()->get(I(i));
    ASSERT_TRUE(v.has_value()) << "key " << i << " lost";
    EXPECT_EQ(v->as_int(), i);
  }
  EXPECT_EQ(m.get()->get(I(100))->as_int(), 100);
  EXPECT_EQ(m.get()->size(), 41u);
  size_t iterated = 0;
  m.get()->for_each([&](Value, Value) { ++iterated; });
  EXPECT_EQ(iterated, 41u);
}

// remove_last read the length and the storage when another thread's add grew the list
// (the old storage is filled with holes): remove_last must remove the last element of
// the current storage, not drop a position and throw.
TEST_F(CollectionRacesTest, RemoveLastRacingGrowthRemovesTheLastElement) {
  Persistent<GrowableList> l(heap(), list_of_nodes(8));
  ASSERT_EQ(l.get()->capacity(), 8u);
  RaceStop stop(RacePoint::kListRemoveAfterStorageLoad);
  std::optional<Value> removed;
  bool cme = false;
  std::thread t = victim([&] {
    try {
      removed = l.get()->remove_last();
    } catch (const ConcurrentModificationError&) {
      cme = true;
    }
  });
  stop.wait_until_stopped();
  l.get()->add(I(8));  // grows: the storage the victim holds is retired
  ASSERT_GT(l.get()->capacity(), 8u);
  stop.release();
  join(t);
  EXPECT_FALSE(cme);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(*removed, I(8));
  ASSERT_EQ(l.get()->length(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(cast<Node>(l.get()->get(i))->value, i);
}

// The seed's program (Dart proposal, "dart:* race safety"): operator[] racing
// removeLast on one list. Here free-running with collections: readers must only ever see
// an element (a Node with its index as value) or RangeError.
TEST_F(CollectionRacesTest, SeedProgramRemoveLastAgainstIndexOperator) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.min_gc_trigger = 1 << 20;
  make_heap(o);
  constexpr int kLength = 64;
  Persistent<GrowableList> list(heap(), list_of_nodes(kLength));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, range_errors{0}, bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      MutatorScope attach(heap());
      Ref<GrowableList> l = list.get();
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t len = l->length();
        const size_t index = len == 0 ? 0 : len - 1;  // the element removeLast takes
        try {
          Value v = (*l)[index];
          Ref<Node> n = try_cast<Node>(v);
          if (!n || n->value != static_cast<int64_t>(index)) bad.fetch_add(1);
          reads.fetch_add(1, std::memory_order_relaxed);
        } catch (const RangeError&) {
          range_errors.fetch_add(1, std::memory_order_relaxed);
        }
        safepoint();
      }
    });
  // The writer: removeLast, then put an equal element back (allocating: collections run).
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    for (int k = 0; k < 100; ++k) {
      Ref<GrowableList> l = list.get();
      l->remove_last();
      Ref<Node> n = make<Node>();
      n->value = kLength - 1;
      l->add(n.value());
    }
  }
  stop = true;
  run_native([&] {
    for (auto& t : readers) t.join();
  });
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(heap().stats().collections, 0u);
  expect_heap_ok();
}

// Removals delete references: while marking runs, the removed element must be shaded
// (here it moves into an already-traced object; without the barrier it is freed).
enum class Removal { kRemoveLast, kRemoveAt, kSet, kClear, kMapRemove, kMapReplace };

class CollectionBarrierTest : public ::testing::TestWithParam<Removal> {};

TEST_P(CollectionBarrierTest, TheRemovedElementIsShadedWhileMarking) {
  const bool is_map = GetParam() == Removal::kMapRemove || GetParam() == Removal::kMapReplace;
  auto build = [is_map](Ref<Node> element) {
    Value collection;
    if (is_map) {
      Ref<Map> m = Map::create();
      m->set(I(1), element.value());
      collection = m.value();
    } else {
      Ref<GrowableList> l = GrowableList::create();
      l->add(I(0));
      l->add(element.value());
      collection = l.value();
    }
    Ref<RefArray> holder = RefArray::create(1);
    holder->set(0, collection);
    return holder.value();
  };
  auto take = [](Value holder) {
    Value c = Ref<RefArray>::from_value(holder)->get(0);
    Value element;
    switch (GetParam()) {
      case Removal::kRemoveLast:
        element = cast<GrowableList>(c)->remove_last();
        break;
      case Removal::kRemoveAt:
        element = cast<GrowableList>(c)->remove_at(1);
        break;
      case Removal::kSet:
        element = cast<GrowableList>(c)->get(1);
        cast<GrowableList>(c)->set(1, I(0));
        break;
      case Removal::kClear:
        element = cast<GrowableList>(c)->get(1);
        cast<GrowableList>(c)->clear();
        break;
      case Removal::kMapRemove:
        element = *cast<Map>(c)->remove(I(1));
        break;
      case Removal::kMapReplace:
        element = *cast<Map>(c)->get(I(1));
        cast<Map>(c)->set(I(1), I(0));
        break;
    }
    return cast<Node>(element);
  };
  expect_deleted_value_shaded(build, take);
}

std::string removal_name(const ::testing::TestParamInfo<Removal>& info) {
  static const char* const names[] = {"RemoveLast", "RemoveAt", "Set", "Clear", "MapRemove", "MapReplace"};
  return names[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Removals, CollectionBarrierTest,
                         ::testing::Values(Removal::kRemoveLast, Removal::kRemoveAt, Removal::kSet, Removal::kClear,
                                           Removal::kMapRemove, Removal::kMapReplace),
                         removal_name);

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

// The thread states docs/collections.md lists: creating a collection (an allocation) is
// refused on an unattached thread (NotAttached) and inside run_native
// (ThreadStateError); a swap or removal by an unattached thread while a collection is
// marking is refused (NotAttached) before the slot changes for the atomic swaps.
TEST_F(CollectionRacesTest, ThreadStatesOutsideRunningAreRefused) {
  std::thread([] {
    EXPECT_THROW(GrowableList::create(), NotAttached);
    EXPECT_THROW(Map::create(), NotAttached);
    EXPECT_THROW(Int32List::create(1), NotAttached);
    EXPECT_THROW(AtomicInt64::create(), NotAttached);
    EXPECT_THROW(AtomicRef::create(), NotAttached);
  }).join();
  Persistent<GrowableList> l(heap(), GrowableList::create());
  l.get()->add(I(1));
  run_native([&] {
    EXPECT_THROW(GrowableList::create(), ThreadStateError);
    EXPECT_THROW(Map::create(), ThreadStateError);
  });
  EXPECT_EQ(l.get()->length(), 1u);
}

// Every mutation of every collection, from the states docs/collections.md says refuse
// them: inside run_native and in a handshake operation (ThreadStateError), on an
// unattached thread (NotAttached) - each before anything changes, and the heap verifies.
TEST_F(CollectionRacesTest, EveryMutationOutsideRunningIsRefusedUnchanged) {
  Persistent<GrowableList> list(heap(), list_of_nodes(4));
  Persistent<Map> map(heap(), Map::create());
  map.get()->set(I(1), I(10));
  Persistent<RefArray> array(heap(), RefArray::create(2));
  Persistent<ByteArray> bytes(heap(), ByteArray::create(4));
  Persistent<Int32List> ints(heap(), Int32List::create(2));
  Ref<GrowableList> l = list.get();
  Ref<Map> m = map.get();
  Ref<RefArray> a = array.get();
  Ref<ByteArray> b = bytes.get();
  Ref<Int32List> xs = ints.get();
  const Value element = l->get(0);
  auto refused = [&](auto error) {
    using E = decltype(error);
    EXPECT_THROW(l->add(I(9)), E);
    EXPECT_THROW(l->add_all({I(9), I(9)}), E);
    EXPECT_THROW(l->set(0, I(9)), E);
    EXPECT_THROW(l->insert(0, I(9)), E);
    EXPECT_THROW(l->remove_last(), E);
    EXPECT_THROW(l->remove_at(0), E);
    EXPECT_THROW(l->clear(), E);
    EXPECT_THROW(m->set(I(1), I(11)), E);  // an existing key
    EXPECT_THROW(m->set(I(2), I(20)), E);  // a new key
    EXPECT_THROW(m->remove(I(1)), E);
    EXPECT_THROW(m->clear(), E);
    EXPECT_THROW(a->set(0, element), E);
    EXPECT_THROW(a->exchange(0, element), E);
    EXPECT_THROW(b->set(0, 1), E);
    EXPECT_THROW(xs->set(0, 1), E);
    EXPECT_THROW(xs->fetch_add(0, 1), E);
  };
  run_native([&] {
    refused(ThreadStateError("in run_native"));
    std::thread([&] { refused(NotAttached("unattached")); }).join();
  });
  handshake_all(heap(), [&](size_t) { refused(ThreadStateError("in a handshake operation")); });
  ASSERT_EQ(l->length(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cast<Node>(l->get(i))->value, i);
  EXPECT_EQ(m->size(), 1u);
  EXPECT_EQ(m->get(I(1))->as_int(), 10);
  EXPECT_FALSE(m->get(I(2)).has_value());
  EXPECT_TRUE(a->get(0).is_null());
  EXPECT_EQ(b->get(0), 0);
  EXPECT_EQ(xs->get(0), 0);
  EXPECT_TRUE(heap().verify().ok);
}

TEST(CollectionThreadStateTest, UnattachedSwapsWhileMarkingAreRefusedUnchanged) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.marker_threads = 1;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make<Node>());
  Persistent<RefArray> arr(heap, RefArray::create(1));
  Persistent<AtomicRef> cell(heap, AtomicRef::create());
  Ref<Node> element = make<Node>();
  arr.get()->set(0, element.value());
  cell.get()->store(element.value());
  MarkerPause pause(heap, nullptr);
  heap.start_collection();
  pause.wait_until_held();  // marking runs: the barrier is on
  // (Raw references handed to the unattached thread: the Persistents keep the objects.)
  Ref<RefArray> a = arr.get();
  Ref<AtomicRef> c = cell.get();
  run_native([&] {
    std::thread([&] {
      ASSERT_NE(internal::g_write_barrier_active.load(), 0u);
      EXPECT_THROW(a->exchange(0, Value::null()), NotAttached);
      EXPECT_THROW(a->compare_and_swap(0, element.value(), Value::null()), NotAttached);
      EXPECT_THROW(c->exchange(Value::null()), NotAttached);
      EXPECT_THROW(c->compare_and_swap(element.value(), Value::null()), NotAttached);
    }).join();
  });
  pause.release();
  heap.wait_for_collection();
  EXPECT_EQ(arr.get()->get(0), element.value());
  EXPECT_EQ(cell.get()->load(), element.value());
}

}  // namespace
// The atomics carry no owner, so they skipped the whole store check - the thread part
// too: outside marking, a thread the collector does not stop (unattached, in
// run_native) moved a reference between two cells behind a stop-the-world cycle's
// back, which freed it (a review probe: "slot 0 points at ... not an allocated
// object"). Every mutation is refused now, in every state that cannot touch the heap,
// and nothing changes; loads work.
TEST(CollectionThreadStateTest, AtomicMutationsNeedARunningThread) {
  HeapOptions o;
  o.concurrent_marking = false;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<AtomicRef> cell(heap, AtomicRef::create());
  Persistent<AtomicInt64> counter(heap, AtomicInt64::create(5));
  Persistent<AtomicInt32> small(heap, AtomicInt32::create(7));
  Ref<Node> element = make<Node>();
  cell.get()->store(element.value());
  Ref<AtomicRef> c = cell.get();
  Ref<AtomicInt64> n = counter.get();
  Ref<AtomicInt32> m = small.get();
  auto refused = [&](auto error) {
    using E = decltype(error);
    EXPECT_THROW(c->store(Value::null()), E);
    EXPECT_THROW(c->exchange(Value::null()), E);
    EXPECT_THROW(c->compare_and_swap(element.value(), Value::null()), E);
    EXPECT_THROW(n->store(1), E);
    EXPECT_THROW(n->exchange(1), E);
    EXPECT_THROW(n->compare_and_swap(5, 1), E);
    EXPECT_THROW(n->fetch_add(1), E);
    EXPECT_THROW(n->fetch_sub(1), E);
    EXPECT_THROW(m->fetch_and(1), E);
    EXPECT_THROW(m->fetch_or(1), E);
    EXPECT_THROW(m->fetch_xor(1), E);
    EXPECT_EQ(c->load(), element.value());  // loads need nothing
    EXPECT_EQ(n->load(), 5);
  };
  run_native([&] {
    refused(ThreadStateError("in run_native"));
    std::thread([&] { refused(NotAttached("unattached")); }).join();
  });
  handshake_all(heap, [&](size_t) { refused(ThreadStateError("in a handshake operation")); });
  EXPECT_EQ(cell.get()->load(), element.value());
  EXPECT_EQ(counter.get()->fetch_add(1), 5);  // the running thread: fine
  EXPECT_EQ(small.get()->load(), 7);
}

}  // namespace shoal::test
