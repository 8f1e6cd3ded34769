// HeapImpl: the state behind one shoal::Heap, tying the parts together.
//
//   PageSpace         small-object pages, free pool, class lists   (heap/page_space.h)
//   LargeObjectSpace  large objects over jemalloc                  (heap/large_object_space.h)
//   ThreadRegistry    mutators, safepoints, handshakes             (gc/thread_registry.h)
//   RootSet           persistent handles and global slots          (gc/roots.h)
//   Collector         the mark-sweep cycle and its statistics      (gc/collector.h)
//
// Footprint accounting: footprint = committed pages * kPageSize + large-object bytes.
// It may never exceed the heap limit; try_reserve() is the only way to grow it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/collector.h"
#include "gc/roots.h"
#include "gc/thread_registry.h"
#include "heap/large_object_space.h"
#include "heap/page_space.h"
#include "shoal/heap.h"
#include "shoal/internal/mutex.h"
#include "shoal/object_model.h"

namespace shoal::internal {

// A non-negative byte count computed in double (pacing: a size times a growth factor),
// saturated: SIZE_MAX past its range, where the cast would be undefined.
inline size_t saturating_size(double bytes) {
  if (!(bytes > 0.0)) return 0;
  return bytes >= 0x1p64 ? SIZE_MAX : static_cast<size_t>(bytes);
}

class HeapImpl {
 public:
  HeapImpl(Heap* facade, const HeapOptions& options);
  ~HeapImpl();

  Heap* const facade;
  const HeapOptions options;
  const ObjectModel& model;
  const size_t limit;
  PageSpace pages;
  LargeObjectSpace large;
  ThreadRegistry threads;
  RootSet roots;
  Collector collector;

  // Footprint budget.
  bool try_reserve(size_t bytes);
  void release(size_t bytes) { footprint_.fetch_sub(bytes, std::memory_order_relaxed); }
  size_t footprint() const { return footprint_.load(std::memory_order_relaxed); }
  size_t peak_footprint() const { return peak_footprint_.load(std::memory_order_relaxed); }
  // The footprint less the committed free pages: small-object pages in use (owned,
  // listed with free runs, full, unswept) and large objects.
  size_t pages_in_use_bytes() const {
    const size_t free_bytes = pages.committed_free_pages() * kPageSize;
    const size_t fp = footprint();
    return fp > free_bytes ? fp - free_bytes : 0;
  }

