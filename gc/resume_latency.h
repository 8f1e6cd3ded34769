// Resume latency: how long each stopped thread waited, after a pause ended, until it ran
// again. A pause ends when the stopper clears the stop bits and wakes every sleeper
// (ThreadRegistry::resume_the_world); the pause's own length stops there, but a thread
// runs only once the scheduler gives it a core. This adds that wait, as each woken
// thread sees it, so that "pause" plus "resume latency" is what a mutator was stopped
// for (less its own time to safepoint).
//
// Recorded by the woken threads themselves, some from inside the preemption signal
// handler: every field is a lock-free atomic, and record() is async-signal-safe.
// snapshot() is not atomic as a whole (a record landing meanwhile may show in one field
// and not yet in another); a statistic, not an invariant.
#pragma once

#include <atomic>
#include <cstdint>

#include "shoal/heap.h"

namespace shoal::internal {

class ResumeLatency {
 public:
  // The pause that is ending ends now (steady clock, ns); called by the stopper before
  // it clears the stop bits, so a thread that sees its bit cleared sees this time.
  void pause_ends_at(uint64_t ns) { released_ns_.store(ns, std::memory_order_seq_cst); }
  // The calling thread, stopped by the pause that just ended, runs again at `now_ns`.
  void record_resumed(uint64_t now_ns) {
    const uint64_t released = released_ns_.load(std::memory_order_seq_cst);
    const uint64_t ns = now_ns > released ? now_ns - released : 0;
    count_.fetch_add(1, std::memory_order_relaxed);
    total_ns_.fetch_add(ns, std::memory_order_relaxed);
    buckets_[PauseHistogram::bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    uint64_t max = max_ns_.load(std::memory_order_relaxed);
    while (ns > max && !max_ns_.compare_exchange_weak(max, ns, std::memory_order_relaxed)) {
    }
  }
  PauseHistogram snapshot() const {
    PauseHistogram h;
    h.count = count_.load(std::memory_order_relaxed);
    h.total_ns = total_ns_.load(std::memory_order_relaxed);
    h.max_ns = max_ns_.load(std::memory_order_relaxed);
    for (int b = 0; b < PauseHistogram::kBuckets; ++b) h.buckets[b] = buckets_[b].load(std::memory_order_relaxed);
    return h;
  }

 private:
  std::atomic<uint64_t> released_ns_{0};
  std::atomic<uint64_t> count_{0}, total_ns_{0}, max_ns_{0};
  std::atomic<uint64_t> buckets_[PauseHistogram::kBuckets]{};
};

}  // namespace shoal::internal
