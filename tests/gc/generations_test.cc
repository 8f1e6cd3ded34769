// Generations without moving (gc/generations.cc): sticky mark bits, the young header
// bit and the remembered set. Every test runs with the verifier after each cycle, which
// checks the generational invariant (an old object holding a young reference is on the
// remembered set) besides reachability.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/marker.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

class GenerationsTest : public ::testing::Test {
 protected:
  static HeapOptions options() {
    HeapOptions o;
    o.verify_after_gc = true;
    o.min_gc_trigger = size_t{64} << 20;  // only the cycles the tests start
    return o;
  }
  static CycleRecord run_cycle(Heap& heap, CollectionScope scope) {
    heap.start_collection(scope);
    heap.wait_for_collection();
    return heap.stats().recent.back();
  }
  static CycleRecord young_cycle(Heap& heap) {
    CycleRecord r = run_cycle(heap, CollectionScope::kYoung);
    EXPECT_TRUE(r.young) << "marks were sticky: the cycle should have been young";
    return r;
  }
  static CycleRecord full_cycle(Heap& heap) {
    CycleRecord r = run_cycle(heap, CollectionScope::kFull);
    EXPECT_FALSE(r.young);
    return r;
  }
  static void expect_ok(Heap& heap) {
    const VerifyReport r = heap.verify();  // (also finishes the lazy sweep)
    EXPECT_TRUE(r.ok) << r.summary();
  }
  // Holds the stack scans of the cycle started next (with initial_pause_stack_budget 0
  // every stack is scanned after the initial pause), so that it keeps marking until
  // release() - or the end of the scope, should an assertion return early.
  class CycleHeldOpen {
   public:
    explicit CycleHeldOpen(Heap& heap) : collector_(heap.impl().collector) {
      collector_.set_before_stack_scan_hook_for_testing([this] {
        while (!released_.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      });
    }
    ~CycleHeldOpen() {
      release();
      collector_.set_before_stack_scan_hook_for_testing(nullptr);
    }
    CycleHeldOpen(const CycleHeldOpen&) = delete;
    CycleHeldOpen& operator=(const CycleHeldOpen&) = delete;
    void release() { released_ = true; }

   private:
    internal::Collector& collector_;
    std::atomic<bool> released_{false};
  };
  // Torture tests run until both kinds of cycle have run a few times (torture cycles
  // wait for the marker thread, so how many a fixed number of rounds gets depends on
  // scheduling).
  static bool both_kinds_of_cycle_ran(Heap& heap) {
    const GcStats s = heap.stats();
    return s.young_collections >= 20 && s.collections - s.young_collections >= 5;
  }
  // A chain of `depth` fresh Nodes linked through `left`, each valued `value`.
  static Ref<Node> chain(int depth, int64_t value) {
    Ref<Node> head;
    for (int d = 0; d < depth; ++d) {
      Ref<Node> n = make<Node>();
      n->value = value;
      n.set(&Node::left, head);
      head = n;
    }
    return head;
  }
  static bool young(const Object* o) { return o->has_tag(header::kYoungBits); }  // (newborn too)
  static bool remembered(const Object* o) { return o->has_tag(header::kRememberedBits); }
  static bool aged(const Object* o) { return o->has_tag(header::kAgedBits); }
  // How many of `objects` are still allocated (tests count many: a stale conservative
  // word - a sanitizer build's frame layout - may keep one or two).
  static size_t count_allocated(Heap& heap, const std::vector<HiddenPtr>& objects) {
    size_t n = 0;
    for (const HiddenPtr& p : objects) n += is_allocated(heap, p) ? 1 : 0;
    return n;
  }
};

// With aging (the default) a young object is old once it survives its second young
// cycle; without, its first.
TEST_F(GenerationsTest, NewObjectsAreYoungAndSurvivorsOld) {
  for (const bool aging : {true, false}) {
    HeapOptions o = options();
    o.aging = aging;
    Heap heap(o);
    MutatorScope attach(heap);
    Persistent<Node> kept(heap, make<Node>());
    EXPECT_TRUE(young(kept.get().object()));
    EXPECT_FALSE(aged(kept.get().object()));
    young_cycle(heap);
    expect_ok(heap);
    if (aging) {
      EXPECT_TRUE(young(kept.get().object())) << "one young cycle survived: still young";
      EXPECT_TRUE(aged(kept.get().object()));
      EXPECT_FALSE(internal::Marker::is_marked(heap.impl(), kept.get().object()));
      young_cycle(heap);
      expect_ok(heap);
    }
    EXPECT_FALSE(young(kept.get().object())) << "a survivor is old (aging " << aging << ")";
    EXPECT_FALSE(aged(kept.get().object()));
    EXPECT_TRUE(internal::Marker::is_marked(heap.impl(), kept.get().object()));
    Ref<Node> fresh = make<Node>();
    EXPECT_TRUE(young(fresh.object()));
    EXPECT_EQ(heap.stats().young_collections, aging ? 2u : 1u);
  }
}

TEST_F(GenerationsTest, OffMeansNoYoungBitsAndOnlyFullCycles) {
  HeapOptions o = options();
  o.generational = false;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> kept(heap, make<Node>());
  EXPECT_FALSE(young(kept.get().object()));
  const CycleRecord r = run_cycle(heap, CollectionScope::kYoung);
  EXPECT_FALSE(r.young);
  EXPECT_EQ(heap.stats().young_collections, 0u);
  // No remembered set either: lists grown with plain stores (which remember their
  // holder conservatively when generations are on) leave no entry that no cycle takes.
  for (int i = 0; i < 100; ++i) {
    Ref<GrowableList> list = GrowableList::create();
    for (int j = 0; j < 100; ++j) list->add(Value::from_int(j));
  }
  EXPECT_EQ(internal::current_thread()->remembered.size(), 0u);
  expect_ok(heap);
}

// start_collection's scope from each thread state: unattached and inside run_native it
// is refused with the usual typed errors; while a cycle runs a young request starts
// nothing (the running cycle serves it); in a finalizer (run by run_finalizers on an
// attached, running thread) it works.
TEST_F(GenerationsTest, ARequestedYoungCycleFromEachThreadState) {
  Heap heap(options());
  std::thread([&] { EXPECT_THROW(heap.start_collection(CollectionScope::kYoung), NotAttached); }).join();
  MutatorScope attach(heap);
  run_native([&] { EXPECT_THROW(heap.start_collection(CollectionScope::kYoung), ThreadStateError); });
  heap.start_collection(CollectionScope::kFull);
  const uint64_t during = heap.stats().collections;
  heap.start_collection(CollectionScope::kYoung);  // a cycle is (probably) still marking
  heap.wait_for_collection();
  EXPECT_LE(heap.stats().collections, during + 2);
  int ran = 0;  // (several objects: a conservative false root may keep one)
  in_own_frame([&] {
    for (int i = 0; i < 10; ++i)
      heap.add_finalizer(make<Node>().value(), [&] {
        heap.start_collection(CollectionScope::kYoung);
        heap.wait_for_collection();
        ++ran;
      });
  });
  clobber_stack();
  young_cycle(heap);
  heap.run_finalizers();
  EXPECT_GE(ran, 1);
  expect_ok(heap);
}

TEST_F(GenerationsTest, TheBarrierRemembersOldHoldersOfYoungReferencesOnly) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> old_a(heap, make<Node>()), old_b(heap, make<Node>()), old_c(heap, make<Node>());
  full_cycle(heap);
  ASSERT_FALSE(young(old_a.get().object()));
  // Old into old: nothing to remember.
  old_a.get().set(&Node::left, old_b.get());
  EXPECT_FALSE(remembered(old_a.get().object()));
  // Young into young: nothing either.
  Ref<Node> y1 = make<Node>(), y2 = make<Node>();
  y1.set(&Node::left, y2);
  EXPECT_FALSE(remembered(y1.object()));
  // Young into old: remembered, once.
  old_a.get().set(&Node::right, y1);
  EXPECT_TRUE(remembered(old_a.get().object()));
  EXPECT_EQ(internal::current_thread()->remembered.size(), 1u);
  old_a.get().set(&Node::right, y2);
  EXPECT_EQ(internal::current_thread()->remembered.size(), 1u);
  // The atomic stores take the same barrier.
  old_b.get().compare_and_swap(&Node::left, Ref<Node>(), y1);
  EXPECT_TRUE(remembered(old_b.get().object()));
  old_c.get().exchange(&Node::left, y2);
  EXPECT_TRUE(remembered(old_c.get().object()));
  EXPECT_EQ(internal::current_thread()->remembered.size(), 3u);
  // A young cycle traces the remembered holders. It keeps y1 and y2 young (aging), so
  // the marker remembers their holders again for the next young cycle, after which
  // nothing is young or remembered.
  CycleRecord r = young_cycle(heap);
  EXPECT_EQ(r.remembered, 3u);
  EXPECT_TRUE(young(y1.object()));
  EXPECT_TRUE(remembered(old_a.get().object()) && remembered(old_b.get().object()) && remembered(old_c.get().object()));
  expect_ok(heap);
  r = young_cycle(heap);
  EXPECT_EQ(r.remembered, 3u);
  EXPECT_FALSE(remembered(old_a.get().object()));
  EXPECT_FALSE(young(y1.object()));
  expect_ok(heap);
}

