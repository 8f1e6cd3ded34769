// Asynchronous preemption (gc/async_preemption.h): pauses do not wait for threads that
// neither allocate nor poll, and a thread parked at an arbitrary instruction keeps
// everything its registers and stack hold.
//
// Each spinning thread also stops by itself after a deadline, so a missing preemption
// fails the test (the collections finished only after the spinner gave up) instead of
// hanging it.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kSpinDeadline = 60s;

HeapOptions verified_options() {
  HeapOptions o;
  o.verify_after_gc = true;
  o.poison_freed_memory = true;
  return o;
}

// Sums a list's values: loads only, no allocation, no poll.
[[gnu::noinline]] int64_t walk_sum(Ref<Node> head) {
  int64_t sum = 0;
  for (Ref<Node> p = head; p; p = p->left.get()) sum += p->value;
  return sum;
}

// Spins on `body` until `stop` or the deadline; true if the deadline ended it.
template <class Body>
bool spin_until_stopped(const std::atomic<bool>& stop, Body&& body) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinDeadline;
  for (uint64_t round = 0; !stop.load(std::memory_order_relaxed); ++round) {
    body();
    if ((round & 1023) == 0 && std::chrono::steady_clock::now() > deadline) return true;
  }
  return false;
}

TEST(AsyncPreemptionTest, StatusSaysWhetherItIsActive) {
  HeapOptions off_options;
  off_options.async_preemption = false;
  Heap off(off_options);
  EXPECT_FALSE(off.async_preemption_active());
  EXPECT_NE(off.async_preemption_status().find("off"), std::string::npos);
  Heap on;
  if (on.async_preemption_active()) {
    EXPECT_EQ(on.async_preemption_status(), "active");
  } else {
    EXPECT_NE(on.async_preemption_status().find("unavailable: "), std::string::npos) << on.async_preemption_status();
  }
}

TEST(AsyncPreemptionTest, NonPollingLoopDoesNotHoldUpPausesAndKeepsItsReferences) {
  Heap heap(verified_options());
  if (!heap.async_preemption_active()) GTEST_SKIP() << heap.async_preemption_status();
  constexpr int64_t kLength = 1000;
  std::atomic<bool> stop{false}, started{false}, gave_up{false};
  std::atomic<uint64_t> wrong_sums{0};
  std::thread spinner([&] {
    MutatorScope attach(heap);
    Ref<Node> list = make_list(kLength);  // only this thread's stack and registers hold it
    started = true;
    gave_up = spin_until_stopped(stop, [&] {
      if (walk_sum(list) != kLength * (kLength - 1) / 2) wrong_sums++;
    });
  });
  MutatorScope attach(heap);
  while (!started.load()) std::this_thread::yield();
  clobber_stack();
  for (int i = 0; i < 20; ++i) heap.collect();  // stop-the-world
  for (int i = 0; i < 10; ++i) {                // concurrent: two pauses and a SATB handshake
    heap.start_collection();
    heap.wait_for_collection();
  }
  const bool finished_while_spinning = !gave_up.load();
  stop = true;
  run_native([&] { spinner.join(); });
  EXPECT_TRUE(finished_while_spinning);
  EXPECT_EQ(wrong_sums.load(), 0u);
  const GcStats s = heap.stats();
  EXPECT_GE(s.collections, 30u);
  EXPECT_GT(s.preemption_signals, 0u);
  EXPECT_EQ(s.time_to_safepoint.count, s.pauses.count);
}

// Threads that only move references around (write barrier, no allocation, no poll)
// while concurrent cycles start and end under them: a barrier split by a pause would
// lose a leaf (the verifier or the poisoned value would show it), and references held
// only in registers between the two stores of a swap must survive.
TEST(AsyncPreemptionTest, BarrierHeavyLoopsSurviveConcurrentCycles) {
  Heap heap(verified_options());
  if (!heap.async_preemption_active()) GTEST_SKIP() << heap.async_preemption_status();
  constexpr int kThreads = 2;
  constexpr int kHolders = 64;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0}, gave_up{0};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      // holders: a list through `right`; each holder's `left` is a leaf with a unique value.
      Ref<Node> head;
      std::vector<Node*> holders;  // (not roots: the list keeps them; objects never move)
      for (int i = 0; i < kHolders; ++i) {
        Ref<Node> h = make<Node>();
        Ref<Node> leaf = make<Node>();
        leaf->value = 1000 * (t + 1) + i;
        h.set(&Node::left, leaf);
        h.set(&Node::right, head);
        head = h;
        holders.push_back(h.operator->());
      }
      started++;
      uint64_t x = 88172645463325252ull + static_cast<uint64_t>(t);
      const bool out_of_time = spin_until_stopped(stop, [&] {
        for (int k = 0; k < 64; ++k) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          Node* a = holders[x % kHolders];
          Node* b = holders[(x >> 32) % kHolders];
          Ref<Node> leaf = a->left.get();  // between the two writes, only a register holds it
          write(Object::from_payload(a), a->left.slot(), b->left.value());
          write(Object::from_payload(b), b->left.slot(), leaf.value());
        }
      });
      if (out_of_time) gave_up++;
      int64_t sum = 0;
      for (Ref<Node> h = head; h; h = h->right.get()) sum += h->left->value;
      int64_t expected = 0;
      for (int i = 0; i < kHolders; ++i) expected += 1000 * (t + 1) + i;
      if (sum != expected) errors++;
    });
  }
  MutatorScope attach(heap);
  while (started.load() < kThreads) std::this_thread::yield();
  for (int i = 0; i < 30; ++i) {
    heap.start_collection();
    heap.wait_for_collection();
  }
  heap.collect();
  const bool finished_while_spinning = gave_up.load() == 0;
  stop = true;
  run_native([&] {
    for (auto& th : threads) th.join();
  });
  EXPECT_TRUE(finished_while_spinning);
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_GT(heap.stats().preemption_signals, 0u);
}

