// Finalizers: run once, after the target is found dead, only when the embedder asks
// (never in a pause or on a collector thread), and never for a live object.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

class FinalizerTest : public CycleKindTest {};

TEST_P(FinalizerTest, RunsOnceForDeadObjectsOnlyAndOnlyWhenAsked) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 200;
  auto ran = std::make_shared<std::vector<std::atomic<int>>>(kN);
  Ref<RefArray> strong = RefArray::create(kN);
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i) {
      Ref<Node> n = make<Node>();
      if (i % 2 == 0) strong->set(i, n.value());
      heap.add_finalizer(n.value(), [ran, i] { (*ran)[i]++; });
    }
  });
  clobber_stack();
  cycle(heap);
  for (size_t i = 0; i < kN; ++i) EXPECT_EQ((*ran)[i].load(), 0) << "ran before run_finalizers";
  const size_t pending = heap.pending_finalizers();
  EXPECT_GE(pending, kN / 2 - 5);
  EXPECT_LE(pending, kN / 2);
  EXPECT_EQ(heap.run_finalizers(), pending);
  EXPECT_EQ(heap.pending_finalizers(), 0u);
  size_t finalized = 0;
  for (size_t i = 0; i < kN; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ((*ran)[i].load(), 0) << "finalized a live object " << i;
    }
    finalized += static_cast<size_t>((*ran)[i].load());
  }
  EXPECT_EQ(finalized, pending);
  // Further cycles do not run anything twice; dropping the survivors finalizes them.
  for (size_t i = 0; i < kN; ++i) strong->set(i, Value::null());
  cycle(heap);
  cycle(heap);
  heap.run_finalizers();
  size_t total = 0;
  for (size_t i = 0; i < kN; ++i) {
    EXPECT_LE((*ran)[i].load(), 1) << i;
    total += static_cast<size_t>((*ran)[i].load());
  }
  EXPECT_GE(total, kN - 5);
}

