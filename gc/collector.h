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
//      pooled, dead large objects freed. Mark bits are all clear again (generations:
//      the survivors keep theirs - gc/generations.cc).
//   6. Pacing: the next trigger is max(min_gc_trigger, gc_growth * live bytes) (for a
//      concurrent cycle, floating garbage counted up to the bytes marked: HeapImpl::pacing_size).
//   7. Optionally verify (gc/verifier.h), then resume the world.
//
// Invariants: between cycles no mark bit is set (generations: only old objects'
// bits are); after step 5 an object is allocated
// iff it was reachable at step 4 (or is a conservative false positive). The write
// barrier is off throughout a stop-the-world cycle.
//
// Concurrent cycle (HeapOptions::concurrent_marking, the default; started by pacing,
// start_collection(), idle() or GC torture):
//   1. Initial pause: stop the world, flush TLABs, mark the roots grey (steps 2-4 above
//      without the drain): this is the snapshot. Turn on black allocation (TLAB flushes
//      set mark bits too; large objects are born marked) and the SATB write barrier
//      (barriers/write_barrier.h), then resume.
//   2. Concurrent mark: the heap's marker thread and its helpers (gc/parallel_marker.h,
//      HeapOptions::marker_threads) drain the grey objects while mutators run.
//      Barrier-shaded objects arrive from per-thread SATB buffers, handed over in
//      batches; mutators that outrun the marker assist or wait (pacing, below).
//   3. Termination without a long pause: when the grey list is empty, the marker thread
//      takes every thread's SATB buffer (no pause and no handshake: under the buffer's
//      lock, which its owner holds only inside a no-preempt region) and drains again,
//      until a round finds fewer than kFinalPauseGreyLimit objects (or
//      kTerminationRounds have passed). An object marked but not yet in a buffer is in
//      its thread's no-preempt region; the final pause waits for that to end.
//   4. Final pause: stop the world, take the few SATB objects left, drain to the end
//      with every core, flush TLABs (black), clear dead weak references and weak slots,
//      queue the finalizers of dead objects, sweep large objects, hand the pages to the
//      lazy sweeper (gc/lazy_sweeper.h), pace, turn the barrier and black allocation
//      off, resume. Finalizers run later, outside any pause (gc/finalizers.h).
//   5. Sweep: allocating threads and the marker thread sweep the pages after the pause;
//      the next pause of any kind first finishes what is left.
// Why nothing reachable is lost: every object reachable at the snapshot is marked -
// the marker follows the snapshot graph, and the barrier shades the target of every
// snapshot edge a mutator deletes before the marker crosses it; every object allocated
// after the snapshot is black; and a mutator can only obtain references to objects of
// those two kinds (a weak read shades its result). Stacks need no rescan (Yuasa). Flags
// change only inside pauses, so every mutator sees them switch at a safepoint - except
// that the insertion half of the barrier, on while stacks scanned after the initial
// pause are pending, is turned off once the last is scanned (see below and
// gc/thread_stack_scan.cc, which has the argument for those stacks).
// Explicit collect(), verify() and heap-limit collections wait for a running concurrent
// cycle to finish, then run stop-the-world.
// The initial pause scans only the shallowest stacks, within a byte budget
// (HeapOptions::initial_pause_stack_budget); each other thread scans its own at its next
// safepoint, by handshake, while the barrier also shades stored values
// (gc/thread_stack_scan.cc has the argument). Such a scan delays only that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gc/finalizers.h"
#include "gc/lazy_sweeper.h"
#include "gc/parallel_marker.h"
#include "gc/thread_registry.h"
#include "shoal/heap.h"
#include "shoal/internal/mutex.h"

namespace shoal::internal {

class HeapImpl;

class Marker;
struct LargeObject;

class Collector {
 public:
  explicit Collector(HeapImpl& heap);
  ~Collector();

