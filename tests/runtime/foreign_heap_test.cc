// The runtime's calls from a thread attached to another heap (a second IsolateGroup's,
// or a plain Heap's): each refuses with the typed error the docs give - the caller's
// stack is not scanned by this group's collector, so nothing may hand it a reference,
// take one from it, or block this group's pauses - and nothing changes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(ForeignHeapTest, EveryRuntimeCallIsRefusedUnchanged) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  SharedField field(group, "field", [] { return Value::from_int(1); });
  IsolatedGlobal global(group, "global", [] { return Value::from_int(2); });
  ReceivePort inbox(a);
  SendPort to_a = inbox.send_port();
  ThreadPool pool(group.heap(), 1, "foreign-test");
  IsolateScope in_a(a);
  Heap& heap = group.heap();
  Persistent<Node> node(heap, make<Node>());
  Persistent<Lock> lock(heap, Lock::create());
  Persistent<Condition> condition(heap, Condition::create());
  Ref<Node> n = node.get();
  Ref<Lock> l = lock.get();
  Ref<Condition> c = condition.get();
  EXPECT_EQ(field.get().as_int(), 1);

  Heap other;
  run_native([&] {
    // (No thread-safety analysis: the refused acquires take nothing.)
    std::thread([&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
      MutatorScope attach_other(other);
      EXPECT_THROW(IsolateScope enter(a), ThreadStateError);
      EXPECT_THROW(run_shared(group, [] {}), ThreadStateError);
      EXPECT_THROW(field.get(), ThreadStateError);
      EXPECT_THROW(field.set(Value::from_int(5)), ThreadStateError);
      EXPECT_THROW(global.get(), ThreadStateError);
      EXPECT_THROW(to_a.send(n.value()), ThreadStateError);
      EXPECT_THROW(to_a.send(n.value(), SendMode::kTransfer), ThreadStateError);
      EXPECT_THROW(inbox.try_receive(), ThreadStateError);
      EXPECT_THROW(freeze(n.value()), NotAttached);
      EXPECT_THROW(detach(n.value()), ThreadStateError);
      EXPECT_THROW(l->acquire(), NotAttached);
      EXPECT_THROW(l->try_acquire(), NotAttached);
      EXPECT_THROW(l->try_acquire_for(std::chrono::milliseconds(1)), NotAttached);
      EXPECT_THROW(l->acquire_async(pool), NotAttached);
      EXPECT_THROW(c->notify_all(), NotAttached);
      EXPECT_THROW(pool.submit([](Value v) { return v.is_object(); }, n.value()), ThreadStateError);
      EXPECT_EQ(pool.submit([] { return 3; }).get(), 3);  // plain arguments: fine
    }).join();
  });
  EXPECT_EQ(field.get().as_int(), 1);
  EXPECT_FALSE(l->is_locked());
  EXPECT_FALSE(is_frozen(n.value()));
  EXPECT_EQ(n.object()->owner(), a.id());
  EXPECT_EQ(inbox.pending(), 0u);
  EXPECT_TRUE(heap.verify().ok);
}

// A thread running on heap B destroys heap A, whose marker thread is busy: the join
// waits in the GC-safe state, so B's collections go on meanwhile. (The thread used to
// wait in the running state: every pause of B waited for A's marker to finish.)
TEST(ForeignHeapTest, DestroyingAHeapWhileRunningOnAnotherDoesNotHoldUpItsPauses) {
  auto a = std::make_unique<Heap>();
  Heap b;
  // A's marker is held as it takes its cycle over (the hook goes with A).
  struct Hold {
    std::mutex mu;
    std::condition_variable cv;
    bool held = false, released = false;
  };
  auto hold = std::make_shared<Hold>();
  a->impl().collector.set_before_concurrent_mark_hook_for_testing([hold] {
    std::unique_lock<std::mutex> lock(hold->mu);
    hold->held = true;
    hold->cv.notify_all();
    hold->cv.wait(lock, [&] { return hold->released; });
  });
  std::thread([&] {
    MutatorScope attach(*a);
    make_list(100);
    a->start_collection();
  }).join();
  {
    std::unique_lock<std::mutex> lock(hold->mu);
    hold->cv.wait(lock, [&] { return hold->held; });
  }
  std::atomic<bool> destroying{false};
  std::thread destroyer([&] {
    MutatorScope attach(b);
    destroying = true;
    a.reset();  // joins A's marker, which is held
  });
  {
    MutatorScope attach(b);
    run_native([&] {
      while (!destroying.load()) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // (the destroyer is in the join)
    });
    b.collect();  // needs the destroyer at a safepoint
  }
  {
    std::lock_guard<std::mutex> lock(hold->mu);
    hold->released = true;
  }
  hold->cv.notify_all();
  destroyer.join();
}

}  // namespace
}  // namespace shoal::test
