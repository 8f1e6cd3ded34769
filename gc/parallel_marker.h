// Parallel marking: a small pool of marker threads sharing work by chunk donation.
//
// Algorithm (the shared-mark-stack scheme of Boehm GC's parallel marker and WebKit's
// Riptide, with Endo-Taura-Yonezawa style donation):
//   - Each worker owns a Marker (gc/marker.h): a private grey stack it pushes and pops
//     without synchronisation.
//   - A shared work list holds chunks (vectors of grey objects). drain() seeds it with
//     the given grey objects, cut into chunks.
//   - A worker with an empty stack takes a chunk; if none is left it declares itself
//     idle ("hungry") and waits. A worker whose stack is deep and who sees a hungry peer
//     donates the bottom half of its stack (the oldest entries: roots of untraced
//     subgraphs, so the donation is worth the lock) as a new chunk.
//   - Termination: marking is finished exactly when every joined worker is idle, the
//     work list is empty and no mutator assist holds grey objects - new grey objects
//     only come from a worker or an assist tracing, and an idle worker has nothing to
//     trace. The last worker to go idle (or the last assist to let go) sets
//     `terminated_`.
//   - Mutator assists (assist(), during a concurrent drain) take chunks too, without
//     joining: a worker donates half its stack, however shallow, when an assist has
//     asked for work, and termination also waits until no assist holds grey objects
//     (an assist hands back what it did not trace before it lets go).
// Invariant when drain() returns: no grey object is left on any stack or in the list,
// so (marker.h) no black object points at a white one - as far as this drain knows;
// concurrent mutators may have shaded more objects into their SATB buffers meanwhile
// (the collector's termination protocol, gc/collector.h, takes those).
//
// Why our own pool and not oneTBB (which Shoal uses for the parallel sweep): the marker
// is the collector's most race-prone code, and ThreadSanitizer cannot see TBB's internal
// synchronisation (Debian's libtbb is not instrumented), so with TBB the TSan preset
// would have to mark serially and the parallel marker would never be checked. This pool
// is ~150 lines of mutex/condition-variable code that TSan checks in every CI run. The
// helper threads are started on first use, sleep between drains, and the calling thread
// is always worker 0, so a one-worker drain costs no thread hand-off at all. Helpers run
// at a lowered priority (gc/thread_registry.h, lower_collector_thread_priority).
//
// A late helper (woken after termination) sees `terminated_` and does not join, so a
// drain never waits for a thread that is slow to wake: with little work, the caller
// finishes alone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "gc/marker.h"
#include "shoal/internal/mutex.h"

namespace shoal::internal {

class HeapImpl;
class ThreadRegistry;

struct MarkTotals {
  size_t objects_marked = 0;  // white -> grey transitions by the workers
  size_t bytes_traced = 0;    // cell bytes of the objects traced
  std::vector<Slot*> weak_slots;
  std::vector<Marker::EphemeronSlots> ephemerons;
  void add(Marker& m);
};

class ParallelMarker {
 public:
  explicit ParallelMarker(HeapImpl& heap) : heap_(heap) {}
  ~ParallelMarker();
  ParallelMarker(const ParallelMarker&) = delete;
  ParallelMarker& operator=(const ParallelMarker&) = delete;

  // Traces `grey` and everything white reachable from it with up to `workers` threads
  // (the caller and workers-1 helpers), adding the counters and weak slots to `totals`.
  // after_each: see Marker::drain (only with workers == 1). One drain at a time.
  // step_aside (concurrent marking only; null in pauses): the workers give up their CPU
  // while that registry is stopping the world, so mutators reach their safepoints fast.
  void drain(std::vector<Object*>&& grey, unsigned workers, MarkTotals& totals,
             const std::function<void(Object*)>* after_each = nullptr,
             const ThreadRegistry* step_aside = nullptr) SHOAL_EXCLUDES(mu_);

  // Starts the helper threads a drain with `workers` workers needs, if they do not exist
  // yet. The collector calls it before it stops the world, so a pause does not wait for
  // thread creation. If the system refuses a thread it stops there, and every drain
  // marks with the helpers there are (at least its calling thread alone): nothing throws.
  void start_helpers(unsigned workers) SHOAL_EXCLUDES(mu_);
  // Testing: the system "refuses" helper thread `n` and every later one.
  void refuse_helpers_from_for_testing(size_t n) { helper_limit_for_testing_.store(n, std::memory_order_relaxed); }