  // Heap-limit collections (heap/allocator.cc) coalesce. A full collection is one
  // collect() runs (stop-the-world, every page swept in its pause); FullMark identifies
  // the newest: how many have run, and the heap's allocation count at the end of that
  // one's pause; and how many concurrent cycles have ended. All change only inside
  // pauses, so a running thread reads a consistent set.
  struct FullMark {
    uint64_t collections = 0;
    uint64_t allocated_total = 0;
    uint64_t concurrent_cycles = 0;
  };
  FullMark last_full_collection() const {
    return {full_collections_.load(std::memory_order_acquire), full_allocated_.load(std::memory_order_relaxed),
            concurrent_cycles_ended_.load(std::memory_order_acquire)};
  }
  // A full collection on behalf of `self` (attached, running). With `only_if_needed`,
  // the cycle is skipped if, once this thread holds the collector lock, the pacing
  // trigger has already been reset by another thread's cycle. With `seen` (a FullMark
  // read earlier), it is skipped if a full collection newer than that has completed by
  // then - or, with `any_cycle`, any cycle: a concurrent one that ended since (and
  // whose sweep this call finished) serves too.
  void collect(MutatorThread* self, const char* cause, bool only_if_needed = false, const FullMark* seen = nullptr,
               bool any_cycle = false);
  // A collection for an allocation that found no room, asked with the FullMark the
  // allocating thread read before its failed attempt: every thread that failed while
  // one collection was pending or running is served by that one, instead of running its
  // own back to back. While a concurrent cycle marks, the thread helps it (assists
  // until there is no grey object to take) and waits for it; with `any_cycle` that
  // cycle serves, and no stop-the-world collection follows it at once.
  void collect_for_heap_limit(MutatorThread* self, const FullMark& seen, bool any_cycle) {
    collect(self, "heap-limit", false, &seen, any_cycle);
  }
  // A collection asked for by pacing: concurrent when the heap is configured so (and
  // none is running yet), else a stop-the-world collect(..., only_if_needed).
  // While a concurrent cycle marks, pacing also slows allocators down: past
  // kAssistFactor x the trigger a thread traces kAssistBudget grey objects itself before
  // it gets its page (assist); past kThrottleFactor x it assists until it finds no work,
  // then waits for the cycle to end. Pages in use past the soft limit, or past the heap
  // limit's pacing target (HeapImpl::assist_limit), also make it assist
  // (kSoftLimitAssistBudget), and past kSoftLimitThrottle x that limit wait.
  void collect_paced(MutatorThread* self);
  // Mark assists (HeapOptions::mark_assists): while a cycle marks and its traced bytes
  // lag the ratio set in its initial pause times what the heap has allocated since
  // (`allocated`), `self` traces grey objects, kAssistBudget at a time, until the
  // cycle catches up or no grey object is to be had (the marker threads hold them all).
  // Returns the objects traced.
  size_t assist_for_allocation(MutatorThread* self, size_t allocated);
  // The initial pause: the ratio for assist_for_allocation.
  void set_assist_ratio_in_pause();
  // GC torture (HeapOptions::gc_torture_interval): with concurrent marking, starts a
  // concurrent cycle unless one is marking (so marking runs almost all the time);
  // otherwise a stop-the-world collection.
  void torture(MutatorThread* self);
  // What a concurrent cycle traces: the pacer's choice (gc/generations.cc, "Pacing":
  // young unless a full cycle is due or young cycles do not pay; allocation and
  // Heap::idle), or as asked - kYoung young unless a full cycle is due (generations
  // on), kFull the whole heap.
  enum class Scope { kPaced, kYoung, kFull };
  // Starts a concurrent cycle (unless one is under way and, without `force`, unless the
  // pacing trigger has been reached). Returns after the initial pause. Returns whether
  // this call began the cycle (false: one was under way, or not due).
  bool start_concurrent_cycle(MutatorThread* self, const char* cause, bool force, Scope scope = Scope::kPaced);
  void wait_for_concurrent_cycle(MutatorThread* self) SHOAL_EXCLUDES(work_mu_);
  // Heap::idle: marking, sweeping or an early cycle within roughly `budget`.
  bool idle(MutatorThread* self, std::chrono::nanoseconds budget);
  FinalizerTable& finalizers() { return finalizers_; }
  VerifyReport verify(MutatorThread* self);
  // Runs body() in a stop-the-world pause with the heap at rest (no concurrent cycle
  // under way, lazy sweep finished, TLABs retired, the large-object index built, so
  // object_containing works): the verifier's pause and the runtime's SAFE transfer
  // check. Counted in GcStats::pauses (record_pause_outside_cycles). The body must not
  // unwind (see pause()).
  void exclusive_pause(MutatorThread* self, const char* name, const std::function<void()>& body);
  void handshake_all(MutatorThread* self, const HandshakeOp& op);

  LazySweeper& sweeper() { return sweeper_; }

  // True between a concurrent cycle's two pauses. Changes only inside pauses.
  bool marking_concurrently() const { return marking_.load(std::memory_order_acquire); }
  // True from a concurrent cycle's initial pause until every thread's stack has been
  // scanned (gc/thread_stack_scan.cc): the barrier shades stored values too.
  bool stacks_unscanned() const { return stacks_unscanned_.load(std::memory_order_relaxed); }
  // Heap::switch_stack on a running thread whose stack is still to be scanned: scans the
  // stack it leaves (its live part from `leaving`, up to `base`) first.
  void scan_own_stack_before_switch(MutatorThread* self, const CapturedContext& leaving, uintptr_t base);
  // Write-barrier slow path: shade `o` grey if this heap is marking concurrently.
  void shade(MutatorThread* self, Object* o);
  // Root-store barrier (gc/roots.h; called under the root lock from any thread): shades
  // `o` onto the grey list if this heap is marking concurrently. The final pause holds
  // the root lock from before it takes the grey list until marking is off, so the object
  // is traced in this cycle.
  void shade_root(Object* o) SHOAL_EXCLUDES(work_mu_);
  // Gives t's SATB buffer to the marker (a detaching thread's grey objects).
  void hand_over_satb(MutatorThread* t);
  // Testing hook: runs on the marker thread after each object it traces concurrently.
  void set_concurrent_trace_hook(std::function<void(Object*)> hook) SHOAL_EXCLUDES(work_mu_);
  // Testing hook: runs on the marker thread after an initial pause, before the threads'
  // stacks are scanned (gc/thread_stack_scan.cc); a test holds it to arrange which
  // stacks are scanned when.
  void set_before_stack_scan_hook_for_testing(std::function<void()> hook) SHOAL_EXCLUDES(work_mu_);
  // Testing hook: runs on the marker thread when it takes a cycle over from its initial
  // pause, before it traces anything: a test holds it to leave the marking to assists.
  void set_before_concurrent_mark_hook_for_testing(std::function<void()> hook) SHOAL_EXCLUDES(work_mu_);
  // Testing: starts a concurrent cycle now, whatever the pacing trigger says.
  void start_concurrent_cycle_for_testing(MutatorThread* self) { start_concurrent_cycle(self, "requested", true, Scope::kFull); }