// The young objects are reachable only through an old object's field: without the
// remembered set the young cycle would free them (the verifier and the values check it).
TEST_F(GenerationsTest, YoungObjectsReachableOnlyFromAnOldObjectSurviveAYoungCycle) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> old(heap, make<Node>());
  full_cycle(heap);
  constexpr int kChain = 100;
  std::vector<HiddenPtr> chain(kChain);
  in_own_frame([&] {
    Ref<Node> head = make<Node>();
    head->value = 0;
    chain[0] = HiddenPtr(head.object());
    Ref<Node> last = head;
    for (int i = 1; i < kChain; ++i) {
      Ref<Node> n = make<Node>();
      n->value = i;
      last.set(&Node::left, n);
      last = n;
      chain[static_cast<size_t>(i)] = HiddenPtr(n.object());
    }
    old.get().set(&Node::left, head);  // the only reference to the chain
  });
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_GE(r.remembered, 1u);
  expect_ok(heap);
  for (const HiddenPtr& p : chain) EXPECT_TRUE(is_allocated(heap, p));
  int i = 0;
  for (Ref<Node> n = old->left.get(); n; n = n->left.get()) EXPECT_EQ(n->value, i++);
  EXPECT_EQ(i, kChain);
}

// Objects allocated while a cycle marks are black for that cycle only (newborn):
// the sweep keeps them unmarked, so they stay young - one that is still reachable
// survives the next young cycle (and is old after it), one that died is freed by it.
TEST_F(GenerationsTest, ObjectsAllocatedWhileACycleMarksAreYoungAfterIt) {
  HeapOptions o = options();
  o.poison_freed_memory = true;
  o.initial_pause_stack_budget = 0;  // the cycle waits for this thread's stack scan (held)
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> kept(heap, Ref<Node>());
  // Counted over many dead newborns: a stale conservative word (another test's, in the
  // same process, or a sanitizer build's frame layout) may keep one or two.
  constexpr size_t kDead = 32;
  std::vector<HiddenPtr> dead_newborns(kDead);
  {
    CycleHeldOpen held(heap);
    heap.start_collection(CollectionScope::kYoung);
    ASSERT_TRUE(heap.is_marking());  // and it goes on marking until released
    in_own_frame([&] {
      Ref<Node> live = make<Node>();
      live->value = 5;
      kept.set(live);
      for (HiddenPtr& p : dead_newborns) p = HiddenPtr(make<Node>().object());
    });
    held.release();
    heap.wait_for_collection();
  }
  expect_ok(heap);
  const Object* live = kept.get().object();
  EXPECT_TRUE(live->has_tag(header::kNewbornBits)) << "allocated while the cycle marked";
  EXPECT_FALSE(internal::Marker::is_marked(heap.impl(), live)) << "a newborn is young after the sweep, not old";
  EXPECT_LT(heap.impl().collector.old_generation_bytes(), size_t{64} << 10);
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_TRUE(young(live) && aged(live)) << "traced by the young cycle once: young still (aging)";
  EXPECT_LE(count_allocated(heap, dead_newborns), 2u) << "dead newborns survived the next young cycle";
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_TRUE(internal::Marker::is_marked(heap.impl(), live)) << "traced by a second young cycle: old now";
  EXPECT_FALSE(live->has_tag(header::kYoungBits));
  EXPECT_EQ(kept->value, 5);
}

// The barrier's marking rule (barriers/write_barrier.h, "While a cycle marks"): a young
// holder the marker has not traced yet - here reachable only from a stack not scanned
// yet - is given a newborn. The marker traces the holder later and finds the newborn
// already marked (black); after the sweep the holder is old and the newborn young, so
// unless the barrier recorded the holder for the next cycle, that cycle would free the
// newborn under it (the verifier reports the missing entry first).
// (Without aging, so that the cycle makes the young holder old: with aging, it would
// take an aged holder, which needs a cycle before this one - that cycle's own newborn
// rule is the same code.)
TEST_F(GenerationsTest, AYoungHolderGivenANewbornWhileACycleMarksIsRememberedForTheNextCycle) {
  HeapOptions o = options();
  o.aging = false;
  o.poison_freed_memory = true;
  o.initial_pause_stack_budget = 0;  // the main thread's stack is scanned after the pause
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> kept(heap, Ref<Node>());
  HiddenPtr newborn_hidden;
  CycleHeldOpen held(heap);  // (released, it lets later cycles through at once)
  in_own_frame([&] {
    Ref<Node> holder = make<Node>();  // young, and only this (unscanned) stack reaches it
    heap.start_collection(CollectionScope::kYoung);
    ASSERT_TRUE(heap.is_marking());
    Ref<Node> newborn = make<Node>();
    newborn->value = 8;
    newborn_hidden = HiddenPtr(newborn.object());
    EXPECT_TRUE(newborn.object()->has_tag(header::kNewbornBits));
    ASSERT_TRUE(young(holder.object())) << "the holder was traced before the store";
    holder.set(&Node::left, newborn);
    EXPECT_TRUE(holder.object()->has_tag(header::kRememberedNextBits)) << "not recorded for the next cycle";
    kept.set(holder);
  });
  held.release();
  heap.wait_for_collection();
  expect_ok(heap);
  EXPECT_TRUE(internal::Marker::is_marked(heap.impl(), kept.get().object())) << "the holder is old";
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_GE(r.remembered, 1u);
  expect_ok(heap);
  EXPECT_TRUE(is_allocated(heap, newborn_hidden));
  ASSERT_TRUE(kept->left.get());
  EXPECT_EQ(kept->left.get()->value, 8);
}

// Counted over many objects: under conservative stack scanning one of them may be kept
// by a stale word (sanitizer builds lay out frames differently); none may be freed early.
TEST_F(GenerationsTest, AYoungCycleFreesYoungGarbageAndKeepsOldGarbageForAFullCycle) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 100;
  std::vector<HiddenPtr> old_garbage(kN), young_garbage(kN);
  Persistent<RefArray> holder(heap, RefArray::create(kN));
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = make<Node>();
      holder->set(i, n.value());
      old_garbage[i] = HiddenPtr(n.object());
    }
  });
  full_cycle(heap);  // they are old now
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) holder->set(i, Value::null());  // old garbage
    for (size_t i = 0; i < kN; ++i) young_garbage[i] = HiddenPtr(make<Node>().object());
  });
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_LE(count_allocated(heap, young_garbage), 5u) << "a young cycle frees dead young objects";
  EXPECT_EQ(count_allocated(heap, old_garbage), kN) << "and does not trace (so cannot free) old ones";
  clobber_stack();  // (is_allocated's frames held addresses)
  full_cycle(heap);
  expect_ok(heap);
  EXPECT_LE(count_allocated(heap, old_garbage), 5u) << "a full cycle frees old garbage";
}

