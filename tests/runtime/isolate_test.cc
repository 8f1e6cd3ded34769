// Isolate groups and isolates: entering (exclusive, waiting or try_enter), nesting and
// run_in, the shared isolate, owner bits, and the ownership checks on stores and reads.
#include <atomic>
#include <chrono>
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

TEST(IsolateTest, EnterAttachesAndStampsTheOwner) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  EXPECT_EQ(a.id(), 1u);
  EXPECT_EQ(b.id(), 2u);
  EXPECT_EQ(group.isolate_count(), 2u);
  EXPECT_EQ(current_heap(), nullptr);
  {
    IsolateScope in_a(a);
    EXPECT_EQ(current_heap(), &group.heap());
    EXPECT_EQ(current_isolate(), &a);
    EXPECT_EQ(current_group(), &group);
    EXPECT_TRUE(a.is_entered());
    Ref<Node> n = make<Node>();
    EXPECT_EQ(n.object()->owner(), a.id());
    Ref<RefArray> big = RefArray::create(100000);  // a large object: same stamp
    EXPECT_EQ(big.object()->owner(), a.id());
    run_in(b, [&] {
      EXPECT_EQ(current_isolate(), &b);
      EXPECT_FALSE(a.is_entered());  // suspended: a is free while this thread is in b
      EXPECT_EQ(make<Node>().object()->owner(), b.id());
    });
    EXPECT_EQ(current_isolate(), &a);
    EXPECT_EQ(make<Node>().object()->owner(), a.id());
    run_shared([&] {
      EXPECT_TRUE(in_shared_isolate());
      EXPECT_EQ(current_isolate(), nullptr);
      EXPECT_EQ(make<Node>().object()->owner(), 0u);
      EXPECT_TRUE(a.is_entered());  // stays entered underneath
    });
    EXPECT_EQ(current_isolate(), &a);
  }
  EXPECT_EQ(current_heap(), nullptr);
  EXPECT_FALSE(a.is_entered());
  MutatorScope outside(group.heap());
  EXPECT_EQ(make<Node>().object()->owner(), 0u);
}

TEST(IsolateTest, OneThreadAtATimeSecondEnterWaitsOrFails) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  std::atomic<bool> inside{false}, release{false}, second_entered{false};
  std::thread first([&] {
    IsolateScope s(a);
    inside = true;
    run_native([&] {
      while (!release) std::this_thread::sleep_for(1ms);
    });
  });
  while (!inside) std::this_thread::sleep_for(1ms);
  std::thread second([&] {
    EXPECT_THROW(IsolateScope s(a, try_enter), IsolateBusyError);
    EXPECT_EQ(current_heap(), nullptr);  // the failed try left the thread detached
    IsolateScope s(a);                   // waits
    second_entered = true;
  });
  {
    // While `second` waits, the heap can collect: the waiter is in the GC-safe state.
    MutatorScope attach(group.heap());
    std::this_thread::sleep_for(20ms);
    group.heap().collect();
    EXPECT_FALSE(second_entered);
  }
  release = true;
  first.join();
  second.join();
  EXPECT_TRUE(second_entered);
}

TEST(IsolateTest, IsolatesCallingIntoEachOtherDoNotDeadlock) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  std::atomic<int> calls{0};
  auto worker = [&](Isolate& home, Isolate& other) {
    IsolateScope s(home);
    for (int i = 0; i < 200; ++i) {
      run_in(other, [&] { calls.fetch_add(1); });
      EXPECT_EQ(current_isolate(), &home);
    }
  };
  std::thread t1(worker, std::ref(a), std::ref(b));
  std::thread t2(worker, std::ref(b), std::ref(a));
  t1.join();
  t2.join();
  EXPECT_EQ(calls.load(), 400);
}