  // Generational collection (HeapOptions::generational; docs/gc.md, "Generations"). When
  // on, every sweep keeps the survivors' mark bits (they are the old generation) and
  // marks are sticky between cycles; only a full cycle clears them, before it starts.
  bool generational() const { return generational_; }
  // The young survival above which young cycles do not pay (from gc_growth and
  // full_gc_growth: gc/generations.cc, "Young cycles that do not pay").
  double young_survival_limit() const;
  // The GC bits a thread attaching now ORs into the headers it allocates (kYoung, or the
  // cycle's newborn bit while marking runs), and its barrier's marking rule's skip mask.
  // Written in pauses; read under the registry lock at attach.
  uint64_t allocation_tags() const { return alloc_tags_.load(std::memory_order_relaxed); }
  uint64_t marking_remember_skip() const { return marking_remember_skip_.load(std::memory_order_relaxed); }
  // The generational bits a marker must not clear when it traces an object (see
  // marker_keeps_). Set in pauses; markers read it while a cycle marks.
  uint64_t marker_keeps() const { return marker_keeps_.load(std::memory_order_relaxed); }
  // Cards of large objects (gc/generations.cc, "Cards"): the card set the write barrier
  // records into now, and the set holding what the next young cycle - or, from its
  // initial pause to its final one, the running one - consumes (the verifier's).
  unsigned card_record_set() const { return card_record_set_.load(std::memory_order_relaxed); }
  unsigned card_pending_set() const { return card_pending_set_.load(std::memory_order_relaxed); }
  // Aging (gc/generations.cc, "Aging"): while a young cycle with aging marks, the aged
  // bit of the last cycle's parity (young objects with it are made old when traced) and
  // this cycle's (set on the young objects it keeps young); both 0 otherwise. Set in
  // pauses; markers read them while a cycle marks.
  uint64_t aged_to_promote() const { return aged_to_promote_.load(std::memory_order_relaxed); }
  uint64_t aged_by_this_cycle() const { return aged_by_this_cycle_.load(std::memory_order_relaxed); }
  // Holders a marker found holding an object the cycle keeps young, already given this
  // cycle's remembered-next bit (small) or listed for the card set the barrier records
  // into (large): the next cycle's remembered set. `holders` is emptied.
  void add_marker_remembered(std::vector<Object*>& holders) SHOAL_EXCLUDES(marker_remembered_mu_);
  // Adaptive aging's samples (gc/generations.cc, "Adaptive aging"): bytes a marker kept
  // young, bytes it traced of what the last cycle kept young (its survivors), and (a
  // generational cycle: counting_old_survivors) bytes of old objects it traced - a full
  // cycle's surviving old generation, a young one's remembered holders (adaptive
  // generations counts both).
  void note_aging(size_t kept_young, size_t aged_promoted, size_t old_traced) {
    if (kept_young != 0) aging_kept_bytes_.fetch_add(kept_young, std::memory_order_relaxed);
    if (aged_promoted != 0) aging_promoted_bytes_.fetch_add(aged_promoted, std::memory_order_relaxed);
    if (old_traced != 0) old_traced_bytes_.fetch_add(old_traced, std::memory_order_relaxed);
  }
  bool counting_old_survivors() const { return counting_old_.load(std::memory_order_relaxed); }
  // The aged bit of the last cycle if it kept objects young (its cohort: a marker counts
  // the bytes it traces with it), else 0. Set in pauses.
  uint64_t aged_counted() const { return aged_counted_.load(std::memory_order_relaxed); }
  // In a pause (the verifier): every entry of the remembered set - the threads'
  // buffers, the collector's lists, a full cycle's stale entries.
  void for_each_remembered_in_pause(const std::function<void(Object*)>& fn)
      SHOAL_EXCLUDES(work_mu_, marker_remembered_mu_);
  // Gives t's remembered-set buffer to the collector (a detaching thread's entries).
  void hand_over_remembered(MutatorThread* t) SHOAL_EXCLUDES(work_mu_);
  void wait_for_concurrent_cycle_for_testing(MutatorThread* self) { wait_for_concurrent_cycle(self); }
  // Testing: the next pause throws std::bad_alloc at its start (an injected failure).
  void inject_pause_fault_for_testing() { pause_fault_for_testing_.store(true, std::memory_order_relaxed); }
  // Testing: marker threads used in pauses (default: the hardware threads). Call it
  // before the heap's first collection.
  void set_pause_workers_for_testing(unsigned n) { pause_workers_ = n; }
  ParallelMarker& parallel_marker_for_testing() { return parallel_marker_; }
  // Testing: how many lazy sweeps have completed and reported (pacing tests wait for it).
  uint64_t sweep_reports_for_testing() const { return sweep_reports_.load(std::memory_order_acquire); }
  // The old generation's size (marked bytes; exact once the newest cycle's sweep has
  // reported): 0 with generations off.
  size_t old_generation_bytes() const { return generational_ ? old_bytes_.load(std::memory_order_relaxed) : 0; }