// An old WeakCell pointed at a young target: the weak barrier remembers the cell (it
// has no holder argument: the slow path finds it), so the young cycle clears the slot
// when the target dies - else it would dangle (the verifier reports that).
TEST_F(GenerationsTest, AnOldWeakSlotToAYoungTargetIsClearedWhenTheTargetDies) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kDying = 32;
  Persistent<RefArray> dying(heap, RefArray::create(kDying));
  for (size_t i = 0; i < kDying; ++i) dying->set(i, WeakCell::create(Value::null()).value());
  Persistent<WeakCell> living(heap, WeakCell::create(Value::null()));
  Persistent<Node> keep(heap, Ref<Node>());
  full_cycle(heap);
  auto cell = [&](size_t i) { return Ref<WeakCell>::from_value(dying->get(i)); };
  in_own_frame([&] {
    for (size_t i = 0; i < kDying; ++i) cell(i)->set(make<Node>().value());
    Ref<Node> kept = make<Node>();
    kept->value = 7;
    living->set(kept.value());
    keep.set(kept);
  });
  EXPECT_TRUE(remembered(cell(0).object()));
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  size_t expired = 0;
  for (size_t i = 0; i < kDying; ++i) expired += cell(i)->expired() ? 1 : 0;
  EXPECT_GE(expired, kDying - 2) << "weak slots to dead young targets kept";
  ASSERT_FALSE(living->expired());
  EXPECT_EQ(Ref<Node>::from_value(living->get())->value, 7);
}

TEST_F(GenerationsTest, AnOldEphemeronKeepsItsYoungValueWhileItsOldKeyLives) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 50;
  Persistent<RefArray> keys(heap, RefArray::create(kN));
  Persistent<RefArray> entries(heap, RefArray::create(kN));
  in_own_frame([&] {  // (no reference to a key may stay in this frame)
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> key = make<Node>();
      keys->set(i, key.value());
      entries->set(i, Ephemeron::create(key.value(), Value::null()).value());
    }
  });
  full_cycle(heap);  // keys and ephemerons old
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> v = make<Node>();
      v->value = static_cast<int64_t>(i);
      Ref<Ephemeron>::from_value(entries->get(i))->set_value(v.value());  // young value, old ephemeron
    }
  });
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Ephemeron> e = Ref<Ephemeron>::from_value(entries->get(i));
      ASSERT_FALSE(e->expired()) << i;
      EXPECT_EQ(Ref<Node>::from_value(e->value())->value, static_cast<int64_t>(i));
    }
  });
  // The keys die: a young cycle cannot see it (they are old), a full one clears them.
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) keys->set(i, Value::null());
  });
  clobber_stack();
  young_cycle(heap);
  size_t expired = 0;
  for (size_t i = 0; i < kN; ++i) expired += Ref<Ephemeron>::from_value(entries->get(i))->expired() ? 1 : 0;
  EXPECT_EQ(expired, 0u);
  clobber_stack();
  full_cycle(heap);
  expect_ok(heap);
  for (size_t i = 0; i < kN; ++i) expired += Ref<Ephemeron>::from_value(entries->get(i))->expired() ? 1 : 0;
  EXPECT_GE(expired, kN - 5);
}

TEST_F(GenerationsTest, FinalizersOfDeadYoungObjectsRunAfterAYoungCycle) {
  Heap heap(options());
  MutatorScope attach(heap);
  auto ran = std::make_shared<std::atomic<int>>(0);
  Persistent<Node> old(heap, make<Node>());
  heap.add_finalizer(old.get().value(), [ran] { ran->fetch_add(100); });
  full_cycle(heap);
  in_own_frame([&] {
    for (int i = 0; i < 10; ++i) heap.add_finalizer(make<Node>().value(), [ran] { ran->fetch_add(1); });
  });
  clobber_stack();
  young_cycle(heap);
  heap.run_finalizers();
  EXPECT_GE(ran->load(), 8) << "dead young objects are finalized (a conservative false root may keep one or two)";
  EXPECT_LT(ran->load(), 100) << "the live old object is not";
}

// The verifier catches a broken invariant: an old object given a young reference by a
// store that bypassed the barrier.
TEST_F(GenerationsTest, TheVerifierReportsAnOldObjectMissingFromTheRememberedSet) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> old(heap, make<Node>());
  full_cycle(heap);
  Ref<Node> y = make<Node>();
  internal::SlotAccess::store(old->left.slot(), y.value());  // no barrier
  VerifyReport r = heap.verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("not on the remembered set"), std::string::npos) << r.summary();
  old.get().set(&Node::left, y);  // through the barrier: remembered
  r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

// Aging (gc/generations.cc, "Aging"): a structure alive at its first young cycle but
// dead before its second is freed by that second young cycle. Without aging the first
// cycle made it old, and only a full cycle frees it.
TEST_F(GenerationsTest, AgingFreesAStructureThatDiesBeforeItsSecondYoungCycle) {
  for (const bool aging : {true, false}) {
    SCOPED_TRACE(aging ? "aging" : "no aging");
    HeapOptions o = options();
    o.aging = aging;
    Heap heap(o);
    MutatorScope attach(heap);
    // Twenty lists of 1000 nodes, their heads counted: a stale conservative word (a
    // sanitizer build's frame layout) may keep a node and what follows it, so one such
    // word keeps at most one head.
    constexpr int kLists = 20, kNodesPerList = 1000, kNodes = kLists * kNodesPerList;
    Persistent<RefArray> holder(heap, RefArray::create(kLists));
    std::vector<HiddenPtr> sample;
    in_own_frame([&] {
      for (size_t i = 0; i < kLists; ++i) {
        Ref<Node> list = chain(kNodesPerList, 3);
        sample.push_back(HiddenPtr(list.object()));
        holder->set(i, list.value());
      }
    });
    clobber_stack();
    young_cycle(heap);  // the list is alive: kept young (aging) or made old
    expect_ok(heap);
    const size_t old_after_first = heap.impl().collector.old_generation_bytes();
    EXPECT_EQ(old_after_first < size_t{kNodes} * sizeof(Node), aging) << old_after_first;
    for (size_t i = 0; i < kLists; ++i) holder->set(i, Value::null());  // dead now
    clobber_stack();
    young_cycle(heap);
    expect_ok(heap);
    if (aging)
      EXPECT_LE(count_allocated(heap, sample), 2u) << "the second young cycle frees it";
    else
      EXPECT_EQ(count_allocated(heap, sample), sample.size()) << "old garbage: a young cycle cannot free it";
    clobber_stack();
    full_cycle(heap);
    expect_ok(heap);
    EXPECT_LE(count_allocated(heap, sample), 2u) << "a full cycle frees it either way";
  }
}

// The young objects are reachable only through an old object's field, stored there
// before the first young cycle, which keeps them young (aging): the remembered entry
// the barrier made is consumed by that cycle, so unless its marker remembers the
// holder again the second young cycle frees them under it (the verifier, run after
// every cycle, reports the missing entry first).
TEST_F(GenerationsTest, AnOldHolderOfObjectsKeptYoungIsRememberedAgainByTheMarker) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> old(heap, make<Node>());
  full_cycle(heap);
  constexpr int kChain = 200;
  HiddenPtr last;
  in_own_frame([&] {
    Ref<Node> c = chain(kChain, 11);
    last = HiddenPtr(c.object());
    old.get().set(&Node::left, c);  // the only reference to the chain
  });
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_TRUE(young(old->left.get().object()) && aged(old->left.get().object())) << "kept young";
  EXPECT_TRUE(old.get().object()->has_tag(header::kRememberedNextBits)) << "not remembered again by the marker";
  clobber_stack();
  const CycleRecord second = young_cycle(heap);
  EXPECT_GE(second.remembered, 1u);
  expect_ok(heap);
  EXPECT_TRUE(is_allocated(heap, last));
  EXPECT_FALSE(young(old->left.get().object())) << "old after its second young cycle";
  EXPECT_FALSE(remembered(old.get().object())) << "nothing young left to remember it for";
  int n = 0;
  for (Ref<Node> x = old->left.get(); x; x = x->left.get(), ++n) EXPECT_EQ(x->value, 11);
  EXPECT_EQ(n, kChain);
}