// The notification comes after the cycle, outside its pause; run_finalizers then runs
// on a thread the embedder chose, which may allocate in the callbacks.
TEST_P(FinalizerTest, NotificationWakesAFinalizerThreadThatAllocates) {
  std::atomic<int> notified{0};
  HeapOptions o = options();
  o.on_finalizers_pending = [&] { notified++; };
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<int> ran{0};
  in_own_frame([&] {
    for (int i = 0; i < 50; ++i) heap.add_finalizer(make<Node>().value(), [&] {
      Ref<Node> n = make<Node>();  // the finalizer thread is attached: it may allocate
      n->value = 1;
      ran++;
    });
  });
  clobber_stack();
  cycle(heap);
  // (The marker thread calls the hook after the cycle has ended, so give it a moment.)
  for (int i = 0; i < 5000 && notified.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GT(notified.load(), 0);
  std::thread finalizer_thread([&] {
    MutatorScope attach_too(heap);
    heap.run_finalizers();
  });
  run_native([&] { finalizer_thread.join(); });
  EXPECT_GE(ran.load(), 45);
}

TEST_P(FinalizerTest, RacingRegistrationsAndCollections) {
  HeapOptions o = options();
  o.min_gc_trigger = size_t{1} << 20;
  o.verify_after_gc = false;
  Heap heap(o);
  std::atomic<size_t> registered{0}, ran{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      MutatorScope attach(heap);
      for (int i = 0; i < 3000; ++i) {
        Ref<Node> n = make<Node>();
        heap.add_finalizer(n.value(), [&] { ran++; });
        registered++;
        for (int g = 0; g < 30; ++g) make<Node>();
      }
    });
  }
  std::thread finalizer_thread([&] {  // an unattached thread running finalizers
    while (!stop.load()) {
      heap.run_finalizers();
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  {
    MutatorScope attach(heap);
    clobber_stack();
    for (int c = 0; c < 3; ++c) heap.collect();
  }
  stop = true;
  finalizer_thread.join();
  heap.run_finalizers();
  EXPECT_LE(ran.load(), registered.load());
  EXPECT_GE(ran.load(), registered.load() - 10) << "all but a few stray-stack-word survivors";
  EXPECT_EQ(heap.pending_finalizers(), 0u);
}

// Cancelled registrations never run: neither while the target lives nor once it has died
// with the callback pending. A token cancels at most once.
TEST_P(FinalizerTest, CancelledFinalizersNeverRun) {
  Heap heap(options());
  MutatorScope attach(heap);
  constexpr size_t kN = 100;
  auto ran = std::make_shared<std::vector<std::atomic<int>>>(kN);
  std::vector<FinalizerToken> tokens;
  in_own_frame([&] {
    for (size_t i = 0; i < kN; ++i)
      tokens.push_back(heap.add_finalizer(make<Node>().value(), [ran, i] { (*ran)[i]++; }));
  });
  for (size_t i = 0; i < kN; i += 3) EXPECT_TRUE(heap.cancel_finalizer(tokens[i]));  // target alive
  clobber_stack();
  cycle(heap);
  heap.collect();  // every target is dead now: the rest are pending
  for (size_t i = 1; i < kN; i += 3) EXPECT_TRUE(heap.cancel_finalizer(tokens[i])) << i;  // pending
  for (size_t i = 0; i < kN; i += 3) EXPECT_FALSE(heap.cancel_finalizer(tokens[i]));  // twice
  const size_t ran_now = heap.run_finalizers();
  size_t expected = 0, stray = 0;
  for (size_t i = 0; i < kN; ++i) {
    if (i % 3 == 2) {
      ++expected;
      stray += (*ran)[i] == 0;  // kept alive by a stray stack word: not run yet
    } else {
      EXPECT_EQ((*ran)[i], 0) << "cancelled finalizer " << i << " ran";
    }
  }
  EXPECT_EQ(ran_now + stray, expected);
  EXPECT_LE(stray, 3u);
  EXPECT_FALSE(heap.cancel_finalizer(tokens[2]));  // already ran
}

// A callback that captures a handle, cancelled by an unattached thread while a pause
// holds the root lock: the cancel must not destroy the callback (whose handle takes the
// root lock) while it holds the finalizer table's lock, which the pause takes next - or
// the two wait for each other for ever. The scan hook makes exactly that interleaving.
TEST(FinalizerCancelTest, CancelDuringAPauseDropsTheCallbackOutsideTheTableLock) {
  Heap heap;
  MutatorScope attach(heap);
  Persistent<Node> root(heap, make<Node>());  // gives the root scan a node to report
  Persistent<Node> captured(heap, make<Node>());
  const FinalizerToken token = heap.add_finalizer(make<Node>().value(), [captured] {});
  std::mutex mu;
  std::condition_variable cv;
  bool go = false, cancelled = false;
  std::atomic<bool> armed{true};
  heap.impl().roots.set_scan_hook_for_testing([&](size_t) {
    if (!armed.exchange(false)) return;
    std::unique_lock<std::mutex> lock(mu);
    go = true;
    cv.notify_all();
    // Give the canceller time to take the table lock and block on the root lock.
    cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return cancelled; });
  });
  std::thread canceller([&] {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return go; });
    }
    EXPECT_TRUE(heap.cancel_finalizer(token));
    std::lock_guard<std::mutex> lock(mu);
    cancelled = true;
    cv.notify_all();
  });
  heap.collect();  // before the fix: hangs here
  run_native([&] { canceller.join(); });
  heap.impl().roots.set_scan_hook_for_testing(nullptr);
  EXPECT_EQ(heap.run_finalizers(), 0u);
}

TEST_P(FinalizerTest, Misuse) {
  Heap heap(options());
  MutatorScope attach(heap);
  EXPECT_THROW(heap.add_finalizer(Value::from_int(3), [] {}), InvalidArgument);
  EXPECT_THROW(heap.add_finalizer(make<Node>().value(), nullptr), InvalidArgument);
  std::thread other([&] { EXPECT_THROW(heap.add_finalizer(Value::null(), [] {}), NotAttached); });
  run_native([&] { other.join(); });
  // An exception from a callback reaches run_finalizers' caller; the rest stay queued.
  in_own_frame([&] {
    heap.add_finalizer(make<Node>().value(), [] { throw std::runtime_error("cleanup failed"); });
  });
  clobber_stack();
  cycle(heap);
  if (heap.pending_finalizers() == 1) {
    EXPECT_THROW(heap.run_finalizers(), std::runtime_error);
  }
}

INSTANTIATE_TEST_SUITE_P(Cycles, FinalizerTest, ::testing::Values(false, true), cycle_kind_name);

// A target that is another heap's object (a reference carried over from one of its
// threads) is refused: the table would look it up in this heap's mark bits.
TEST(FinalizerTargetTest, AnotherHeapsObjectIsRefused) {
  Heap other;
  std::optional<Persistent<Node>> foreign;
  Value raw;
  std::thread([&] {
    MutatorScope attach(other);
    foreign.emplace(other, make<Node>());
    raw = foreign->get().value();
  }).join();
  Heap heap;
  MutatorScope attach(heap);
  EXPECT_THROW(heap.add_finalizer(raw, [] {}), NotAttached);
  EXPECT_EQ(heap.pending_finalizers(), 0u);
  heap.collect();
  EXPECT_TRUE(heap.verify().ok);
  run_native([&] { std::thread([&] { foreign.reset(); }).join(); });
}

}  // namespace
}  // namespace shoal::test