  GcStats stats() const SHOAL_EXCLUDES(stats_mu_);
  // Heap::release_free_memory: every committed free page, decommitted, from any thread
  // (a running mutator of this heap keeps pauses out itself; any other takes gc_mu_,
  // unless it holds it already, running a handshake operation it requested).
  size_t release_free_memory();
  // The last kCycleLogSize cycles (stats().recent holds the last 256 of them).
  std::vector<CycleRecord> cycle_log() const SHOAL_EXCLUDES(stats_mu_);
  static constexpr size_t kCycleLogSize = 4096;
  uint64_t cycles() const { return cycles_.load(std::memory_order_acquire); }

 private:
  template <class F>
  void with_collector_lock(MutatorThread* self, F&& work);
  // Every pause: stops the world, takes the root lock (gc/roots.h) so that handle
  // operations of threads the pause does not wait for fall before or after it, runs
  // body(), releases the lock and resumes; returns the resume time (ThreadRegistry).
  // The body must not unwind: every mutator is parked and the registry and root locks
  // are held, so an exception escaping would leave the world stopped for ever. Threads
  // are started before the pause (the marker thread, the parallel marker's helpers);
  // anything still thrown inside (std::bad_alloc growing a mark stack, a weak-slot list
  // or the finalizer queue) is reported with the pause's name and the process aborts.
  template <class F>
  uint64_t pause(MutatorThread* self, const char* name, F&& body);
  [[noreturn]] static void fatal_in_pause(const char* pause, const char* what);
  void run_cycle_in_pause(MutatorThread* self, CycleRecord& record);
  void record_cycle(const CycleRecord& record) SHOAL_EXCLUDES(stats_mu_);
  // A pause that is not a cycle's (the verifier's, exclusive_pause): it stops the
  // mutators all the same, so it counts in GcStats::pauses, time_to_safepoint and
  // max_pause_ns (not in total_pause_ns, the cycles' sum).
  void record_pause_outside_cycles(uint64_t pause_ns, uint64_t time_to_safepoint_ns) SHOAL_EXCLUDES(stats_mu_);
  // Every root; without `stacks`, all but the threads' stacks (a concurrent cycle's
  // initial pause: scan_stacks_within_budget_in_pause decides which it scans).
  void mark_roots(Marker& marker, bool stacks = true);
  // Per-thread stack scanning (gc/thread_stack_scan.cc).
  void mark_stack_range(Marker& marker, uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers);
  // Initial pause: scans the shallowest stacks within the budget; flags the others for a
  // scan after the pause (and turns the insertion barrier on) if there are any.
  void scan_stacks_within_budget_in_pause(Marker& marker);
  void end_stack_scan();
  // t's stack and scratch lists, outside a pause, t not running; clears its flag.
  void scan_thread_roots(MutatorThread& t, uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers);
  // Marker thread, after the initial pause: every flagged stack by handshake; returns
  // the time it took.
  uint64_t scan_stacks_by_handshake();
  // After marking has terminated, in the pause: clears WeakRefs and weak slots whose
  // target is white, and queues the finalizers of white objects.
  void process_weak_in_pause(MarkTotals& totals);
  // In the pause: adds the weak slots and ephemerons mutator assists found to `totals`.
  void take_assist_results(MarkTotals& totals) SHOAL_EXCLUDES(work_mu_);
  // After the drain, in the pause: marks the values of ephemerons whose keys are marked,
  // tracing them, until nothing changes; then clears the ephemerons with white keys.
  void resolve_ephemerons(MarkTotals& totals);
  // Its tail once kParallelEphemeronRounds rounds have not ended it: one serial pass.
  void resolve_ephemeron_chains(MarkTotals& totals);
  static constexpr int kParallelEphemeronRounds = 2;
  // Every pause that needs exact allocation state starts with this.
  void finish_lazy_sweep_in_pause();
  void report_lazy_sweep(CycleRecord* current = nullptr) SHOAL_EXCLUDES(stats_mu_);
  // Concurrent cycles.
  // Sweeps the pages the last concurrent cycle left unswept, on the calling (running)
  // thread, polling between pages: so that the next pause does not have to.
  void sweep_leftovers(MutatorThread* self);
  bool start_concurrent_cycle_locked(MutatorThread* self, const char* cause, bool force, Scope scope, bool& retry);
  // The initial pause and what precedes it, gc_mu_ held: from a mutator (`self`) or the
  // marker thread (nullptr, an idle cycle). Returns whether it began one.
  bool begin_concurrent_cycle_locked(MutatorThread* self, const char* cause, bool force, Scope scope, bool& retry);
  void marker_thread_main();
  // The stack scanner: a thread of its own (started by the first cycle that leaves a
  // stack unscanned after its initial pause, then kept), which scans the deferred stacks
  // by handshake (scan_stacks_by_handshake) when the marker thread asks - so that a
  // mutator slow to reach its safepoint delays its own stack's scan, not marking.
  void scanner_thread_main();
  // Drains the grey list with the concurrent marker threads until it stays empty.
  void drain_grey_concurrently(MarkTotals& totals, const std::function<void(Object*)>* hook)
      SHOAL_EXCLUDES(work_mu_);
  // Takes every mutator's SATB buffer into the grey list, under each buffer's lock while
  // the threads run; returns how many objects.
  size_t flush_satb_buffers() SHOAL_EXCLUDES(work_mu_);
  void finish_concurrent_cycle(MarkTotals& totals, CycleRecord& record);
  void notify_finalizers();
  void give_grey(std::vector<Object*>&& objects) SHOAL_EXCLUDES(work_mu_);
  void throw_pending_corruption() SHOAL_EXCLUDES(stats_mu_);