// A holder made old by a young cycle (its second) while a child it took between the
// cycles stays young (its first): no store into an old object ever happened - the
// holder was young when it took the child - so only the marker can remember it.
TEST_F(GenerationsTest, AHolderMadeOldWhileItsChildStaysYoungIsRememberedByTheMarker) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> holder(heap, make<Node>());
  young_cycle(heap);
  ASSERT_TRUE(aged(holder.get().object()));
  HiddenPtr child_hidden;
  in_own_frame([&] {
    Ref<Node> child = chain(50, 4);
    child_hidden = HiddenPtr(child.object());
    holder.get().set(&Node::right, child);  // young holder: the barrier records nothing
  });
  EXPECT_FALSE(remembered(holder.get().object()));
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_FALSE(young(holder.get().object())) << "its second young cycle";
  EXPECT_TRUE(young(holder->right.get().object())) << "its first";
  EXPECT_TRUE(remembered(holder.get().object()));
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  EXPECT_TRUE(is_allocated(heap, child_hidden));
  int n = 0;
  for (Ref<Node> x = holder->right.get(); x; x = x->left.get(), ++n) EXPECT_EQ(x->value, 4);
  EXPECT_EQ(n, 50);
}

// Weak slots too: an old WeakCell whose young target the first young cycle keeps young
// must be traced by the second, which clears the slot if the target died meanwhile -
// else the slot would dangle (the verifier reports the cell first).
TEST_F(GenerationsTest, AnOldWeakSlotToAnObjectKeptYoungIsClearedWhenItDiesLater) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kCells = 32;
  Persistent<RefArray> cells(heap, RefArray::create(kCells));
  Persistent<RefArray> targets(heap, RefArray::create(kCells));
  for (size_t i = 0; i < kCells; ++i) cells->set(i, WeakCell::create(Value::null()).value());
  full_cycle(heap);
  auto cell = [&](size_t i) { return Ref<WeakCell>::from_value(cells->get(i)); };
  in_own_frame([&] {
    for (size_t i = 0; i < kCells; ++i) {
      Ref<Node> t = make<Node>();
      t->value = static_cast<int64_t>(i);
      cell(i)->set(t.value());
      targets->set(i, t.value());  // (targets: old too, remembered by the barrier)
    }
  });
  clobber_stack();
  young_cycle(heap);  // the targets live: kept young
  expect_ok(heap);
  EXPECT_TRUE(remembered(cell(0).object())) << "the cell was not remembered again";
  for (size_t i = 0; i < kCells; i += 2) targets->set(i, Value::null());  // half of them die
  clobber_stack();
  young_cycle(heap);
  expect_ok(heap);
  size_t expired = 0;
  for (size_t i = 0; i < kCells; ++i) {
    if (i % 2 == 1) {
      ASSERT_FALSE(cell(i)->expired()) << i;
      EXPECT_EQ(Ref<Node>::from_value(cell(i)->get())->value, static_cast<int64_t>(i));
    } else {
      expired += cell(i)->expired() ? 1 : 0;
    }
  }
  EXPECT_GE(expired, kCells / 2 - 2) << "weak slots to dead targets kept";
}

// A young holder the barrier's marking rule recorded (a store while a cycle marked)
// is traced by the next cycle from the remembered set whether or not it is still
// alive. Here it died first: traced from the set but never marked, it must not be
// remembered again for its young child, or the sweep would free it under the entry
// and the cycle after would trace freed memory (poisoned here).
TEST_F(GenerationsTest, ADeadHolderTracedFromTheRememberedSetIsNotRememberedAgain) {
  HeapOptions o = options();
  o.poison_freed_memory = true;
  o.initial_pause_stack_budget = 0;  // the cycle waits for this thread's stack scan (held)
  Heap heap(o);
  MutatorScope attach(heap);
  // Counted over many holders: a stale conservative word (a sanitizer build's frame
  // layout) may keep one or two.
  constexpr size_t kHolders = 32;
  Persistent<RefArray> kept(heap, RefArray::create(kHolders));
  std::vector<HiddenPtr> holders(kHolders);
  in_own_frame([&] {
    for (size_t i = 0; i < kHolders; ++i) {
      Ref<Node> holder = make<Node>();
      holders[i] = HiddenPtr(holder.object());
      kept->set(i, holder.value());
    }
  });
  full_cycle(heap);  // (the array old, the holders too: made young again below)
  in_own_frame([&] {
    for (size_t i = 0; i < kHolders; ++i) {
      Ref<Node> holder = make<Node>();
      holders[i] = HiddenPtr(holder.object());
      kept->set(i, holder.value());
    }
  });
  {
    CycleHeldOpen held(heap);
    heap.start_collection(CollectionScope::kYoung);
    ASSERT_TRUE(heap.is_marking());
    in_own_frame([&] {
      for (size_t i = 0; i < kHolders; ++i) {
        Ref<Node> holder = Ref<Node>::from_value(kept->get(i));
        Ref<Node> child = make<Node>();  // this cycle's newborn: young after it
        holder.set(&Node::left, child);
        EXPECT_TRUE(holder.object()->has_tag(header::kRememberedNextBits)) << "the marking rule";
      }
    });
    held.release();
    heap.wait_for_collection();
  }
  expect_ok(heap);
  EXPECT_TRUE(aged(kept->get(0).as_object())) << "kept young: the next young cycle makes it old if it lives";
  for (size_t i = 0; i < kHolders; ++i) kept->set(i, Value::null());  // the holders die
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_GE(r.remembered, kHolders);
  expect_ok(heap);
  EXPECT_LE(count_allocated(heap, holders), 2u) << "dead holders survived";
  clobber_stack();
  young_cycle(heap);  // would trace the freed holders if they were remembered again
  expect_ok(heap);
}

// The verifier checks the aged bits: only a young object has one, and never both.
TEST_F(GenerationsTest, TheVerifierReportsAnAgedBitOnAnOldObject) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> old(heap, make<Node>());
  full_cycle(heap);
  old.get().object()->set_gc_bits(header::kAgedEven);
  VerifyReport r = heap.verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("an aged bit but no young bit"), std::string::npos) << r.summary();
  old.get().object()->clear_gc_bits(header::kAgedEven);
  EXPECT_TRUE(heap.verify().ok);
}

// Adaptive aging (gc/generations.cc, "Adaptive aging"): 1 MiB of nodes in 32 lists,
// held by an array - more than the smallest sample that decides anything (256 KiB).
class AdaptiveAgingTest : public GenerationsTest {
 protected:
  static constexpr size_t kLists = 32, kNodesPerList = 1024;
  static constexpr size_t kBytes = kLists * kNodesPerList * 32;  // (a Node's cell: header and 24 bytes)
  static_assert(sizeof(Node) == 24);
  // Fresh lists into every slot of `holder`.
  static void fill(Persistent<RefArray>& holder) {
    in_own_frame([&] {
      for (size_t i = 0; i < holder->length(); ++i) holder->set(i, chain(kNodesPerList, 1).value());
    });
    clobber_stack();
  }
  // Drops the lists in the first `count` slots.
  static void drop(Persistent<RefArray>& holder, size_t count) {
    for (size_t i = 0; i < count; ++i) holder->set(i, Value::null());
    clobber_stack();
  }
};