  // Pacing: bytes handed out since the last collection versus the trigger.
  void note_allocated(size_t bytes) {
    allocated_since_gc_.fetch_add(bytes, std::memory_order_relaxed);
    allocated_total_.fetch_add(bytes, std::memory_order_relaxed);
  }
  // A thread's TLAB took `bytes`: counted a batch at a time, so that threads refilling
  // from small free runs do not contend on the two shared counters for every run (it
  // was most of a refill's cost with four threads). The pacer sees a thread's
  // allocation at most kAllocationReportBatch late; near the heap limit, at once.
  static constexpr size_t kAllocationReportBatch = size_t{64} << 10;
  void count_allocated(MutatorThread* self, size_t bytes);
  void report_allocated(MutatorThread* self);
  // Pacing (like Go's pacer, simplified). The goal is max(min_gc_trigger, gc_growth x
  // pacing_size(what the last cycle kept, what it marked)): the bytes a cycle may
  // allocate before the next one must be done. A stop-the-world heap collects at the goal; a concurrent heap starts marking earlier,
  // at goal - runway, where the runway is a running average of what the mutators
  // allocated while the last cycles marked - so marking usually ends as the goal is
  // reached and the heap peaks near live + goal instead of overshooting it. (The
  // runway never brings the start below kMinStartFraction of the goal.)
  bool over_trigger() const {
    return allocated_since_gc_.load(std::memory_order_relaxed) > gc_start_.load(std::memory_order_relaxed);
  }
  // Restarts the allocation count; the goal grows from `marked_bytes` (set_goal_from).
  void reset_pacing(size_t marked_bytes, size_t survivors);
  // Sets the goal from a pacing size without restarting the allocation count;
  // `survivors` as for set_paced_goal.
  void set_goal_from(size_t size, size_t survivors);
  // The size a goal grows from, given what a cycle marked and what its sweep kept (the
  // marked objects plus, for a concurrent cycle, everything allocated - black - while it
  // marked): the survivors, but floating garbage counted only up to the marked bytes.
  // Counting all of it lets a heap whose cycles run long next to what they mark (a
  // small live set, threads slow to answer handshakes) grow its goal from its own
  // garbage, cycle after cycle; counting none makes a busy heap with a large live set
  // collect twice as often for little memory (docs/performance.md, "Pacing from marked
  // bytes").
  static size_t pacing_size(size_t survivors, size_t marked) { return std::min(survivors, 2 * marked); }
  // Sets the goal (bytes to allocate from the last cycle to the next) directly: the
  // generational pacer's (gc/generations.cc).
  void set_goal(size_t goal);
  // Sets the goal to `budget`, the pacer's choice, fitted under the soft limit ("Soft
  // limit" in heap/heap.cc). `survivors`: what the last cycle kept (cells and large
  // objects, old and newborn); `old_growth`: how far the old generation has grown since
  // the last full cycle (0 without generations).
  void set_paced_goal(size_t budget, size_t survivors, size_t old_growth) SHOAL_EXCLUDES(pacing_mu_);
  // A cycle's final pause (or a stop-the-world cycle's pause, before its sweep): the
  // heap is at its largest for the cycle; compares the pages in use with what the pacer
  // accounts for (the last survivors plus what was allocated since), for the soft limit;
  // and, if it measures `demand`, remembers the peak for the scavenger. (An idle cycle's
  // does not: the heap was quiet, and what it held is the garbage it is about to free.)
  // Returns the pages in use, bytes.
  size_t note_peak_in_use(bool demand = true) SHOAL_EXCLUDES(pacing_mu_);
  // The overhead note_peak_in_use measured, averaged (for tests).
  double pacing_overhead() SHOAL_EXCLUDES(pacing_mu_) {
    MutexLock lock(pacing_mu_);
    return overhead_;
  }
  // The scavenger (heap/scavenger.cc): decommits up to `max_pages` free pages that the
  // footprint holds beyond what recent cycles needed; returns bytes released. The caller
  // excludes the pauses that rebuild the free pool: it holds the collector's lock
  // (gc_mu_). Cheap when there is nothing to release.
  size_t scavenge_batch(size_t max_pages) SHOAL_EXCLUDES(pacing_mu_);
  // Every committed free page, now (Heap::release_free_memory, and large objects at
  // the heap limit); the caller is a running mutator or holds gc_mu_.
  size_t release_all_free_pages();
  // The footprint the scavenger keeps (for tests and the docs' figures).
  size_t scavenge_retain_bytes() SHOAL_EXCLUDES(pacing_mu_);
  uint64_t bytes_released() const { return bytes_released_.load(std::memory_order_relaxed); }
  // HeapOptions::soft_heap_limit now (Heap::set_soft_heap_limit changes it); 0: none.
  size_t soft_limit() const { return soft_limit_.load(std::memory_order_relaxed); }
  void set_soft_limit(size_t bytes) SHOAL_EXCLUDES(pacing_mu_);
  // The pages in use the pacer aims to stay under for the heap limit ("Heap limit" in
  // heap/heap.cc): kLimitPacingFraction of it.
  size_t limit_pacing_target() const { return saturating_size(static_cast<double>(limit) * kLimitPacingFraction); }
  // After a collection's sweep: the freed large objects' memory is to be purged (the
  // footprint plus what was freed since the last purge passes the pacing target).
  bool large_purge_due() const { return large.purge_due(footprint(), limit_pacing_target()); }
  // The pages in use past which allocating threads assist a marking cycle: the soft
  // limit, or halfway from the heap limit's pacing target to the limit, whichever is
  // lower. (Not the target itself: a cycle that ends a little late is no danger there,
  // and assisting from it on made the mutator do most of the marking of every cycle.)
  size_t assist_limit() const {
    const size_t soft = soft_limit();
    const size_t hard = limit_pacing_target() + (limit - limit_pacing_target()) / 2;
    return soft != 0 ? std::min(soft, hard) : hard;
  }
  // The last goal was cut by a limit while the old generation held garbage only a full
  // cycle frees (the soft limit: below its floor; the heap limit: more than the room
  // left): the next cycle should be full.
  bool limits_want_full() const { return limits_want_full_.load(std::memory_order_relaxed); }
  // A concurrent cycle's final pause: `bytes` were allocated while it marked.
  void note_runway(size_t bytes);
  uint64_t allocated_total() const { return allocated_total_.load(std::memory_order_relaxed); }
  size_t allocated_since_cycle() const { return allocated_since_gc_.load(std::memory_order_relaxed); }
  size_t trigger_bytes() const { return gc_trigger_.load(std::memory_order_relaxed); }  // the goal

  // The allocated object containing address a (small or large, interior pointers too),
  // or null. Pause only (the large-object index is built at the start of each pause).
  Object* object_containing(uintptr_t a) const;
  // Any time, from a running thread: the object holding a slot at address a, where the
  // caller knows a lies in a live object or outside the heap (the weak barrier); null
  // outside the heap or for an object its TLAB has not flushed yet. Reads only what a
  // live object's page keeps fixed (cell size) and the atomic start bits.
  Object* holder_of_slot(uintptr_t a) const;
  bool is_allocated_object_start(const Object* o) const;