  static constexpr size_t kSatbBatch = 256;
  static constexpr size_t kFinalPauseGreyLimit = 2048;
  static constexpr int kTerminationRounds = 6;
  // Pacing while marking, in units of the goal (heap/heap_impl.h): a cycle normally
  // starts before the goal and ends near it; past the goal allocators assist, past
  // twice the goal they wait.
  static constexpr size_t kAssistFactor = 1;
  static constexpr size_t kThrottleFactor = 2;
  static constexpr size_t kAssistBudget = 4096;
  // Mark assists spread the forecast over the allocation left before the goal, but over
  // at least goal / kMinAssistRunway: a cycle started late (or forced early, by
  // start_collection) does not make every allocation trace without end.
  static constexpr size_t kMinAssistRunway = 4;
  // Once a cycle has traced more than its forecast, the debt is the bound on its work
  // spread over the runway plus goal / kHardGoalSlack (Go's hard goal, 1.1 x).
  static constexpr size_t kHardGoalSlack = 10;
  // Once the pages in use exceed the soft limit or the heap limit's pacing target
  // (HeapImpl::assist_limit), a thread that needs a page while
  // a cycle marks traces this many grey objects first, whatever it has allocated: the
  // mutators pay for marking as they allocate past the limit (Go's assists under
  // GOMEMLIMIT), so the cycle ends before black allocation carries the heap far above it.
  static constexpr size_t kSoftLimitAssistBudget = 8 * kAssistBudget;
  // ... and past kSoftLimitThrottle x the limit it waits for the cycle, as past
  // kThrottleFactor: an assist finds no work while the marker thread holds it all and is
  // not running (a loaded machine), and waiting gives that thread the core.
  static constexpr double kSoftLimitThrottle = 1.25;
  static constexpr size_t kPagesSweptPerPacing = 32;
  // Traces up to `budget` grey objects on the calling mutator - its SATB buffer, the grey
  // list, then a chunk of the marker threads' running drain (ParallelMarker::assist) -
  // and hands back what it did not trace; returns how many it traced. While it holds
  // objects from the grey list the marker thread does not conclude that list is empty
  // (drain_grey_concurrently), so nothing an assist holds is left to the final pause.
  // noexcept: see ParallelMarker::assist.
  size_t assist_marking(MutatorThread* self, size_t budget) noexcept SHOAL_EXCLUDES(work_mu_);
  // Assists until the marker threads have no work to share, the cycle ends or `deadline`
  // (ns, now_ns's clock) passes, polling between assists (each hands back all it held);
  // an assist that finds nothing has asked the workers for a donation, so one more try
  // follows a yield. True if any assist traced something.
  bool assist_while_work(MutatorThread* self, uint64_t deadline);
  static constexpr size_t kTortureAssistBudget = 16;

  uint64_t since_start(uint64_t ns) const { return ns - created_ns_; }

  HeapImpl& heap_;
  const bool generational_;  // HeapOptions::generational (with concurrent marking)
  const uint64_t created_ns_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
  Mutex gc_mu_;
  std::atomic<uint64_t> cycles_{0};
  std::atomic<uint64_t> full_collections_{0};  // FullMark: written in pauses only
  std::atomic<uint64_t> concurrent_cycles_ended_{0};  // FullMark: written in final pauses only
  std::atomic<uint64_t> full_allocated_{0};
  mutable Mutex stats_mu_;
  GcStats totals_ SHOAL_GUARDED_BY(stats_mu_);
  // A concurrent cycle between its final pause and record_cycle, and its sweep's result
  // if that completed meanwhile (report_lazy_sweep keeps it for record_cycle).
  bool cycle_unrecorded_ SHOAL_GUARDED_BY(stats_mu_) = false;
  bool early_sweep_pending_ SHOAL_GUARDED_BY(stats_mu_) = false;
  SweepResult early_sweep_ SHOAL_GUARDED_BY(stats_mu_);
  std::deque<CycleRecord> recent_ SHOAL_GUARDED_BY(stats_mu_);
  std::string pending_corruption_ SHOAL_GUARDED_BY(stats_mu_);  // from a background cycle