// The end of a pause releases every stopped thread at once, whichever way it stopped:
// parked at a poll (an allocating loop) or inside its preemption handler (a loop that
// never polls). All of them sleep on one resume word (ThreadRegistry::resume_the_world);
// the safety-net timeout of that sleep is raised to a minute here, so a thread the
// wake-up missed stays parked and the deadline below fails the test.
TEST(AsyncPreemptionTest, EveryStoppedThreadIsReleasedWhenThePauseEnds) {
  Heap heap(verified_options());
  if (!heap.async_preemption_active()) GTEST_SKIP() << heap.async_preemption_status();
  heap.impl().threads.set_resume_wait_for_testing(60'000'000'000ull);
  constexpr int kPollers = 2, kSpinners = 2, kThreads = kPollers + kSpinners;
  constexpr int kPauses = 20;
  constexpr auto kReleaseDeadline = 20s;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0}, gave_up{0};
  std::vector<std::atomic<uint64_t>> progress(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      Ref<Node> list = make_list(50);
      started++;
      const bool out_of_time = spin_until_stopped(stop, [&] {
        if (t < kPollers) {
          Ref<Node> n = make<Node>();  // allocates: stops at a poll
          n.set(&Node::left, list);
        } else {
          (void)walk_sum(list);  // no poll: stopped by the preemption signal
        }
        progress[t].fetch_add(1, std::memory_order_relaxed);
      });
      if (out_of_time) gave_up++;
    });
  }
  MutatorScope attach(heap);
  while (started.load() < kThreads) std::this_thread::yield();
  int missed = 0;
  for (int i = 0; i < kPauses && missed == 0; ++i) {
    heap.collect();
    // Every thread was stopped by that pause; each must run again well before the
    // safety net would have let it go.
    std::vector<uint64_t> at_resume(kThreads);
    for (int t = 0; t < kThreads; ++t) at_resume[t] = progress[t].load();
    const auto deadline = std::chrono::steady_clock::now() + kReleaseDeadline;
    run_native([&] {
      for (int t = 0; t < kThreads; ++t) {
        while (progress[t].load() == at_resume[t] && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(50us);
        if (progress[t].load() == at_resume[t]) missed++;
      }
    });
  }
  stop = true;
  heap.impl().threads.set_resume_wait_for_testing(1'000'000);  // (a missed thread: let it go)
  run_native([&] {
    for (auto& th : threads) th.join();
  });
  EXPECT_EQ(missed, 0);
  EXPECT_EQ(gave_up.load(), 0);
  const GcStats stats = heap.stats();
  EXPECT_GE(stats.collections, static_cast<uint64_t>(kPauses));
  EXPECT_GT(stats.preemption_signals, 0u);
  // Each pause stopped every looping thread, and each recorded how long it then waited
  // to run again.
  EXPECT_GE(stats.resume_latency.count, static_cast<uint64_t>(kPauses * kThreads));
  uint64_t in_buckets = 0;
  for (uint64_t n : stats.resume_latency.buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, stats.resume_latency.count);
}

// A running thread blocked on a lock that a preempted thread holds (against the rules:
// docs/safepoints.md says to wait inside run_native - but it happens) would deadlock the
// pause: it is in libc, so it is never preempted, and the holder cannot run to release
// the lock. The stopper backs off: preempted threads are let go for a while, the holder
// releases the lock, and the pause completes.
TEST(AsyncPreemptionTest, ABlockedWaiterOnAPreemptedHoldersLockDelaysThePauseButDoesNotDeadlockIt) {
  Heap heap(verified_options());
  if (!heap.async_preemption_active()) GTEST_SKIP() << heap.async_preemption_status();
  // (Backing off wakes the preempted holder; a missed wake-up must not be hidden by
  // the resume wait's short safety-net timeout.)
  heap.impl().threads.set_resume_wait_for_testing(60'000'000'000ull);
  constexpr int64_t kLength = 100;
  std::mutex mu;
  std::atomic<bool> holding{false}, release{false}, stop{false}, waiter_done{false};
  std::atomic<int> gave_up{0};
  std::thread holder([&] {
    MutatorScope attach(heap);
    Ref<Node> list = make_list(kLength);
    {
      std::lock_guard<std::mutex> lock(mu);
      holding = true;
      if (spin_until_stopped(release, [&] { (void)walk_sum(list); })) gave_up++;
    }
    if (spin_until_stopped(stop, [&] { (void)walk_sum(list); })) gave_up++;
  });
  std::thread waiter([&] {
    MutatorScope attach(heap);
    while (!holding.load()) std::this_thread::yield();
    { std::lock_guard<std::mutex> lock(mu); }  // blocks while running (the misuse)
    waiter_done = true;
    while (!stop.load()) safepoint();
  });
  std::thread releaser([&] {
    while (!holding.load()) std::this_thread::yield();
    std::this_thread::sleep_for(100ms);
    release = true;
  });
  MutatorScope attach(heap);
  while (!holding.load()) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);  // the waiter is blocked on mu by now
  heap.collect();  // completes once the holder, let go, has released mu
  const bool finished_before_deadline = gave_up.load() == 0;
  stop = true;
  run_native([&] {
    releaser.join();
    holder.join();
    waiter.join();
  });
  EXPECT_TRUE(finished_before_deadline);
  EXPECT_TRUE(waiter_done.load());
  EXPECT_EQ(heap.stats().collections, 1u);
}

}  // namespace
}  // namespace shoal::test