TEST(IsolateTest, StoresIntoAnotherIsolatesObjectAreRefusedAndChangeNothing) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  IsolateScope in_a(a);
  Ref<Node> mine = make<Node>();
  Ref<RefArray> arr = RefArray::create(2);
  Ref<ByteArray> bytes = ByteArray::create(2);
  Ref<Node> frozen_child = freeze(make<Node>());
  run_in(b, [&] {
    Ref<Node> theirs = make<Node>();
    try {
      mine.set(&Node::left, theirs);
      FAIL();
    } catch (const IncorrectDereferenceError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("isolate 'a'"), std::string::npos) << what;
      EXPECT_NE(what.find("from isolate 'b'"), std::string::npos) << what;
      EXPECT_NE(what.find("test.Node"), std::string::npos) << what;
    }
    EXPECT_THROW(arr->set(0, Value::from_int(1)), IncorrectDereferenceError);
    EXPECT_THROW(bytes->set(0, 1), IncorrectDereferenceError);
    EXPECT_THROW(store_field(mine.object(), 8, Value::null()), IncorrectDereferenceError);
    // Reads are unchecked by default; frozen objects are anyone's to read.
    EXPECT_FALSE(mine->left.get());
    EXPECT_EQ(frozen_child->value, 0);
    // b's own objects are fine, and b may store a's frozen object into them.
    theirs.set(&Node::left, frozen_child);
  });
  run_shared([&] {
    EXPECT_THROW(mine.set(&Node::left, Ref<Node>()), IsolationError);
    Ref<Node> shared_obj = make<Node>();
    shared_obj.set(&Node::left, make<Node>());  // unowned objects are the shared isolate's to write
  });
  std::thread outside([&, m = mine.object()] {
    MutatorScope attach(group.heap());
    EXPECT_THROW(Ref<Node>::from_object(m).set(&Node::left, Ref<Node>()), IncorrectDereferenceError);
  });
  run_native([&] { outside.join(); });
  EXPECT_FALSE(mine->left.get());
  EXPECT_EQ(arr->get(0), Value::null());
  EXPECT_EQ(bytes->get(0), 0);
  mine.set(&Node::left, make<Node>());  // the owner may
  EXPECT_TRUE(mine->left.get());
}

TEST(IsolateTest, UnownedObjectsAreWritableFromIsolates) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Persistent<Node> unowned;
  {
    MutatorScope attach(group.heap());
    unowned = Persistent<Node>(group.heap(), make<Node>());
    EXPECT_EQ(unowned->left.get(), Ref<Node>());
  }
  IsolateScope in_a(a);
  Ref<Node> n = unowned.get();
  n.set(&Node::left, make<Node>());
  EXPECT_EQ(n->left.get().object()->owner(), a.id());
}

TEST(IsolateTest, CheckedReadsRefuseReadsOfForeignMutableObjects) {
  IsolateGroup group(checked_reads_options());
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  IsolateScope in_a(a);
  Ref<Node> mine = make<Node>();
  mine->value = 41;
  Ref<Node> frozen = freeze(make<Node>());
  run_in(b, [&] {
    EXPECT_THROW((void)mine->value, IncorrectDereferenceError);
    EXPECT_EQ(frozen->value, 0);
    Ref<Node> own = make<Node>();
    EXPECT_EQ(own->value, 0);
  });
  run_shared([&] { EXPECT_THROW((void)mine->value, IsolationError); });
  EXPECT_EQ(mine->value, 41);
}

TEST(IsolateTest, ShareEverythingHasNoOwners) {
  IsolateGroup group(share_everything_options());
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  IsolateScope in_a(a);
  Ref<Node> n = make<Node>();
  EXPECT_EQ(n.object()->owner(), 0u);
  run_in(b, [&] { n.set(&Node::left, make<Node>()); });
  EXPECT_TRUE(n->left.get());
  freeze(n);
  run_in(b, [&] { EXPECT_THROW(n.set(&Node::left, Ref<Node>()), InvalidMutabilityError); });
}

TEST(IsolateTest, FreezeOfAGraphReachingAnotherIsolatesObjectFailsAndChangesNothing) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  IsolateScope in_a(a);
  Ref<Node> theirs = run_in(b, [] { return make<Node>(); });
  // a cannot link b's object into its graph through b's object, but b's object can be
  // a's: an unowned holder written by both isolates.
  Ref<Node> mine = make<Node>();
  Ref<Node> unowned = run_shared([] { return make<Node>(); });
  mine.set(&Node::left, unowned);
  run_in(b, [&] { unowned.set(&Node::left, theirs); });
  EXPECT_THROW(freeze(mine), IncorrectDereferenceError);
  EXPECT_FALSE(mine.object()->has_tag(header::kFrozen | header::kFreezing));
  EXPECT_FALSE(unowned.object()->has_tag(header::kFrozen | header::kFreezing));
  EXPECT_FALSE(theirs.object()->has_tag(header::kFrozen | header::kFreezing));
  run_shared([&] { EXPECT_THROW(freeze(mine), IsolationError); });
  // b can freeze it once nothing of a's is in it.
  run_in(b, [&] { freeze(theirs); });
  freeze(mine);
  EXPECT_TRUE(is_frozen(mine.value()));
}

