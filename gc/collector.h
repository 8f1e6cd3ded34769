// The collector: a stop-the-world, non-moving mark-sweep over a conservatively scanned
// root set (the foundation; concurrent marking builds on these phases).
//
// One cycle, all inside one pause:
//   1. Request. The calling mutator captures its own context, declares itself safe and
//      takes gc_mu_ (one cycle at a time; a thread that loses the race and finds the
//      trigger already reset by the winner skips its cycle).
//   2. Stop the world. kPollStop is posted to every thread; the collector waits until
//      each is parked or in native (gc/thread_registry.h). Time-to-safepoint is recorded.
//   3. Flush allocation state. Every TLAB hands its consumed range to its page's
//      object-start bitmap and gives the page up, so the bitmaps now say exactly which
//      cells hold objects. The large-object index is built.
//   4. Mark (gc/marker.h) from the roots (gc/roots.h): each thread's stack and registers
//      conservatively, persistent handles and global slots precisely. Allocation colour:
//      irrelevant here, nothing allocates inside the pause.
//   5. Sweep (gc/sweeper.h): alloc bits := mark bits, free runs rebuilt, empty pages
//      pooled, dead large objects freed. Mark bits are all clear again.
//   6. Pacing: the next trigger is max(min_gc_trigger, gc_growth * live bytes).
//   7. Optionally verify (gc/verifier.h), then resume the world.
//
// Invariants: between cycles no mark bit is set; after step 5 an object is allocated
// iff it was reachable at step 4 (or is a conservative false positive). The write
// barrier is off throughout (nothing marks concurrently).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>

#include "gc/thread_registry.h"
#include "shoal/heap.h"
#include "shoal/internal/mutex.h"

namespace shoal::internal {

class HeapImpl;

class Collector {
 public:
  explicit Collector(HeapImpl& heap) : heap_(heap) {}

  // A full collection on behalf of `self` (attached, running). With `only_if_needed`,
  // the cycle is skipped if, once this thread holds the collector lock, the pacing
  // trigger has already been reset by another thread's cycle.
  void collect(MutatorThread* self, const char* cause, bool only_if_needed = false);
  VerifyReport verify(MutatorThread* self);
  void handshake_all(MutatorThread* self, const HandshakeOp& op);

  GcStats stats() const SHOAL_EXCLUDES(stats_mu_);
  uint64_t cycles() const { return cycles_.load(std::memory_order_acquire); }

 private:
  template <class F>
  void with_collector_lock(MutatorThread* self, F&& work);
  void run_cycle_in_pause(MutatorThread* self, CycleRecord& record);
  void record_cycle(const CycleRecord& record) SHOAL_EXCLUDES(stats_mu_);

  HeapImpl& heap_;
  Mutex gc_mu_;
  std::atomic<uint64_t> cycles_{0};
  mutable Mutex stats_mu_;
  GcStats totals_ SHOAL_GUARDED_BY(stats_mu_);
  std::deque<CycleRecord> recent_ SHOAL_GUARDED_BY(stats_mu_);
};

}  // namespace shoal::internal