  // Concurrent marking state.
  std::atomic<bool> marking_{false};
  std::atomic<bool> stacks_unscanned_{false};
  std::atomic<size_t> stack_marked_{0};         // this cycle's: marked by stack scans
  std::atomic<uint64_t> max_stack_scan_ns_{0};  // this cycle's longest single stack scan
  Mutex work_mu_;
  std::condition_variable_any work_cv_;
  std::vector<Object*> grey_ SHOAL_GUARDED_BY(work_mu_);  // handed to the marker thread
  size_t assists_holding_grey_ SHOAL_GUARDED_BY(work_mu_) = 0;  // assists tracing objects from grey_
  bool cycle_active_ SHOAL_GUARDED_BY(work_mu_) = false;  // initial pause .. end of final
  bool cycle_ready_ SHOAL_GUARDED_BY(work_mu_) = false;   // pending_record_ complete
  bool shutdown_ SHOAL_GUARDED_BY(work_mu_) = false;
  uint64_t cycle_started_ns_ SHOAL_GUARDED_BY(work_mu_) = 0;
  CycleRecord pending_record_ SHOAL_GUARDED_BY(work_mu_);
  std::function<void(Object*)> trace_hook_ SHOAL_GUARDED_BY(work_mu_);
  std::atomic<bool> trace_hook_set_{false};  // trace_hook_ is set (read by mark assists)
  std::function<void()> before_stack_scan_hook_ SHOAL_GUARDED_BY(work_mu_);
  std::function<void()> before_concurrent_mark_hook_ SHOAL_GUARDED_BY(work_mu_);
  LazySweeper sweeper_;
  ParallelMarker parallel_marker_{heap_};
  FinalizerTable finalizers_;
  unsigned concurrent_workers_ = 1;  // marker threads in the concurrent phase
  unsigned pause_workers_ = 1;       // marker threads in a pause
  std::atomic<bool> stopping_{false};
  std::atomic<bool> pause_fault_for_testing_{false};
  // The scavenger's share of the marker thread (heap/scavenger.cc): after each cycle's
  // background sweep and when idle this long, kScavengeBatchPages at a time under
  // gc_mu_; a stop-the-world heap's collecting thread releases at most
  // kScavengePagesAfterPause per cycle.
  static constexpr std::chrono::milliseconds kScavengeIdleWake{1000};
  static constexpr size_t kScavengeBatchPages = 16;
  static constexpr size_t kScavengePagesAfterPause = 256;
  void scavenge_in_background() SHOAL_EXCLUDES(gc_mu_);
  // Idle full cycles (gc/idle_cycle.cc), on the marker thread at each idle wake.
  static constexpr const char* kIdleCycleCause = "idle-background";
  std::chrono::milliseconds idle_wake_interval() const;
  bool idle_cycle_may_pay() const;
  void maybe_start_idle_cycle() SHOAL_EXCLUDES(gc_mu_, work_mu_);
  // Takes gc_mu_ (this thread marked as its holder, as with_collector_lock does) and
  // starts a full concurrent cycle from the marker thread; false if none started.
  bool begin_full_cycle_from_marker_thread(const char* cause) SHOAL_EXCLUDES(gc_mu_);
  // Quiet: allocating under the pacing goal per this long (pacing would not collect
  // for longer).
  static constexpr std::chrono::seconds kIdleQuietHorizon{60};
  uint64_t idle_quiet_since_ns_ = 0;  // marker thread only, as the next three
  uint64_t idle_last_wake_ns_ = 0;
  uint64_t idle_allocated_at_wake_ = 0;
  bool idle_cycle_ran_in_stretch_ = false;
  std::atomic<uint64_t> last_cycle_end_ns_{0};  // now_ns() when the newest cycle was recorded
  // allocated_total() at the newest full cycle's (initial) pause.
  std::atomic<uint64_t> allocated_at_full_start_{0};
  // The collector whose gc_mu_ this thread holds through with_collector_lock, if any (a
  // handshake it requested may run user code on it, for a thread in a safe state).
  static thread_local const Collector* t_collector_lock_held_;
  std::atomic<size_t> assist_objects_{0};  // this cycle's: traced by assists
  std::atomic<size_t> assist_marked_{0};   // this cycle's: marked by assists
  std::atomic<size_t> assist_bytes_{0};    // this cycle's: bytes traced by assists
  size_t allocated_at_start_ = 0;  // allocation count at the initial pause (pauses only)
  // Mark assists (HeapOptions::mark_assists; assist_for_allocation): set in the initial
  // pause, read by allocating threads while the cycle marks. The bytes of tracing owed
  // per byte allocated since the pause (0: none), the allocation count and the marker
  // pool's traced bytes at the pause, and what the newest full and young cycles traced
  // (the forecasts).
  std::atomic<double> assist_ratio_{0};
  std::atomic<double> assist_worst_ratio_{0};  // once the forecast is exceeded: the bound
  std::atomic<size_t> assist_forecast_{0};
  std::atomic<uint64_t> last_stw_pause_ns_{0};  // the newest stop-the-world cycle's pause (idle())
  size_t last_black_ = 0;  // what the newest concurrent cycle allocated while it marked (pauses only)
  std::atomic<size_t> assist_allocated_at_start_{0};
  std::atomic<size_t> traced_at_start_{0};
  std::atomic<size_t> last_traced_full_{0};
  std::atomic<size_t> last_traced_young_{0};