TEST(IsolateTest, ScopesNeedAFreeThread) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Heap other;
  MutatorScope attach(other);
  EXPECT_THROW(IsolateScope s(a), ThreadStateError);
  EXPECT_THROW(SharedIsolateScope s(group), ThreadStateError);
  EXPECT_FALSE(a.is_entered());
}

// Inside a handshake operation an isolate is entered only if no other thread holds it:
// the holder may be waiting for a collection, which waits for the handshake's requester,
// which waits for the operation (a hang before: the holder here sleeps in run_native,
// then collects). A free isolate is entered, and an isolate the requester holds is kept
// (not released and taken back, which could wait).
TEST(IsolateTest, AHandshakeOperationEntersOnlyAFreeIsolate) {
  IsolateGroup group;
  Isolate& busy = group.create_isolate("busy");
  Isolate& free_one = group.create_isolate("free");
  Isolate& mine = group.create_isolate("mine");
  std::atomic<int> phase{0};
  std::thread holder([&] {
    IsolateScope in(busy);
    run_native([&] {
      phase = 1;
      while (phase.load() != 2) std::this_thread::sleep_for(1ms);
    });
    group.heap().collect();  // waits for the collector's lock (the requester's, until the op ends)
  });
  while (phase.load() != 1) std::this_thread::yield();  // the holder is in native now
  IsolateScope in(mine);
  const std::thread::id requester = std::this_thread::get_id();
  int refused = 0, entered = 0;
  handshake_all(group.heap(), [&](size_t) {
    // (Run by this thread - for itself, and for the holder while it is in native. Should
    // the holder run its own, on its way out of native, it already holds `busy`.)
    if (std::this_thread::get_id() != requester) return;
    phase = 2;  // the holder now wants a collection
    try {
      IsolateScope in_op(busy);
    } catch (const ThreadStateError&) {
      ++refused;
    }
    {
      IsolateScope in_op(free_one);
      EXPECT_EQ(current_isolate(), &free_one);
      ++entered;
    }
    EXPECT_EQ(current_isolate(), &mine);  // still held: never released
  });
  run_native([&] { holder.join(); });
  EXPECT_GE(refused, 1);  // (once per operation this thread ran)
  EXPECT_EQ(entered, refused);
  EXPECT_EQ(current_isolate(), &mine);
}

TEST(IsolateTest, ObjectsSurviveCollectionsAcrossIsolates) {
  IsolateGroup group(torture_options(7));
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Isolate& home = t % 2 ? a : b;
      for (int i = 0; i < 20; ++i) {
        IsolateScope s(home);
        Ref<Node> tree = make_tree(6);
        EXPECT_EQ(check_tree(tree, 6), 127);
        EXPECT_EQ(tree.object()->owner(), home.id());
      }
    });
  }
  for (auto& t : threads) t.join();
  IsolateScope s(a);
  VerifyReport r = group.heap().verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

// A thread that exits while attached and inside an isolate (its scopes leaked, never
// destroyed) is detached and leaves the isolate at thread exit: the heap collects and
// verifies afterwards, the isolate can be entered again, and the group and heap can be
// destroyed (they would abort with a thread still counted inside).
TEST(ThreadExitTest, AThreadThatExitsWithoutLeavingIsCleanedUp) {
  auto group = std::make_unique<IsolateGroup>();
  Isolate& a = group->create_isolate("a");
  // Scopes constructed in static storage and never destroyed (reachable from a global,
  // so LeakSanitizer does not count them as leaks).
  alignas(IsolateScope) static unsigned char isolate_scope[sizeof(IsolateScope)];
  alignas(SharedIsolateScope) static unsigned char shared_scope[sizeof(SharedIsolateScope)];
  alignas(MutatorScope) static unsigned char mutator_scope[sizeof(MutatorScope)];
  std::thread([&] {
    new (isolate_scope) IsolateScope(a);
    new (shared_scope) SharedIsolateScope(*group);
    Ref<Node> tree = make_tree(8);
    EXPECT_EQ(check_tree(tree, 8), 511);
  }).join();
  std::thread([&] {
    new (mutator_scope) MutatorScope(group->heap());  // a plain attach, never ended
    make_tree(6);
  }).join();
  EXPECT_FALSE(a.is_entered());
  {
    IsolateScope in(a, try_enter);  // not busy
    group->heap().collect();
    VerifyReport r = group->heap().verify();
    EXPECT_TRUE(r.ok) << r.summary();
  }
  group.reset();  // would abort if a thread were still counted inside or attached
}

}  // namespace
}  // namespace shoal::test