  // A mutator's marking assist (Collector::assist_marking) during a concurrent drain:
  // takes a chunk of grey objects from the work list into `m` (whose stack is empty)
  // and traces at most `budget` objects; returns how many it traced. With no chunk to
  // take it asks the workers to donate one - a later assist finds it - and returns 0 at
  // once: an assist never waits for the marker. What it has not traced goes back on the
  // work list: the drain does not terminate while an assist holds grey objects (else a
  // concurrent drain would end early and leave them to the final pause), so the
  // workers may wait for an assist to finish its budget - never the other way round.
  // noexcept: a mark stack that cannot grow would lose grey objects (live objects
  // freed), so that is fatal here, as on the marker threads.
  size_t assist(Marker& m, size_t budget) noexcept SHOAL_EXCLUDES(mu_);

  // Moves m's grey objects onto the work list of the running concurrent drain; false
  // (and m unchanged) when no drain runs or its test hook wants a single tracing thread.
  bool give_to_drain(Marker& m) SHOAL_EXCLUDES(mu_);

  // Bytes the workers have traced since the pool was made, counted kStep objects at a
  // time (assists not included): a running cycle's progress, for the pacer's assists
  // (Collector::assist_for_allocation).
  size_t traced_bytes() const { return traced_bytes_.load(std::memory_order_relaxed); }

  static constexpr size_t kChunk = 512;        // objects per seeded chunk
  static constexpr size_t kStep = 128;         // objects traced between donation checks
  static constexpr size_t kMinDonation = 64;   // donate only from a stack this deep

 private:
  void work(size_t index, const std::function<void(Object*)>* after_each, const ThreadRegistry* step_aside);
  bool take_chunk(Marker& m) SHOAL_EXCLUDES(mu_);
  void donate(std::vector<Object*>&& chunk) SHOAL_EXCLUDES(mu_);
  void helper_main(size_t index) SHOAL_EXCLUDES(mu_);
  void start_helpers_locked(unsigned workers) SHOAL_REQUIRES(mu_);
  // A drain is running and its test hook (if any) does not want a single tracing thread.
  bool takes_assists_locked() const SHOAL_REQUIRES(mu_) { return !terminated_ && !(after_each_ && *after_each_); }

  HeapImpl& heap_;
  std::atomic<size_t> helper_limit_for_testing_{SIZE_MAX};
  Mutex drain_mu_;  // one drain at a time
  Mutex mu_;
  std::condition_variable_any job_cv_;   // helpers wait for a drain
  std::condition_variable_any work_cv_;  // hungry workers wait for a chunk or the end
  std::condition_variable_any done_cv_;  // the caller waits for its helpers to leave
  std::vector<std::vector<Object*>> chunks_ SHOAL_GUARDED_BY(mu_);
  std::vector<Marker> markers_;          // one per worker, sized before a drain starts
  uint64_t epoch_ SHOAL_GUARDED_BY(mu_) = 0;
  size_t job_workers_ SHOAL_GUARDED_BY(mu_) = 0;
  size_t joined_ SHOAL_GUARDED_BY(mu_) = 0;
  size_t idle_ SHOAL_GUARDED_BY(mu_) = 0;
  size_t left_ SHOAL_GUARDED_BY(mu_) = 0;
  size_t assists_ SHOAL_GUARDED_BY(mu_) = 0;  // mutator assists holding grey objects
  bool terminated_ SHOAL_GUARDED_BY(mu_) = true;
  bool shutdown_ SHOAL_GUARDED_BY(mu_) = false;
  const std::function<void(Object*)>* after_each_ SHOAL_GUARDED_BY(mu_) = nullptr;
  const ThreadRegistry* step_aside_ SHOAL_GUARDED_BY(mu_) = nullptr;
  std::atomic<size_t> hungry_{0};
  std::atomic<size_t> traced_bytes_{0};
  std::atomic<bool> assist_wanted_{false};  // an assist found no chunk: donate one
  std::vector<std::thread> helpers_;
};

}  // namespace shoal::internal