// What a young cycle keeps young lives on through the next: aging only traced it
// twice. After two such samples in a row (one could be a program's long-lived data,
// young once too) it is off for the next 4 young cycles, then samples again; failing
// once more, it is off for 8.
TEST_F(AdaptiveAgingTest, AgingIsTurnedOffWhileWhatItKeepsYoungLivesOn) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> first(heap, RefArray::create(kLists));
  Persistent<RefArray> second(heap, RefArray::create(kLists));
  fill(first);
  const CycleRecord keeps = young_cycle(heap);
  EXPECT_TRUE(keeps.aging);
  EXPECT_GE(keeps.bytes_kept_young, kBytes);
  fill(second);
  const CycleRecord strike = young_cycle(heap);
  EXPECT_TRUE(strike.aging);
  EXPECT_GE(strike.bytes_aged_promoted, kBytes) << "everything it kept young lived on";
  const CycleRecord out = young_cycle(heap);
  EXPECT_TRUE(out.aging) << "one failed sample turned aging off";
  EXPECT_GE(out.bytes_aged_promoted, kBytes);
  for (const unsigned off_for : {4u, 8u}) {
    SCOPED_TRACE(off_for);
    for (unsigned i = 0; i < off_for; ++i) EXPECT_FALSE(young_cycle(heap).aging) << i;
    fill(first);
    EXPECT_TRUE(young_cycle(heap).aging) << "sampling again";
    EXPECT_GE(young_cycle(heap).bytes_aged_promoted, kBytes);
  }
  EXPECT_FALSE(young_cycle(heap).aging);
  expect_ok(heap);
}

// Any cycle after one that aged measures that cycle's cohort - a full one too, so a
// sample is not lost when the old generation's growth makes the next cycle full.
TEST_F(AdaptiveAgingTest, AFullCycleMeasuresWhatTheYoungCycleBeforeItKeptYoung) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> holder(heap, RefArray::create(kLists));
  fill(holder);
  const CycleRecord keeps = young_cycle(heap);
  EXPECT_GE(keeps.bytes_kept_young, kBytes);
  drop(holder, kLists / 2);
  const CycleRecord full = full_cycle(heap);
  EXPECT_NEAR(static_cast<double>(full.bytes_aged_promoted) / static_cast<double>(keeps.bytes_kept_young), 0.5, 0.05);
  EXPECT_EQ(full_cycle(heap).bytes_aged_promoted, 0u) << "nothing aged in between";
  expect_ok(heap);
}

// On probation - aging failed a sample before, and samples again - what a young cycle
// keeps young counts towards the old generation's growth, so the full cycle comes when
// it would have without aging: 40 MiB kept young is more than the growth allowed
// (full_gc_growth x min_gc_trigger = 32 MiB), and the next cycle asked to be young is
// full. Before any failed sample the same 40 MiB leaves it young.
TEST_F(AdaptiveAgingTest, OnProbationWhatIsKeptYoungCountsTowardsTheFullCycle) {
  for (const bool probation : {false, true}) {
    SCOPED_TRACE(probation ? "on probation" : "never failed");
    Heap heap(options());
    MutatorScope attach(heap);
    constexpr size_t kHolders = 40;
    std::vector<Persistent<RefArray>> holders;
    for (size_t i = 0; i < kHolders; ++i) holders.emplace_back(heap, RefArray::create(kLists));
    if (probation) {
      // Two failed samples (1 MiB each, living on), then the off period.
      Persistent<RefArray> a(heap, RefArray::create(kLists)), b(heap, RefArray::create(kLists));
      fill(a);
      young_cycle(heap);
      fill(b);
      young_cycle(heap);
      EXPECT_TRUE(young_cycle(heap).aging);
      for (int i = 0; i < 4; ++i) EXPECT_FALSE(young_cycle(heap).aging);
    }
    for (Persistent<RefArray>& h : holders) fill(h);
    const CycleRecord keeps = young_cycle(heap);
    EXPECT_TRUE(keeps.aging);
    EXPECT_GE(keeps.bytes_kept_young, kHolders * kBytes);
    for (Persistent<RefArray>& h : holders) drop(h, kLists);
    const CycleRecord next = run_cycle(heap, CollectionScope::kYoung);
    EXPECT_EQ(next.young, !probation);
    full_cycle(heap);
    expect_ok(heap);
  }
}

TEST_F(AdaptiveAgingTest, WithoutItEveryYoungCycleAges) {
  HeapOptions o = options();
  o.adaptive_aging = false;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<RefArray> lists(heap, RefArray::create(kLists));
  fill(lists);
  for (int i = 0; i < 8; ++i) {
    const CycleRecord r = young_cycle(heap);
    EXPECT_TRUE(r.aging) << i;
    if (i == 1) {
      EXPECT_GE(r.bytes_aged_promoted, kBytes) << "everything it kept young lived on";
    }
  }
  expect_ok(heap);
}

// What each young cycle keeps young dies before the next: aging stays on, and each
// cycle frees what the one before kept.
TEST_F(AdaptiveAgingTest, AgingStaysOnWhileWhatItKeepsYoungDies) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> holder(heap, RefArray::create(kLists));
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(round);
    fill(holder);
    const CycleRecord r = young_cycle(heap);
    EXPECT_TRUE(r.aging);
    EXPECT_GE(r.bytes_kept_young, kBytes);
    EXPECT_LT(r.bytes_aged_promoted, kBytes / 8) << "the last round's lists died";
    drop(holder, kLists);
  }
  expect_ok(heap);
}

// Samples are weighed by their bytes: a small cohort that lived on (0.5 MiB: a tree
// in progress met by two quick cycles) after a large one that died (4 MiB) leaves
// aging on; alone it would have turned it off.
TEST_F(AdaptiveAgingTest, ASmallCohortThatLivedOnDoesNotOutvoteALargeOneThatDied) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> large(heap, RefArray::create(4 * kLists));
  Persistent<RefArray> small(heap, RefArray::create(kLists / 2));
  fill(large);
  EXPECT_GE(young_cycle(heap).bytes_kept_young, 4 * kBytes);
  drop(large, 4 * kLists);
  fill(small);
  const CycleRecord died = young_cycle(heap);
  EXPECT_LT(died.bytes_aged_promoted, kBytes / 8);
  const CycleRecord lived = young_cycle(heap);
  EXPECT_GE(lived.bytes_aged_promoted, kBytes / 2);
  EXPECT_TRUE(young_cycle(heap).aging);
  expect_ok(heap);
}

// The bar is also the old generation's own survival, as the newest full cycle measured
// it: a young cycle's survivors that live on better than the old generation did are
// not dying young. The same samples - 40 % of what was kept young lives on, twice -
// leave aging on when the old generation survived whole, and turn it off when a fifth
// did.
TEST_F(AdaptiveAgingTest, TheBarIsTheOldGenerationsSurvivalWhenThatIsLower) {
  for (const bool old_dies : {false, true}) {
    SCOPED_TRACE(old_dies ? "a fifth of the old generation survives" : "the old generation survives");
    Heap heap(options());
    MutatorScope attach(heap);
    Persistent<RefArray> old(heap, RefArray::create(2 * kLists));
    fill(old);  // 2 MiB, old after the full cycle
    full_cycle(heap);
    if (old_dies) drop(old, 2 * kLists * 4 / 5);
    const CycleRecord full = full_cycle(heap);
    EXPECT_GE(full.old_bytes_before, 2 * kBytes);
    const double survival = static_cast<double>(full.old_bytes_survived) / static_cast<double>(full.old_bytes_before);
    EXPECT_NEAR(survival, old_dies ? 0.2 : 1.0, 0.05);
    Persistent<RefArray> young_lists[2] = {{heap, RefArray::create(kLists)}, {heap, RefArray::create(kLists)}};
    fill(young_lists[0]);
    CycleRecord keeps = young_cycle(heap);
    EXPECT_TRUE(keeps.aging);
    for (int sample = 0; sample < 2; ++sample) {
      drop(young_lists[sample], kLists * 6 / 10);
      if (sample == 0) fill(young_lists[1]);
      const CycleRecord r = young_cycle(heap);
      EXPECT_TRUE(r.aging);
      EXPECT_NEAR(static_cast<double>(r.bytes_aged_promoted) / static_cast<double>(keeps.bytes_kept_young), 0.4, 0.05);
      keeps = r;
    }
    EXPECT_EQ(young_cycle(heap).aging, !old_dies);
    expect_ok(heap);
  }
}

