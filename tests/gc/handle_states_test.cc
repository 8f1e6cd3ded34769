// Handle operations from every thread state (gc/roots.h, docs/roots.md): a running
// thread, one inside run_native, an unattached thread, a finalizer callback on an
// unattached thread, a handshake callback. Each case below was a way to reach freed
// memory before the root lock covered whole pauses; the hooks (marker trace hook, root
// scan hook, handle copy hook) force the interleaving that lost the object.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using std::chrono::milliseconds;

// A one-shot signal between threads; wait_for gives up after a timeout (the fixed code
// blocks the other side until a pause ends, so the signal may never come in time).
class Signal {
 public:
  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      set_ = true;
    }
    cv_.notify_all();
  }
  bool wait_for(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// Runs f on a new unattached thread and joins it (the caller blocks in native).
template <class F>
void on_unattached_thread(F&& f) {
  std::thread t(std::forward<F>(f));
  if (current_heap())
    run_native([&] { t.join(); });
  else
    t.join();
}

// A list of 5 nodes reachable only through the returned weak handle.
WeakRef<Node> weakly_held_list(Heap& heap, HiddenPtr* hidden) {
  WeakRef<Node> weak;
  in_own_frame([&] {
    Ref<Node> list = make_list(5);
    *hidden = HiddenPtr(list.object());
    weak = WeakRef<Node>(heap, list);
  });
  clobber_stack();
  return weak;
}

HeapOptions concurrent_verified() {
  HeapOptions o;
  o.concurrent_marking = true;
  o.verify_after_gc = true;
  return o;
}

// ---- Weak upgrade while a concurrent cycle marks, from each non-running state -------

enum class Context { kUnattached, kNative, kHandshakeCallback };

std::string context_name(const ::testing::TestParamInfo<Context>& info) {
  switch (info.param) {
    case Context::kUnattached: return "Unattached";
    case Context::kNative: return "RunNative";
    case Context::kHandshakeCallback: return "HandshakeCallback";
  }
  return "?";
}

class WeakUpgradeTest : public ::testing::TestWithParam<Context> {};

// The target is reachable at the snapshot only through the WeakRef. With the marker
// held mid-cycle, the thread upgrades it. get() there would hand out an unshaded raw
// reference on an unscanned stack: it must throw. lock() must keep the target alive
// through the final pause (which clears weak handles to unmarked objects) and the sweep.
TEST_P(WeakUpgradeTest, LockKeepsTheTargetGetIsRefused) {
  Heap heap(concurrent_verified());
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make_tree(2));
  HiddenPtr hidden;
  WeakRef<Node> weak = weakly_held_list(heap, &hidden);

  Persistent<Node> locked;
  bool get_refused = false;
  auto upgrade = [&] {
    try {
      (void)weak.get();
    } catch (const ThreadStateError&) {
      get_refused = true;
    }
    locked = weak.lock();
  };

  MarkerPause pause(heap, anchor.get().object());
  heap.start_collection();
  pause.wait_until_held();
  ASSERT_TRUE(heap.is_marking());
  switch (GetParam()) {
    case Context::kUnattached: on_unattached_thread(upgrade); break;
    case Context::kNative: run_native(upgrade); break;
    case Context::kHandshakeCallback: {
      bool once = false;
      handshake_all(heap, [&](size_t) {
        if (!once) upgrade();
        once = true;
      });
      break;
    }
  }
  pause.release();
  heap.wait_for_collection();
  clobber_stack();
  EXPECT_NO_THROW(heap.collect());  // verify_after_gc: rethrows a failed verification

  EXPECT_TRUE(get_refused);
  ASSERT_TRUE(locked) << "lock() returned null: the target was cleared while a handle held it";
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(list_length_checked(locked.get()), 5u);
  EXPECT_TRUE(is_allocated(heap, hidden));
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

INSTANTIATE_TEST_SUITE_P(States, WeakUpgradeTest,
                         ::testing::Values(Context::kUnattached, Context::kNative, Context::kHandshakeCallback),
                         context_name);

// A finalizer callback, run by an unattached thread while the marker is held, upgrades a
// weak handle: the same guarantee as above, from inside run_finalizers.
TEST(WeakUpgradeInFinalizerTest, LockFromAFinalizerOnAnUnattachedThread) {
  Heap heap(concurrent_verified());
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make_tree(2));
  HiddenPtr hidden;
  WeakRef<Node> weak;  // made after the collection that queues the finalizer
  Persistent<Node> locked;
  bool get_refused = false, ran = false;
  // (The target is made on a thread that exits: no stray word on this thread's stack,
  // which the collector scans conservatively, can keep it.)
  on_helper_thread(heap, [&] {
    heap.add_finalizer(make<Node>().value(), [&] {
      ran = true;
      try {
        (void)weak.get();
      } catch (const ThreadStateError&) {
        get_refused = true;
      }
      locked = weak.lock();
    });
  });
  heap.collect();  // the finalizer's target dies: its callback is pending
  ASSERT_EQ(heap.pending_finalizers(), 1u) << "a stray stack word kept the finalizer's target";
  weak = weakly_held_list(heap, &hidden);

  MarkerPause pause(heap, anchor.get().object());
  heap.start_collection();
  pause.wait_until_held();
  on_unattached_thread([&] { heap.run_finalizers(); });
  pause.release();
  heap.wait_for_collection();
  clobber_stack();
  EXPECT_NO_THROW(heap.collect());
  EXPECT_TRUE(ran);
  EXPECT_TRUE(get_refused);
  ASSERT_TRUE(locked);
  EXPECT_EQ(list_length_checked(locked.get()), 5u);
  EXPECT_TRUE(heap.verify().ok);
}