  // Allocation slow paths (heap/allocator.cc).
  Object* allocate_small_slow(MutatorThread* self, size_t cls, uint64_t header_word);
  Object* allocate_large(MutatorThread* self, size_t bytes, uint64_t header_word);
  // A large object of `bytes` if the footprint has room for it now (after decommitting
  // free pages), else null; no collection. Any size: the allocation slow path's last
  // resort for a small object too.
  Object* allocate_large_now(MutatorThread* self, size_t bytes, uint64_t header_word);
  // Hands a TLAB's bump range and page back (the thread is the owner, or in a pause);
  // `black`: allocates_black(owner).
  void retire_tlab(Tlab& tlab, bool black);
  void retire_all_tlabs(MutatorThread* t);
  // Allocation colour while a cycle marks concurrently (gc/thread_stack_scan.cc, "White
  // allocation"): a thread allocates black once its stack has been scanned and white
  // before - its stack, grey until then, may hold white references, and the scan finds
  // them. Newborn (recorded as such for the sweep, with generations) either way.
  bool allocates_black(const MutatorThread& thread) const;
  bool allocates_newborn() const;
  // Just before `thread`'s stack is scanned while marking: gives every object its TLABs
  // allocated (white) so far its start bit, so that the conservative scan resolves
  // them, and goes on allocating from the same runs. By the thread itself, or by the
  // collector while the thread cannot run (a handshake in native or blocked state).
  void flush_tlabs_before_stack_scan(MutatorThread& thread);

 private:
  bool refill(MutatorThread* self, size_t cls);
  // The TLAB's page's next free run into the TLAB; false (the page given up as full)
  // if it has none, or there is no page.
  bool take_next_run(MutatorThread* self, size_t cls);
  // A class with no page at the limit (heap/allocator.cc): a larger class's free cell,
  // else the cell as a large object if the footprint has room; null if neither.
  Object* allocate_without_a_page(MutatorThread* self, size_t cls, uint64_t header_word);
  Object* allocate_in_larger_class(MutatorThread* self, size_t cls, uint64_t header_word);
  // Per size class: a refill of it failed at the limit, after full collections, and
  // none has succeeded since (heap/allocator.cc).
  std::atomic<bool> class_exhausted_[kNumSizeClasses] = {};
  PageInfo* acquire_page(MutatorThread* self, size_t cls);
  void take_run(MutatorThread* self, Tlab& tlab, PageInfo* page);

  std::atomic<size_t> footprint_{0};
  std::atomic<size_t> peak_footprint_{0};  // max of footprint_, raised by try_reserve
  std::atomic<size_t> allocated_since_gc_{0};
  std::atomic<size_t> allocated_total_{0};
  std::atomic<size_t> gc_trigger_{0};  // the goal
  std::atomic<size_t> gc_start_{0};    // a concurrent cycle starts here (<= the goal)
  std::atomic<size_t> runway_{0};
  static constexpr double kMinStartFraction = 0.3;
  // The soft limit's floor: a goal it cuts is at least this fraction of the pacer's
  // own budget (and min_gc_trigger), so collections never come more than 1 / kSoftLimitFloor
  // times as often as without the limit.
  static constexpr double kSoftLimitFloor = 0.25;
  // The heap limit's pacing target, as a fraction of the limit: what is left above it is
  // room for what threads allocate while a cycle ends late.
  static constexpr double kLimitPacingFraction = 0.875;
  void apply_paced_goal() SHOAL_REQUIRES(pacing_mu_);
  std::atomic<size_t> soft_limit_{0};
  std::atomic<bool> limits_want_full_{false};
  Mutex pacing_mu_;
  struct PacingInputs {
    size_t budget = 0, survivors = 0, old_growth = 0;
  };
  PacingInputs pacing_ SHOAL_GUARDED_BY(pacing_mu_);
  // Pages in use per byte the pacer accounts for, at the cycles' peaks (a running
  // average, 1 to kMaxOverhead): partly filled pages of each size class, runs not yet
  // reused. The soft limit divides by it.
  static constexpr double kMaxOverhead = 2.0;
  double overhead_ SHOAL_GUARDED_BY(pacing_mu_) = 1.0;
  // The scavenger's memory of demand: pages in use at the last kScavengeCycles cycles'
  // peaks (note_peak_in_use), with when each was seen (heap/scavenger.cc).
  static constexpr size_t kScavengeCycles = 8;
  struct PeakSample {
    size_t bytes = 0;
    uint64_t ns = 0;  // steady clock; 0: no sample
  };
  PeakSample peaks_[kScavengeCycles] SHOAL_GUARDED_BY(pacing_mu_);
  size_t next_peak_ SHOAL_GUARDED_BY(pacing_mu_) = 0;
  void remember_peak(size_t in_use) SHOAL_REQUIRES(pacing_mu_);
  // Decommitted pages leave the footprint and count in GcStats::bytes_released.
  size_t note_decommitted(size_t bytes);
  std::atomic<uint64_t> bytes_released_{0};
};

// Debug poisoning of free memory (heap/allocator.cc, gc/sweeper.cc).
inline constexpr uint8_t kPoisonByte = 0xdb;

}  // namespace shoal::internal