// Pacing alone: a program that keeps some of what it allocates gets mostly young
// cycles, and full ones as the old generation grows.
TEST_F(GenerationsTest, PacingRunsYoungCyclesAndAFullOneAsTheOldGenerationGrows) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  // One node in 8 is kept in a ring of 16384 until it is overwritten: 6 MiB of objects
  // that survive a cycle or two and then die old.
  constexpr size_t kRing = 16384, kEvery = 8;
  Persistent<RefArray> kept(heap, RefArray::create(kRing));
  for (size_t i = 0; i < 1600000; ++i) {
    Ref<Node> n = make<Node>();
    n->value = static_cast<int64_t>(i);
    if (i % kEvery == 0) kept->set((i / kEvery) % kRing, n.value());
  }
  heap.wait_for_collection();
  const GcStats s = heap.stats();
  EXPECT_GT(s.young_collections, 0u);
  EXPECT_GT(s.collections - s.young_collections, 0u) << "old garbage (overwritten slots) needs full cycles";
  expect_ok(heap);
  for (size_t i = 0; i < kRing; ++i) {
    Ref<Node> n = Ref<Node>::from_value(kept->get(i));
    ASSERT_TRUE(n);
    EXPECT_EQ(static_cast<size_t>(n->value) / kEvery % kRing, i);
  }
}

// Several threads keep replacing parts of old structures with young chains while young
// and full cycles run at every few allocations (torture): the chains' contents and the
// verifier (after every cycle) check that no young object reachable only from an old
// one is lost.
TEST_F(GenerationsTest, ThreadsStoringYoungChainsIntoOldArraysUnderTorture) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.gc_torture_interval = 64;
  Heap heap(o);
  constexpr int kThreads = 3, kMinRounds = 20000, kMaxRounds = 2000000, kSlots = 32, kDepth = 3;
  std::atomic<int> bad{0};
  std::atomic<bool> enough{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Persistent<RefArray> table(heap, RefArray::create(kSlots));
      std::mt19937 rng(static_cast<uint32_t>(t));
      auto check = [&](size_t slot) {
        int depth = 0;
        for (Ref<Node> n = Ref<Node>::from_value(table->get(slot)); n; n = n->left.get(), ++depth)
          if (static_cast<size_t>(n->value) % kSlots != slot) bad.fetch_add(1);
        if (!table->get(slot).is_null() && depth != kDepth) bad.fetch_add(1);
      };
      for (int round = 0; round < kMaxRounds && !enough.load(std::memory_order_relaxed); ++round) {
        if (t == 0 && round % 1000 == 999 && round >= kMinRounds && both_kinds_of_cycle_ran(heap)) enough.store(true);
        const size_t slot = rng() % kSlots;
        check(slot);
        table->set(slot, chain(kDepth, static_cast<int64_t>(slot + kSlots * static_cast<size_t>(round))).value());
      }
      for (size_t s = 0; s < kSlots; ++s) check(s);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  MutatorScope attach(heap);
  const GcStats s = heap.stats();
  EXPECT_GT(s.young_collections, 0u) << s.collections;
  EXPECT_GT(s.collections - s.young_collections, 0u) << s.collections;
  expect_ok(heap);
}

// Cards (gc/generations.cc, "Cards"): a large old object given young references is
// remembered by the cards the stores wrote, and a young cycle traces those cards' slots,
// not the whole object.
class GenerationsCardsTest : public GenerationsTest {
 protected:
  static constexpr size_t kSlots = size_t{1} << 16;                          // 512 KiB: large
  static constexpr size_t kSlotsPerCard = internal::kCardBytes / sizeof(Slot);  // 64
  static internal::LargeObject& large(const Persistent<RefArray>& a) {
    return *internal::LargeObject::of(a.get().object());
  }
  static size_t dirty_cards(internal::LargeObject& l, unsigned set) {
    const uint8_t* c = l.cards(set);
    return static_cast<size_t>(std::count(c, c + l.card_count, uint8_t{1}));
  }
  // Young nodes at `indices` of an old array, valued by index, from a frame of their own.
  static void store_young(Persistent<RefArray>& array, std::initializer_list<size_t> indices) {
    in_own_frame([&] {
      for (size_t i : indices) {
        Ref<Node> n = make<Node>();
        n->value = static_cast<int64_t>(i);
        array->set(i, n.value());
      }
    });
  }
  static void expect_values(Persistent<RefArray>& array, std::initializer_list<size_t> indices) {
    for (size_t i : indices) {
      Ref<Node> n = Ref<Node>::from_value(array->get(i));
      ASSERT_TRUE(n) << i;
      EXPECT_EQ(n->value, static_cast<int64_t>(i));
    }
  }
  // The nodes at `indices` are old (marked), or young (unmarked).
  static void expect_old(Persistent<RefArray>& array, std::initializer_list<size_t> indices, bool old) {
    for (size_t i : indices) {
      Ref<Node> n = Ref<Node>::from_value(array->get(i));
      ASSERT_TRUE(n) << i;
      EXPECT_EQ(internal::Marker::is_marked(*internal::current_thread()->heap, n.object()), old) << i;
    }
  }
};

TEST_F(GenerationsCardsTest, AYoungCycleTracesTheDirtyCardsOfABigOldArrayNotTheArray) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> big(heap, RefArray::create(kSlots));
  full_cycle(heap);
  internal::LargeObject& l = large(big);
  ASSERT_TRUE(internal::Marker::is_marked(heap.impl(), big.get().object())) << "old";
  // Two stores into one card, one into another, one CAS and one exchange into a third
  // and fourth: four cards, one listing, no header bit.
  const size_t a = 3 * kSlotsPerCard + 1, b = a + 5, c = 700 * kSlotsPerCard, d = kSlots - 1, e = kSlots / 2;
  store_young(big, {a, b, c});
  in_own_frame([&] {
    Ref<Node> n = make<Node>();
    n->value = static_cast<int64_t>(d);
    EXPECT_TRUE(big->compare_and_swap(d, Value::null(), n.value()).is_null());
    Ref<Node> m = make<Node>();
    m->value = static_cast<int64_t>(e);
    EXPECT_TRUE(big->exchange(e, m.value()).is_null());
  });
  const unsigned set = heap.impl().collector.card_record_set();
  EXPECT_EQ(dirty_cards(l, set), 4u);
  EXPECT_EQ(dirty_cards(l, set ^ 1), 0u);
  EXPECT_EQ(l.listed[set].load(), 1);
  EXPECT_FALSE(remembered(big.get().object())) << "a large holder takes no header bit: later stores must still dirty cards";
  expect_ok(heap);
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_EQ(r.remembered, 1u);
  EXPECT_EQ(r.remembered_cards, 4u);
  EXPECT_LT(r.bytes_marked, kSlots * sizeof(Slot) / 4) << "the young cycle traced the array whole";
  expect_ok(heap);  // (and the consumed cards are clean)
  EXPECT_EQ(dirty_cards(l, set), 0u);
  EXPECT_EQ(l.listed[set].load(), 0);
  expect_values(big, {a, b, c, d, e});
  // Kept young (aging): the marker dirtied their cards again, in the other set.
  expect_old(big, {a, b, c, d, e}, false);
  EXPECT_EQ(dirty_cards(l, set ^ 1), 4u);
  EXPECT_EQ(l.listed[set ^ 1].load(), 1);
  clobber_stack();
  EXPECT_EQ(young_cycle(heap).remembered_cards, 4u) << "the marker did not dirty the cards for the next cycle";
  expect_ok(heap);
  expect_values(big, {a, b, c, d, e});
  expect_old(big, {a, b, c, d, e}, true);
  clobber_stack();
  EXPECT_EQ(young_cycle(heap).remembered_cards, 0u) << "the cards were not cleaned";
  expect_values(big, {a, b, c, d, e});
}