// ---- Moving a target between handles on an unattached thread, during a root scan ----

class HandleMoveTest : public CycleKindTest {};

// dst is scanned before src. The scan hook, after reading dst, lets an unattached thread
// move the target from src to dst (set_from, then clear src) and waits for it. Before
// the fix the move landed between the two reads and the object, held by a handle at
// every moment, was freed. Now the mover waits for the pause to end.
TEST_P(HandleMoveTest, MoveDuringTheRootScanIsSeenBeforeOrAfter) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<Node> dst(heap, Ref<Node>());  // acquired first: scanned first
  Persistent<Node> src;
  HiddenPtr hidden;
  in_own_frame([&] {
    Ref<Node> list = make_list(5);
    hidden = HiddenPtr(list.object());
    src = Persistent<Node>(heap, list);
  });
  clobber_stack();

  Signal go, moved;
  std::atomic<bool> hook_armed{true};
  std::atomic<bool> moved_inside_pause{false};
  heap.impl().roots.set_scan_hook_for_testing([&](size_t scanned) {
    if (scanned != 1 || !hook_armed.exchange(false)) return;
    go.notify();
    moved_inside_pause = moved.wait_for(milliseconds(200));
  });
  std::thread mover([&] {
    go.wait();
    dst.set_from(src);
    src.set(Ref<Node>());
    moved.notify();
  });
  cycle(heap);  // verify_after_gc: a lost object throws HeapCorruption here
  run_native([&] { mover.join(); });
  heap.impl().roots.set_scan_hook_for_testing(nullptr);
  EXPECT_FALSE(moved_inside_pause.load()) << "the move ran inside the pause";
  clobber_stack();
  EXPECT_NO_THROW(cycle(heap));
  EXPECT_TRUE(src.is_null());
  ASSERT_TRUE(dst);
  EXPECT_EQ(list_length_checked(dst.get()), 5u);
  EXPECT_TRUE(heap.verify().ok);
}

INSTANTIATE_TEST_SUITE_P(Cycles, HandleMoveTest, ::testing::Values(false, true), cycle_kind_name);

// ---- Copying a WeakRef on an unattached thread with a pause in between -------------

class WeakCopyTest : public CycleKindTest {};

