// Safepoints, native state and handshakes.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

TEST(SafepointTest, CollectionWaitsForRunningThreadsToPark) {
  Heap heap;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> polls{0};
  std::thread spinner([&] {
    MutatorScope attach(heap);
    Ref<Node> mine = make_list(100);
    while (!stop.load()) {
      safepoint();
      polls++;
    }
    EXPECT_EQ(list_length_checked(mine), 100u);
  });
  MutatorScope attach(heap);
  while (polls.load() < 100) std::this_thread::yield();
  for (int i = 0; i < 20; ++i) heap.collect();
  stop = true;
  run_native([&] { spinner.join(); });
  const GcStats s = heap.stats();
  EXPECT_EQ(s.collections, 20u);
  EXPECT_EQ(s.recent.back().threads, 2u);
}

// Every thread a pause stopped records, when it runs again, how long after the pause's
// end that was (GcStats::resume_latency); the thread that collects, never stopped,
// records nothing. A thread still waiting for a core when the next pause begins stays
// stopped through both and records once, so the test lets the spinner run in between.
TEST(SafepointTest, EachStoppedThreadRecordsItsResumeLatency) {
  Heap heap;
  constexpr int kPauses = 20;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> polls{0};
  std::thread spinner([&] {
    MutatorScope attach(heap);
    while (!stop.load()) {
      safepoint();
      polls++;
    }
  });
  MutatorScope attach(heap);
  while (polls.load() < 100) std::this_thread::yield();
  for (int i = 0; i < kPauses; ++i) {
    heap.collect();
    const uint64_t at_resume = polls.load();
    run_native([&] {
      while (polls.load() == at_resume) std::this_thread::yield();
    });
  }
  stop = true;
  run_native([&] { spinner.join(); });
  const PauseHistogram r = heap.stats().resume_latency;
  EXPECT_EQ(r.count, static_cast<uint64_t>(kPauses));
  uint64_t in_buckets = 0;
  for (uint64_t n : r.buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, r.count);
  EXPECT_LE(r.percentile_ns(50), r.max_ns);
  EXPECT_GE(r.total_ns, r.max_ns);
}

TEST(SafepointTest, NativeThreadDoesNotBlockCollectionAndKeepsItsReferences) {
  Heap heap;
  std::atomic<bool> in_native{false}, release{false};
  HiddenPtr hidden;
  std::thread worker([&] {
    MutatorScope attach(heap);
    Ref<Node> held = make_list(50);
    hidden = HiddenPtr(held.object());
    run_native([&] {
      in_native = true;
      while (!release.load()) std::this_thread::sleep_for(1ms);
    });
    EXPECT_EQ(list_length_checked(held), 50u);  // survived collections made while native
  });
  MutatorScope attach(heap);
  while (!in_native.load()) std::this_thread::yield();
  clobber_stack();
  heap.collect();  // must not wait for the native thread
  heap.collect();
  EXPECT_TRUE(is_allocated(heap, hidden));
  release = true;
  run_native([&] { worker.join(); });
}

TEST(SafepointTest, RunNativePropagatesExceptions) {
  Heap heap;
  MutatorScope attach(heap);
  EXPECT_THROW(run_native([] { throw std::runtime_error("boom"); }), std::runtime_error);
  Ref<Node> n = make<Node>();  // running again
  heap.collect();
  EXPECT_TRUE(n);
}

TEST(SafepointTest, HandshakeRunsOnceForEveryThread) {
  Heap heap;
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MutatorScope attach(heap);
      ready++;
      while (!stop.load()) {
        if (t % 2 == 0) {
          safepoint();
          make<Node>();
        } else {
          run_native([] { std::this_thread::sleep_for(100us); });
        }
      }
    });
  }
  MutatorScope attach(heap);
  while (ready.load() < kThreads) safepoint();
  for (int round = 0; round < 50; ++round) {
    std::vector<std::atomic<int>> hits(64);
    std::atomic<int> total{0};
    handshake_all(heap, [&](size_t index) {
      hits[index % 64]++;
      total++;
    });
    EXPECT_EQ(total.load(), kThreads + 1);
    for (auto& h : hits) EXPECT_LE(h.load(), 1);
  }
  stop = true;
  // Joining blocks: an attached thread must do it in the native state, or a collection
  // started by a thread still running would wait for this one forever.
  run_native([&] {
    for (auto& t : threads) t.join();
  });
}

TEST(SafepointTest, ThreadsAttachAndDetachWhileCollecting) {
  Heap heap;
  std::atomic<bool> stop{false};
  std::thread collector([&] {
    MutatorScope attach(heap);
    while (!stop.load()) heap.collect();
  });
  for (int i = 0; i < 50; ++i) {
    std::thread t([&] {
      MutatorScope attach(heap);
      Ref<Node> l = make_list(500);
      EXPECT_EQ(list_length_checked(l), 500u);
    });
    t.join();
  }
  stop = true;
  collector.join();
  MutatorScope attach(heap);
  EXPECT_TRUE(heap.verify().ok);
}

// "Block only inside run_native" holds inside a handshake operation too: there run_native
// just runs its function (the thread is already off the heap). It used to re-enter the
// thread's own pending handshake and deadlock on itself.
TEST(SafepointTest, RunNativeInsideAHandshakeOperation) {
  Heap heap;
  std::atomic<bool> stop{false}, attached{false};
  std::thread worker([&] {
    MutatorScope attach(heap);
    attached = true;
    while (!stop.load()) safepoint();
  });
  MutatorScope attach(heap);
  run_native([&] {
    while (!attached.load()) std::this_thread::yield();
  });
  std::atomic<int> ran{0};
  handshake_all(heap, [&](size_t) { run_native([&] { ran++; }); });
  EXPECT_EQ(ran.load(), 2);
  stop = true;
  run_native([&] { worker.join(); });
}

}  // namespace
}  // namespace shoal::test