// The concurrent catch: a store made while a young cycle marks must not dirty the card
// set that cycle consumes (its marker may have traced and cleaned that card already):
// it goes to the other set, for the next cycle. Here the card is one the marking cycle
// consumed, and the value a newborn - young again after the sweep, so only the next
// cycle's card keeps it.
TEST_F(GenerationsCardsTest, AStoreWhileACycleMarksDirtiesTheNextCyclesCardSet) {
  HeapOptions o = options();
  o.poison_freed_memory = true;
  o.initial_pause_stack_budget = 0;  // the cycle waits for this thread's stack scan (held)
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<RefArray> big(heap, RefArray::create(kSlots));
  full_cycle(heap);
  internal::LargeObject& l = large(big);
  const size_t a = 10 * kSlotsPerCard, b = a + 1, c = 900 * kSlotsPerCard;
  store_young(big, {a});
  const unsigned consumed = heap.impl().collector.card_record_set();
  HiddenPtr newborn_b, newborn_c;
  {
    CycleHeldOpen held(heap);
    heap.start_collection(CollectionScope::kYoung);
    ASSERT_TRUE(heap.is_marking());
    EXPECT_EQ(heap.impl().collector.card_pending_set(), consumed);
    const unsigned next = heap.impl().collector.card_record_set();
    ASSERT_NE(next, consumed);
    // Wait for the marker thread to trace and clean the consumed cards.
    for (int i = 0; i < 20000 && l.listed[consumed].load() != 0; ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
    ASSERT_EQ(l.listed[consumed].load(), 0);
    EXPECT_EQ(dirty_cards(l, consumed), 0u);
    in_own_frame([&] {
      Ref<Node> nb = make<Node>();  // newborns: black now, young after the sweep
      nb->value = static_cast<int64_t>(b);
      newborn_b = HiddenPtr(nb.object());
      big->set(b, nb.value());  // the card this cycle consumed
      Ref<Node> nc = make<Node>();
      nc->value = static_cast<int64_t>(c);
      newborn_c = HiddenPtr(nc.object());
      big->set(c, nc.value());
    });
    EXPECT_EQ(dirty_cards(l, consumed), 0u) << "a store while marking dirtied the set the cycle consumes";
    EXPECT_EQ(dirty_cards(l, next), 2u);
    EXPECT_EQ(l.listed[next].load(), 1);
    held.release();
    heap.wait_for_collection();
  }
  expect_ok(heap);  // the newborns are young, their cards dirty in the pending set
  EXPECT_FALSE(internal::Marker::is_marked(heap.impl(), static_cast<const Object*>(newborn_b.get()))) << "a newborn is young after the sweep";
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_EQ(r.remembered_cards, 2u);  // (a, kept young by the held cycle, shares b's card)
  expect_ok(heap);
  EXPECT_TRUE(is_allocated(heap, newborn_b));
  EXPECT_TRUE(is_allocated(heap, newborn_c));
  expect_values(big, {a, b, c});
  expect_old(big, {a}, true);      // its second young cycle
  expect_old(big, {b, c}, false);  // their first
}

// A full cycle traces everything: the cards recorded before it are stale, cleaned by its
// marker thread; a stop-the-world collect() cleans both sets in its pause. The verifier
// (after each cycle, and here) reports dirty cards no cycle will consume.
TEST_F(GenerationsCardsTest, FullAndStopTheWorldCyclesCleanTheCards) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> big(heap, RefArray::create(kSlots));
  full_cycle(heap);
  internal::LargeObject& l = large(big);
  store_young(big, {1, 5000});
  const unsigned set = heap.impl().collector.card_record_set();
  EXPECT_EQ(dirty_cards(l, set), 2u);
  clobber_stack();
  full_cycle(heap);
  expect_ok(heap);
  EXPECT_EQ(dirty_cards(l, 0) + dirty_cards(l, 1), 0u);
  EXPECT_EQ(l.listed[0].load() + l.listed[1].load(), 0);
  store_young(big, {2, 6000});
  heap.collect();
  expect_ok(heap);
  EXPECT_EQ(dirty_cards(l, 0) + dirty_cards(l, 1), 0u);
  EXPECT_EQ(l.listed[0].load() + l.listed[1].load(), 0);
  clobber_stack();
  EXPECT_EQ(young_cycle(heap).remembered_cards, 0u);
  expect_values(big, {1, 2, 5000, 6000});
}

TEST_F(GenerationsCardsTest, TheVerifierReportsAYoungReferenceInACleanCard) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> big(heap, RefArray::create(kSlots));
  full_cycle(heap);
  Ref<Node> y = make<Node>();
  internal::SlotAccess::store(big->slots()[4000], y.value());  // no barrier
  VerifyReport r = heap.verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("which is not dirty"), std::string::npos) << r.summary();
  big->set(4000, y.value());  // through the barrier: its card is dirty
  r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
  // A dirty card on a holder no buffer lists would never be traced.
  internal::LargeObject& l = large(big);
  const unsigned set = heap.impl().collector.card_record_set();
  l.listed[set].store(0);
  r = heap.verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("not on the remembered set"), std::string::npos) << r.summary();
  l.listed[set].store(1);
  // A dirty card in the set no cycle consumes next (a barrier that wrote the wrong set).
  l.cards(set ^ 1)[7] = 1;
  l.listed[set ^ 1].store(1);
  r = heap.verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("which no cycle will consume"), std::string::npos) << r.summary();
  l.cards(set ^ 1)[7] = 0;
  l.listed[set ^ 1].store(0);
  EXPECT_TRUE(heap.verify().ok);
}

// shoal::write takes the holder and the slot apart: a slot outside a large holder would
// have the barrier dirty a byte outside its cards - refused before the store.
TEST_F(GenerationsCardsTest, AStoreThroughASlotOutsideItsLargeHolderIsRefused) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> big(heap, RefArray::create(kSlots));
  Persistent<RefArray> other(heap, RefArray::create(4));
  full_cycle(heap);
  Ref<Node> y = make<Node>();
  Slot& foreign = other->slots()[0];
  EXPECT_THROW(write(big.get().object(), foreign, y.value()), InvalidArgument);
  EXPECT_TRUE(other->get(0).is_null()) << "the store happened";
  expect_ok(heap);
}

// A thread attaching after a cycle has flipped the card set records into the new set
// (MutatorThread::card_record_set is copied at attach), and a detaching thread's listed
// holder is handed over with its remembered-set buffer.
TEST_F(GenerationsCardsTest, ThreadsAttachingAtEitherCardSetRecordIntoIt) {
  Heap heap(options());
  Persistent<RefArray> big;
  {
    MutatorScope attach(heap);
    big = Persistent<RefArray>(heap, RefArray::create(kSlots));
    full_cycle(heap);
  }
  for (int round = 0; round < 4; ++round) {
    const size_t index = 100 + static_cast<size_t>(round) * 3 * kSlotsPerCard;
    unsigned set = 0;
    std::thread([&] {
      MutatorScope attach(heap);
      set = heap.impl().collector.card_record_set();
      Ref<Node> n = make<Node>();
      n->value = static_cast<int64_t>(index);
      big->set(index, n.value());
    }).join();  // (detached: its buffer went to the collector)
    MutatorScope attach(heap);
    internal::LargeObject& l = large(big);
    EXPECT_EQ(l.cards(set)[l.card_of(reinterpret_cast<uintptr_t>(&big->slots()[index]))], 1) << round;
    expect_ok(heap);
    clobber_stack();
    const CycleRecord r = young_cycle(heap);  // (flips the set for the next round)
    // This round's card, and the last round's node's: kept young by its first cycle,
    // its card dirtied again by the marker.
    EXPECT_EQ(r.remembered_cards, round == 0 ? 1u : 2u) << round;
    expect_ok(heap);
    expect_values(big, {index});
  }
}