// The copy hook runs between reading the source and publishing the copy; there it asks
// the main thread for a collection and waits for it. Before the fix the collection ran
// in that gap: it cleared the source and freed the target, and the copy was then
// published holding freed memory. Now the collection's pause waits for the copy, and
// clears both.
TEST_P(WeakCopyTest, CopyIsAtomicWithRespectToThePause) {
  Heap heap(options());
  MutatorScope attach(heap);
  HiddenPtr hidden;
  WeakRef<Node> weak = weakly_held_list(heap, &hidden);
  Signal collect_now, collected;
  std::atomic<bool> collected_inside_copy{false};
  heap.impl().roots.set_copy_hook_for_testing([&] {
    collect_now.notify();
    collected_inside_copy = collected.wait_for(milliseconds(200));
  });
  WeakRef<Node> copy;
  std::thread copier([&] { copy = WeakRef<Node>(weak); });
  run_native([&] { collect_now.wait(); });
  cycle(heap);
  collected.notify();
  run_native([&] { copier.join(); });
  heap.impl().roots.set_copy_hook_for_testing(nullptr);
  EXPECT_FALSE(collected_inside_copy.load()) << "a collection ran between the copy's read and publish";
  EXPECT_TRUE(weak.expired()) << "a stray stack word kept the target; the test proves nothing";
  EXPECT_TRUE(copy.expired()) << "the copy survived the clearing of its source";
  EXPECT_FALSE(is_allocated(heap, hidden));
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

INSTANTIATE_TEST_SUITE_P(Cycles, WeakCopyTest, ::testing::Values(false, true), cycle_kind_name);

// ---- Typed errors for raw references off the running state -------------------------

TEST(HandleStateErrorsTest, RawReferencesNeedARunningThread) {
  Heap heap;
  MutatorScope attach(heap);
  Ref<Node> n = make<Node>();
  Persistent<Node> p(heap, n);
  WeakRef<Node> w(heap, n);
  Slot global;
  heap.add_root(&global);
  heap.store_root(&global, n.value());
  PersistentValue number(heap, Value::from_int(42));
  auto refused_everywhere_off_running = [&] {
    EXPECT_THROW(p.get(), ThreadStateError);
    EXPECT_THROW((void)p->value, ThreadStateError);
    EXPECT_THROW(w.get(), ThreadStateError);
    EXPECT_THROW(p.set(n), ThreadStateError);
    EXPECT_THROW(Persistent<Node>(heap, n), ThreadStateError);
    EXPECT_THROW(WeakRef<Node>(heap, n), ThreadStateError);
    EXPECT_THROW(heap.store_root(&global, n.value()), ThreadStateError);
    // What needs no raw reference works from anywhere.
    EXPECT_TRUE(p);
    EXPECT_FALSE(w.expired());
    EXPECT_EQ(number.get().as_int(), 42);
    Persistent<Node> copy = p;
    Persistent<Node> from_weak = w.lock();
    EXPECT_TRUE(copy);
    EXPECT_TRUE(from_weak);
    Persistent<Node> empty(heap, Ref<Node>());
    empty.set_from(p);
    EXPECT_TRUE(empty);
    empty.set(Ref<Node>());
    EXPECT_FALSE(empty);
    WeakRef<Node> weak_copy = w;
    WeakRef<Node> weak_of_strong(p);
    EXPECT_FALSE(weak_copy.expired());
    EXPECT_FALSE(weak_of_strong.expired());
  };
  on_unattached_thread(refused_everywhere_off_running);
  run_native(refused_everywhere_off_running);
  {
    Heap other;
    std::thread t([&] {
      MutatorScope attach_other(other);  // attached, but to another heap
      EXPECT_THROW(p.get(), ThreadStateError);
      EXPECT_TRUE(p);
    });
    run_native([&] { t.join(); });
  }
  // On the running thread all of it works.
  EXPECT_EQ(p.get(), n);
  EXPECT_EQ(w.get(), n);
  heap.store_root(&global, Value::null());
  heap.remove_root(&global);
}

TEST(HandleStateErrorsTest, UntypedHandleKeepsAnyValue) {
  Heap heap;
  MutatorScope attach(heap);
  PersistentValue v(heap, Value::from_int(-7));
  EXPECT_TRUE(v.get().is_int());
  EXPECT_EQ(v.get().as_int(), -7);
  EXPECT_FALSE(v.holds_object());
  v.set(String::create("kept").value());
  clobber_stack();
  heap.collect();
  ASSERT_TRUE(v.holds_object());
  EXPECT_EQ(Ref<String>::from_value(v.get())->view(), "kept");
  PersistentValue w = v;
  v.reset();
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(w.holds_object());
}

// ---- Randomized: handles moved between running, native and unattached threads ------

// Boxes of handles shared by threads in three states. Running threads put fresh lists
// into boxes and check what they read back; a thread inside run_native and an
// unattached thread move, copy, upgrade and clear handles between boxes with the
// operations allowed off the running state; another thread runs cycles. Every list
// carries its length in its values, so a freed and reused node shows up as a bad list;
// the verifier runs after every cycle.
class HandleShuffleTest : public CycleKindTest {};

struct Box {
  std::mutex mu;
  Persistent<Node> strong;
  WeakRef<Node> weak;
};

TEST_P(HandleShuffleTest, HandlesMovedAcrossThreadStatesWhileCyclesRun) {
  HeapOptions o = options();
  o.min_gc_trigger = size_t{1} << 20;
  Heap heap(o);
  constexpr size_t kBoxes = 16;
  std::vector<Box> boxes(kBoxes);
  {
    MutatorScope attach(heap);
    for (Box& b : boxes) b.strong = Persistent<Node>(heap, Ref<Node>());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<size_t> ops{0};
  // A running thread must not block on a box while others may wait for a pause: it takes
  // box locks inside run_native (the rule for every blocking call).
  auto lock_two = [](Box& a, Box& b, bool running) {
    auto take = [&] {
      if (&a == &b)
        a.mu.lock();
      else
        std::lock(a.mu, b.mu);
    };
    if (running)
      run_native(take);
    else
      take();
  };
  auto unlock_two = [](Box& a, Box& b) {
    a.mu.unlock();
    if (&a != &b) b.mu.unlock();
  };
  // Off the running state: only handle-to-handle operations.
  auto shuffle = [&](std::mt19937_64& rng, bool running) {
    Box& a = boxes[rng() % kBoxes];
    Box& b = boxes[rng() % kBoxes];
    lock_two(a, b, running);
    switch (rng() % 6) {
      case 0: a.strong.set_from(b.strong); break;                        // copy a target
      case 1: a.strong.set_from(b.strong); b.strong.set(Ref<Node>()); break;  // move it
      case 2: a.weak = WeakRef<Node>(b.strong); break;                   // weak of strong
      case 3: a.strong = b.weak.lock(); break;                           // weak upgrade
      case 4: a.weak = b.weak; break;                                    // weak copy
      case 5: std::swap(a.strong, b.strong); break;                      // move handles
    }
    // (lock() of an empty WeakRef is an empty handle: give it a node again - a null
    // target is allowed off the running state)
    if (a.strong.empty()) a.strong = Persistent<Node>(heap, Ref<Node>());
    unlock_two(a, b);
    ops++;
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {  // running
      MutatorScope attach(heap);
      std::mt19937_64 rng(100 + static_cast<unsigned>(r));
      while (!stop.load()) {
        Box& a = boxes[rng() % kBoxes];
        Ref<Node> fresh = make_list(1 + rng() % 8);
        lock_two(a, a, true);
        if (rng() % 2) {
          a.strong.set(fresh);
        } else {
          if (Ref<Node> seen = a.strong.get(); seen && list_length_checked(seen) == SIZE_MAX) bad++;
          if (Ref<Node> seen = a.weak.get(); seen && list_length_checked(seen) == SIZE_MAX) bad++;
        }
        unlock_two(a, a);
        if (rng() % 4 == 0) shuffle(rng, true);
        for (int g = 0; g < 20; ++g) make<Node>();
      }
    });
  }
  threads.emplace_back([&] {  // in native
    MutatorScope attach(heap);
    std::mt19937_64 rng(7);
    while (!stop.load()) run_native([&] {
        for (int i = 0; i < 16; ++i) shuffle(rng, false);
      });
  });
  threads.emplace_back([&] {  // unattached
    std::mt19937_64 rng(8);
    while (!stop.load()) shuffle(rng, false);
  });
  threads.emplace_back([&] {  // cycles
    MutatorScope attach(heap);
    while (!stop.load()) {
      try {
        cycle(heap);
      } catch (const HeapCorruption& e) {
        ADD_FAILURE() << e.what();
        stop = true;
      }
      run_native([] { std::this_thread::sleep_for(milliseconds(2)); });
    }
  });
  std::this_thread::sleep_for(milliseconds(700));
  stop = true;
  for (auto& t : threads) t.join();
  MutatorScope attach(heap);
  EXPECT_NO_THROW(heap.collect());
  for (Box& b : boxes) {
    if (Ref<Node> s = b.strong.get()) {
      EXPECT_NE(list_length_checked(s), SIZE_MAX);
    }
    if (Ref<Node> w = b.weak.get()) {
      EXPECT_NE(list_length_checked(w), SIZE_MAX);
    }
  }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(ops.load(), 100u);
  EXPECT_GT(heap.stats().collections, 3u);
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
  for (Box& b : boxes) {
    b.strong.reset();
    b.weak.reset();
  }
}

INSTANTIATE_TEST_SUITE_P(Cycles, HandleShuffleTest, ::testing::Values(false, true), cycle_kind_name);

}  // namespace
}  // namespace shoal::test