  // Generational state (gc/generations.cc).
  std::atomic<uint64_t> aged_to_promote_{0};
  std::atomic<uint64_t> aged_by_this_cycle_{0};
  // Adaptive aging ("Adaptive aging"). The atomics: the sums markers add to, and what
  // they and the pacer read; the rest is written and read in pauses only: what the
  // newest cycle kept young (0 unless it aged); the weighted samples; the old generation's survival;
  // young cycles left with aging off, the length of the newest off period, and failed
  // samples in a row before the first.
  std::atomic<size_t> aging_kept_bytes_{0};
  std::atomic<size_t> aging_promoted_bytes_{0};
  std::atomic<size_t> old_traced_bytes_{0};
  std::atomic<bool> counting_old_{false};  // a generational cycle marks
  std::atomic<uint64_t> aged_counted_{0};
  std::atomic<size_t> provisional_old_bytes_{0};  // kept young on probation: counts as old growth
  size_t kept_young_by_last_cycle_ = 0;
  double aging_sample_kept_ = 0, aging_sample_made_old_ = 0;  // the weighted samples
  size_t old_before_full_ = 0;  // the old generation's size as the full cycle under way began
  double old_survival_ = 1;     // of the old generation, the fraction the newest full cycle found alive
  unsigned aging_off_cycles_ = 0;
  unsigned aging_backoff_cycles_ = 0;
  unsigned aging_strikes_ = 0;
  // Adaptive generations ("Young cycles that do not pay"). The newest cycle's figures
  // for its sweep report (set in its final pause): large-object bytes it freed, and a
  // full cycle's old generation before it and bytes of it traced. The newest survivals
  // measured (negative: none yet) and the pacer's switch.
  std::atomic<size_t> last_large_freed_{0};
  std::atomic<size_t> last_old_before_{0};
  std::atomic<size_t> last_old_survived_{0};
  std::atomic<double> young_survival_{-1};
  std::atomic<double> old_survival_measured_{-1};  // (old_survival_ is adaptive aging's: pauses only)
  std::atomic<bool> young_cycles_off_{false};
  bool full_for_yield_ = false;  // the cycle being started (under gc_mu_, before its pause)
  Mutex marker_remembered_mu_;  // (a leaf: markers take it from any context)
  std::vector<Object*> marker_remembered_ SHOAL_GUARDED_BY(marker_remembered_mu_);
  // In a pause: the remembered set of every thread and of detached ones, emptied.
  std::vector<Object*> take_remembered_in_pause() SHOAL_EXCLUDES(work_mu_);
  // Under gc_mu_, before an initial pause, the last sweep finished: whether the cycle is
  // full (requested, generations off, or - paced - the old generation has grown past
  // its limit, a limit wants it, or young cycles do not pay); a full one's sticky marks
  // are cleared here (not in the pause: O(heap) bitmap words).
  bool choose_full_before_pause(Scope scope);
  // True once the old generation has grown by more than full_gc_growth x the newest
  // full cycle's live size since that cycle's sweep: the next cycle is full.
  bool old_generation_full() const;
  // Initial pause, before the roots. A young cycle's remembered objects come back in
  // `remembered_grey`, to join the grey list, its large ones wait for the marker thread
  // (trace_remembered_cards); a full one's become stale. Returns the young cycle's
  // remembered holders (0 for a full one).
  size_t begin_generation_in_pause(bool full, std::vector<Object*>& remembered_grey);
  // Final (or stop-the-world) pause, marking done: the sweep keeps the marks; young
  // allocation back on.
  void end_generation_in_pause(CycleRecord& record);
  // Adaptive aging, after a cycle that followed one that aged: from what it traced of
  // what that cycle kept young, whether the next young cycles age.
  void adapt_aging_in_pause(size_t aged_promoted);
  // A sweep's exact figure (every survivor marked): the old generation's size; sets the
  // pacer's goal.
  void note_old_generation(size_t old_bytes, size_t newborn_bytes);
  // A concurrent cycle's sweep report (`freed_pages`: what it freed in pages): what of
  // its young objects it found alive, and whether the pacer's cycles are young
  // ("Young cycles that do not pay").
  void note_cycle_yield(size_t freed_pages) SHOAL_REQUIRES(report_mu_);
  // A full cycle's stale remembered holders: their bits cleared off the pause (marker).
  void clear_stale_remembered() SHOAL_EXCLUDES(work_mu_);
  // A young cycle's remembered large objects (listed for the card set it consumes): the
  // marker thread traces the slots in their dirty cards, then cleans the cards. Returns
  // the dirty cards traced.
  size_t trace_remembered_cards(MarkTotals& totals) SHOAL_EXCLUDES(work_mu_);
  // Takes `o` off the remembered set's bookkeeping: an object's remembered bits but
  // `keep`, or a large object's cards and listing in the card sets in `card_sets` (a
  // bit per set).
  void forget_remembered(Object* o, uint64_t keep, unsigned card_sets);
  void set_allocation_tags_in_pause(uint64_t tags, uint64_t remember_skip);
  // Clears every mark bit (pages and large objects): a full cycle's start, with no cycle
  // marking (before its initial pause, or in a stop-the-world pause).
  void clear_all_marks();
  // The bytes to allocate before the next cycle (gc/generations.cc, "Pacing").
  size_t generational_budget() const;
  // Sets the heap's goal from generational_budget(), fitted under the soft limit:
  // `old_bytes` the old generation, `young_bytes` what else the last cycle kept.
  void set_generational_goal(size_t old_bytes, size_t young_bytes);
  // L, the live size pacing works from (gc/generations.cc, "Pacing").
  size_t pacing_live() const;
  std::atomic<uint64_t> alloc_tags_{0};
  std::atomic<uint64_t> marking_remember_skip_{0};  // MutatorState::marking_remember_skip for attaching threads
  // The generational bits a marker leaves on the objects it traces: the marking cycle's
  // newborn and remembered-next bits (0 outside generational concurrent marking).
  std::atomic<uint64_t> marker_keeps_{0};
  bool odd_cycle_ = false;  // which newborn / remembered-next bit the cycle under way uses (pauses)
  // Cards (gc/generations.cc): the card set the barrier records into (odd_cycle_; read by
  // mutators), and the one the verifier checks the invariant against (both change in
  // pauses only).
  std::atomic<unsigned> card_record_set_{0};
  std::atomic<unsigned> card_pending_set_{0};
  std::vector<LargeObject*> remembered_carded_ SHOAL_GUARDED_BY(work_mu_);  // a young cycle's
  std::atomic<uint64_t> torture_cycles_{0};
  std::atomic<bool> defer_all_stacks_next_{false};  // torture: the next cycle's stack budget is 0
  bool young_ = false;             // the cycle under way is young (written in pauses)
  std::atomic<bool> last_cycle_young_{false};  // the newest cycle (its sweep reports) was young
  // Pacing: the bytes the newest full cycle marked; the old generation's size (marked
  // bytes, exact once a cycle's sweep reports); and that size right after the newest
  // full cycle's sweep (its traced survivors; the newborns are young after it).
  std::atomic<size_t> live_after_full_{0};
  std::atomic<size_t> old_bytes_{0};
  std::atomic<size_t> old_after_full_{0};
  std::atomic<size_t> kept_after_full_{0};  // what that sweep kept: old_after_full_ and the newborns
  std::atomic<bool> full_cycle_seen_{false};  // (before the first, the old generation is the live size)
  std::atomic<uint64_t> sweep_reports_{0};
  std::atomic<size_t> last_marked_bytes_{0};  // the newest concurrent cycle's (for its sweep report)
  // Serialises sweep reports (report_lazy_sweep): a pause waits for the marker
  // thread's report in flight, so a stale one cannot land after the pause's own.
  Mutex report_mu_;
  std::vector<Object*> remembered_ SHOAL_GUARDED_BY(work_mu_);        // from detached threads
  std::vector<Object*> stale_remembered_ SHOAL_GUARDED_BY(work_mu_);  // a full cycle's
  std::atomic<size_t> throttle_waits_{0};
  std::atomic<size_t> limit_assists_{0};  // this cycle's: paced allocations past the soft limit
  std::atomic<size_t> pacing_assists_{0};  // this cycle's: mark assists (assist_for_allocation) that traced
  std::atomic<size_t> finalizers_queued_{0};  // since the last on_finalizers_pending call
  std::vector<Slot*> assist_weak_slots_ SHOAL_GUARDED_BY(work_mu_);  // found by assists
  std::vector<Marker::EphemeronSlots> assist_ephemerons_ SHOAL_GUARDED_BY(work_mu_);
  std::thread marker_thread_;
  std::thread scanner_thread_;  // (started and joined by the marker thread's owner paths only)
  bool scan_requested_ SHOAL_GUARDED_BY(work_mu_) = false;  // the marker thread asks for a scan
  bool scan_running_ SHOAL_GUARDED_BY(work_mu_) = false;    // asked for and not finished
  std::function<void()> scan_hook_ SHOAL_GUARDED_BY(work_mu_);  // the request's before-scan test hook
  uint64_t scan_ns_ SHOAL_GUARDED_BY(work_mu_) = 0;          // the last scan's duration
};

}  // namespace shoal::internal
