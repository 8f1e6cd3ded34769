// PageSpace: the heap's reservation of small-object pages, the free-page pool and the
// per-size-class lists of pages with free runs.
//
// One contiguous reservation (mmap, MAP_NORESERVE) per heap makes "is this word a heap
// address?" two compares and "which page?" a shift - what conservative stack scanning
// needs. Pages are carved from the reservation in address order and never returned to
// it; a page whose objects all die goes to the free pool and may later serve any class.
// Free-pool pages can be decommitted (madvise) to give their memory back to the
// footprint budget (for large objects at the heap limit) and to the system (the
// scavenger, heap/scavenger.cc). The pool is two lists: committed pages, most recently
// freed first, which take_free hands out before the decommitted ones, so a page is
// faulted back in only when no committed page is left.
//
// Locks: pool_mu_ guards the free pool, each class list has its own mutex (threads
// refilling different classes never contend). In a pause the collector empties all
// lists without locks (reset_lists_in_pause) and the sweep gives pages back through the
// locked give_* calls, which parallel sweep workers need.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "heap/page.h"
#include "shoal/internal/mutex.h"

namespace shoal::internal {

class PageSpace {
 public:
  explicit PageSpace(size_t reserve_bytes);
  ~PageSpace();
  PageSpace(const PageSpace&) = delete;
  PageSpace& operator=(const PageSpace&) = delete;

  bool contains(uintptr_t a) const { return a - base_ < reserved_bytes_; }
  uintptr_t base() const { return base_; }
  size_t reserved_bytes() const { return reserved_bytes_; }
  bool contains(const void* p) const { return contains(reinterpret_cast<uintptr_t>(p)); }
  // Only for addresses inside carved pages.
  PageInfo& page_of(uintptr_t a) const { return infos_[(a - base_) >> kPageShift]; }
  PageInfo& page_of(const void* p) const { return page_of(reinterpret_cast<uintptr_t>(p)); }
  bool is_carved(uintptr_t a) const {
    return contains(a) && ((a - base_) >> kPageShift) < carved_.load(std::memory_order_acquire);
  }
  // is_carved(a) && a is granule-aligned, in one compare (for the marker's fast path):
  // rotating the offset right by 3 bits (log2 kGranule) moves a misaligned address's low bits to the
  // top, beyond any carved offset. (Relaxed: exact for an address whose page a
  // happens-before chain shows carved - a reference to an object - so a valid reference
  // always passes.)
  bool in_carved_pages_aligned(uintptr_t a) const {
    static_assert(kGranule == 8);
    return std::rotr(a - base_, 3) < carved_granules_.load(std::memory_order_relaxed);
  }

  size_t carved_pages() const { return carved_.load(std::memory_order_acquire); }
  // [begin, end) of the carved pages: is_carved(a) iff a lies in it.
  uintptr_t carved_begin() const { return base_; }
  uintptr_t carved_end() const { return base_ + (carved_pages() << kPageShift); }
  size_t max_pages() const { return max_pages_; }
  PageInfo& page_at(size_t i) const { return infos_[i]; }

  // A page of class `cls` with free runs, now kOwned by the caller; or null.
  PageInfo* take_available(size_t cls);
  // A page from the free pool, now kOwned (class unassigned); or null. A committed page
  // if there is one; a decommitted one (committed == false: the caller reserves its
  // footprint again) otherwise.
  PageInfo* take_free();
  // A never-used page from the reservation, kOwned; null when the reservation is used up.
  PageInfo* carve();

  void give_available(PageInfo* page);
  void give_free(PageInfo* page);

  // Pause only: forget every list; the sweeper then gives each page back.
  void reset_lists_in_pause() SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  // Pause only: forget the class lists (the free pool stays as it is).
  void reset_class_lists_in_pause() SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  // In-use bitmap: bit i is set while carved page i is out of the free pool (owned by a
  // TLAB, on a class list, full, or waiting to be swept). A compact copy of "state !=
  // kFree" that a pause can snapshot in O(pages / 64) words instead of touching every
  // PageInfo (one cache miss each: ~1.6 ms for the 16K pages of a 4 GB heap).
  size_t in_use_words() const { return (max_pages_ + 63) / 64; }
  uint64_t in_use_word(size_t w) const { return in_use_[w].load(std::memory_order_relaxed); }
  // Decommits every committed pool page (madvise DONTNEED); returns bytes released.
  // From a mutator (the world cannot stop while it runs) or under the collector's lock.
  size_t decommit_free_pages();
  // Decommits up to `max_pages` committed pool pages, leaving the `keep_pages` most
  // recently freed ones committed; returns bytes released. The pages are off every list
  // while madvise runs (a refilling thread is never held up by it), so the caller must
  // exclude the pauses that rebuild the pool (the collector's lock, gc_mu_).
  size_t decommit_free_pages_beyond(size_t keep_pages, size_t max_pages);

  size_t free_pages() const { return free_count_.load(std::memory_order_relaxed); }
  // Of free_pages(), those still committed (counted in the footprint).
  size_t committed_free_pages() const { return committed_free_count_.load(std::memory_order_relaxed); }
  // Verifier access: walks each list under its lock.
  template <class F>
  void for_each_listed(F&& f) {
    {
      MutexLock lock(pool_mu_);
      for (PageInfo* p = pool_; p; p = p->next) f(*p, true);
      for (PageInfo* p = decommitted_; p; p = p->next) f(*p, true);
    }
    for (auto& list : classes_) {
      MutexLock lock(list.mu);
      for (PageInfo* p = list.head; p; p = p->next) f(*p, false);
    }
  }

 private:
  struct ClassList {
    Mutex mu;
    PageInfo* head SHOAL_GUARDED_BY(mu) = nullptr;
  };

  uintptr_t base_ = 0;
  size_t reserved_bytes_ = 0;
  size_t max_pages_ = 0;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  PageInfo* infos_ = nullptr;
  size_t infos_bytes_ = 0;
  std::atomic<size_t> carved_{0};
  std::atomic<size_t> carved_granules_{0};  // carved_ * kGranulesPerPage
  Mutex carve_mu_;
  Mutex pool_mu_;
  PageInfo* pool_ SHOAL_GUARDED_BY(pool_mu_) = nullptr;         // committed, newest first
  PageInfo* decommitted_ SHOAL_GUARDED_BY(pool_mu_) = nullptr;  // committed == false
  std::atomic<size_t> free_count_{0};            // both lists
  std::atomic<size_t> committed_free_count_{0};  // pool_ only
  void push_free(PageInfo* page) SHOAL_REQUIRES(pool_mu_);
  std::unique_ptr<std::atomic<uint64_t>[]> in_use_;
  void set_in_use(size_t i, bool on) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (on)
      in_use_[i >> 6].fetch_or(bit, std::memory_order_relaxed);
    else
      in_use_[i >> 6].fetch_and(~bit, std::memory_order_relaxed);
  }
  ClassList classes_[kNumSizeClasses];
};

}  // namespace shoal::internal
