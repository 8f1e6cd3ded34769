// Lazy and background sweeping of the pages a concurrent cycle marked.
//
// A concurrent cycle's final pause does not sweep pages (that would make the pause grow
// with the heap). Instead begin_in_pause() empties the class lists and snapshots the
// page space's in-use bitmap as the "unswept" bitmap - O(pages / 64) words, no page is
// touched, so the pause stays flat as the heap grows; after the world resumes, pages are swept one at a time by whoever
// needs memory or has time:
//   - an allocating thread whose class list is empty sweeps pages until one of its class
//     has free runs (HeapImpl::acquire_page -> sweep_for_class), and the pacer sweeps a
//     few pages instead of starting the next cycle while a sweep is pending;
//   - the heap's background thread (the marker thread) sweeps the rest right after the
//     cycle.
// Claiming: pages are claimed by an atomic cursor over the page indices that existed at
// the final pause, so each page is swept exactly once, by one thread, without locks; the
// swept page goes to its list under the list's lock (gc/sweeper.h: sweep_one_page).
// Invariants: a page whose unswept bit is set is on no list and owned by no TLAB (its
// `state` still says kAvailable or kFull from before the pause), and only the thread
// that cleared its bit touches it. Pages taken from the free pool after the pause have
// no unswept bit, so the sweep never touches a page a TLAB allocates in. Alloc bits of unswept pages still include dead objects, and their mark bits
// are the cycle's liveness, so anything that needs exact allocation state - every pause
// (conservative root lookup, marking with clear mark bits, the verifier) - first calls
// finish(), which sweeps what is left and waits for sweeps in flight (a claimer never
// waits at a safepoint mid-page, and the background thread is not stopped by pauses).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "gc/sweeper.h"

namespace shoal::internal {

class HeapImpl;
struct PageInfo;

class LazySweeper {
 public:
  explicit LazySweeper(HeapImpl& heap);

  // Final pause of a concurrent cycle, after the TLABs were flushed.
  void begin_in_pause();
  bool pending() const { return swept_.load(std::memory_order_acquire) < end_.load(std::memory_order_acquire); }
  // True while some page of the current sweep has not been claimed yet.
  bool unclaimed() const { return cursor_.load(std::memory_order_acquire) < end_.load(std::memory_order_acquire); }
  // Sweeps the next unclaimed page; false when there is none left to claim.
  bool sweep_next();
  // Sweeps up to `budget` pages; returns how many it claimed.
  size_t sweep_some(size_t budget);
  // Sweeps until a page of class `cls` is available (returned kOwned) or `budget` pages
  // were swept; null if none turned up.
  PageInfo* sweep_for_class(size_t cls, size_t budget);
  // Sweeps everything left and waits for sweeps in flight.
  void finish();
  // Once per sweep, after it completed: its totals (true) - for statistics and pacing.
  bool take_result(SweepResult& out);

 private:
  HeapImpl& heap_;
  // Bit i set: page i was in use at the final pause and nobody has claimed its sweep.
  std::unique_ptr<std::atomic<uint64_t>[]> unswept_;
  std::atomic<size_t> cursor_{0};
  std::atomic<size_t> end_{0};
  std::atomic<size_t> swept_{0};
  std::atomic<size_t> live_{0}, newborn_{0}, freed_{0}, pages_freed_{0};
  std::atomic<bool> unreported_{false};
};

}  // namespace shoal::internal