// A large object of a custom class with strong, weak and ephemeron slots: the young
// cycle traces the dirty cards' strong slots, records their weak slots (cleared when the
// young target dies) and resolves their ephemerons.
struct WeakTable {
  uint64_t entries;
  struct Entry {  // (40 bytes: some entries straddle two cards)
    Slot strong, weak, key, value, spare;
  };
  Entry* at(size_t i) { return reinterpret_cast<Entry*>(this + 1) + i; }
  static size_t bytes(size_t entries) { return kHeaderSize + sizeof(WeakTable) + entries * sizeof(Entry); }
};
ClassId weak_table_class() {
  static const ClassId id = [] {
    ClassDescriptor d;
    d.name = "test.WeakTable";
    d.layout = Layout::kCustom;
    d.size = [](const Object* o) { return WeakTable::bytes(static_cast<const WeakTable*>(o->payload())->entries); };
    d.trace = [](const Object* o, SlotVisitor& v) {
      auto* t = const_cast<WeakTable*>(static_cast<const WeakTable*>(o->payload()));
      for (size_t i = 0; i < t->entries; ++i) {
        v.visit(t->at(i)->strong);
        v.visit_weak(t->at(i)->weak);
        v.visit_ephemeron(t->at(i)->key, t->at(i)->value);
      }
    };
    return define_class(d);
  }();
  return id;
}

TEST_F(GenerationsCardsTest, WeakSlotsAndEphemeronsOfABigOldObjectInAYoungCycle) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kEntries = 4096;  // 128 KiB
  Persistent<Node> old_key(heap, make<Node>());
  Object* raw = allocate_custom(weak_table_class(), WeakTable::bytes(kEntries));
  static_cast<WeakTable*>(raw->payload())->entries = kEntries;
  PersistentValue table_root(heap, Value::from_object(raw));
  full_cycle(heap);
  Object* t = table_root.get().as_object();
  auto* table = static_cast<WeakTable*>(t->payload());
  ASSERT_TRUE(internal::Marker::is_marked(heap.impl(), t));
  constexpr size_t kDying = 100, kLiving = 2000, kEph = 3500;
  // An ephemeron whose key and value slots lie in two cards: the barrier dirties the
  // value's card only, and the pair must still be resolved.
  internal::LargeObject& l = *internal::LargeObject::of(t);
  size_t straddling = 0;
  for (size_t i = 0; i < kEntries; ++i) {
    const auto key = reinterpret_cast<uintptr_t>(&table->at(i)->key), value = reinterpret_cast<uintptr_t>(&table->at(i)->value);
    if (l.card_of(key) != l.card_of(value) && i > kEph) {
      straddling = i;
      break;
    }
  }
  ASSERT_NE(straddling, 0u);
  write(t, table->at(straddling)->key, old_key.get().value());
  full_cycle(heap);  // the key slot's card clean again
  Persistent<Node> keep(heap, Ref<Node>());
  in_own_frame([&] {
    write_weak(table->at(kDying)->weak, make<Node>().value());
    Ref<Node> kept = make<Node>();
    kept->value = 7;
    write_weak(table->at(kLiving)->weak, kept.value());
    keep.set(kept);
    write(t, table->at(kEph)->key, old_key.get().value());
    Ref<Node> v = make<Node>();
    v->value = 9;
    write(t, table->at(kEph)->value, v.value());  // young value, old key
    Ref<Node> w = make<Node>();
    w->value = 10;
    write(t, table->at(straddling)->value, w.value());  // its key's card stays clean
  });
  EXPECT_EQ(dirty_cards(l, heap.impl().collector.card_record_set()), 4u);
  expect_ok(heap);
  clobber_stack();
  const CycleRecord r = young_cycle(heap);
  EXPECT_EQ(r.remembered_cards, 4u);
  expect_ok(heap);
  EXPECT_TRUE(table->at(kDying)->weak.load().is_null()) << "a dead young target left in a weak slot";
  ASSERT_FALSE(table->at(kLiving)->weak.load().is_null());
  EXPECT_EQ(Ref<Node>::from_value(table->at(kLiving)->weak.load())->value, 7);
  ASSERT_FALSE(table->at(kEph)->value.load().is_null()) << "the ephemeron's key lives: so does its value";
  EXPECT_EQ(Ref<Node>::from_value(table->at(kEph)->value.load())->value, 9);
  ASSERT_FALSE(table->at(straddling)->value.load().is_null());
  EXPECT_EQ(Ref<Node>::from_value(table->at(straddling)->value.load())->value, 10);
}

// Threads keep big old arrays and big growable lists (whose storage is a large object,
// grown by plain stores in stretches that remember by card) full of young chains while
// torture cycles run - young and full, each verified.
TEST_F(GenerationsCardsTest, ThreadsStoringYoungChainsIntoBigOldArraysAndListsUnderTorture) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.gc_torture_interval = 256;
  Heap heap(o);
  constexpr int kThreads = 2, kMinRounds = 20000, kMaxRounds = 2000000, kDepth = 2;
  constexpr size_t kTable = 4096;  // 32 KiB: large
  std::atomic<int> bad{0};
  std::atomic<bool> enough{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Persistent<RefArray> table(heap, RefArray::create(kTable));
      Persistent<GrowableList> list(heap, GrowableList::create());
      Persistent<Map> map(heap, Map::create(MapKeys::kIdentity));  // its store grows large
      std::mt19937 rng(static_cast<uint32_t>(t + 7));
      auto chain_ok = [&](Value v, size_t tag) {
        int depth = 0;
        for (Ref<Node> n = Ref<Node>::from_value(v); n; n = n->left.get(), ++depth)
          if (static_cast<size_t>(n->value) != tag) return false;
        return depth == kDepth;
      };
      for (int round = 0; round < kMaxRounds && !enough.load(std::memory_order_relaxed); ++round) {
        if (t == 0 && round % 1000 == 999 && round >= kMinRounds && both_kinds_of_cycle_ran(heap)) enough.store(true);
        const size_t slot = rng() % kTable;
        if (!table->get(slot).is_null() && !chain_ok(table->get(slot), slot)) bad.fetch_add(1);
        table->set(slot, chain(kDepth, static_cast<int64_t>(slot)).value());
        if (round % 4 == 0) {
          if (list->length() == 20000) {  // (a fresh list: the heap stays small, growth goes on)
            for (size_t i = 0; i < list->length(); ++i)
              if (!chain_ok(list->get(i), i)) bad.fetch_add(1);
            list.set(GrowableList::create());
          }
          list->add(chain(kDepth, static_cast<int64_t>(list->length())).value());
          // The map: small-integer keys, young values; rehashed as it grows (plain
          // stores into a fresh large store), reset at 4000 entries.
          const int64_t key = static_cast<int64_t>(round / 4 % 4000);
          if (key == 0) {
            for (int64_t k = 0; k < static_cast<int64_t>(map->size()); ++k)
              if (!chain_ok(map->get_or(Value::from_int(k), Value::null()), static_cast<size_t>(k))) bad.fetch_add(1);
            map.set(Map::create(MapKeys::kIdentity));
          }
          map->set(Value::from_int(key), chain(kDepth, key).value());
        }
      }
      for (size_t s = 0; s < kTable; ++s)
        if (!table->get(s).is_null() && !chain_ok(table->get(s), s)) bad.fetch_add(1);
      for (size_t i = 0; i < list->length(); ++i)
        if (!chain_ok(list->get(i), i)) bad.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  MutatorScope attach(heap);
  const GcStats s = heap.stats();
  EXPECT_GE(s.young_collections, 20u) << s.collections;
  EXPECT_GE(s.collections - s.young_collections, 5u) << s.collections;
  expect_ok(heap);
}

}  // namespace
}  // namespace shoal::test
