// Large objects: anything bigger than the largest size class (8 KiB).
//
// Each large object is one jemalloc allocation (mallocx, 64-byte aligned, zeroed) that
// starts with a LargeObject record - list links, size and the mark bit - followed by the
// object itself. The record is side metadata, so marking still never writes the object
// header. All large objects are on one intrusive list (mutex-guarded); at the start of a
// pause the collector builds an address-sorted index so a conservative root can be tested
// for "points into a large object" with a binary search. Dead large objects are freed
// to jemalloc by the sweep. Sanitizer builds use aligned_alloc/free instead, so ASan
// sees large-object use-after-free.
//
// The marker asks, for every large object it marks, whether the reference really is the
// start of one (gc/marker.h, bad references): a binary search of the index for the
// objects that existed at the last pause, then - for those allocated since, which a
// concurrent marker meets while mutators allocate - a hash set under the list's mutex.
// The index changes only in pauses, when no marker runs, so its search takes no lock.
//
// The record and its cards are in shoal/internal/large_object.h (the write barrier's
// inline card test reads them).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "shoal/internal/large_object.h"
#include "shoal/internal/mutex.h"
#include "shoal/object.h"

namespace shoal::internal {


class LargeObjectSpace {
 public:
  LargeObjectSpace() = default;
  ~LargeObjectSpace();

  // Allocates a zeroed large object; null if the system allocator fails.
  Object* allocate(size_t bytes, uint64_t header_word);

  // Pause only: builds the sorted index used by find_containing.
  void build_index_in_pause() SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  // Pause only: the large object containing address a (interior pointers too), or null.
  LargeObject* find_containing(uintptr_t a) const;
  // Any time, from any thread: true if o is the start of a large object (the index,
  // then the objects allocated since it was built). Never dereferences o.
  bool is_object_start(const Object* o) const;
  // Like is_object_start, for interior addresses too: the large object containing a, or
  // null. A binary search of the index plus a scan of the objects allocated since it was
  // built (valid whenever the index is: outside pauses, and in a pause once it is built).
  LargeObject* find_containing_any(uintptr_t a) const;
  // Cheap pre-filter for find_containing: false if a lies outside every indexed object.
  bool index_may_contain(uintptr_t a) const {
    return !index_.empty() && a >= index_.front()->begin() && a < index_.back()->end();
  }
  // The range index_may_contain accepts, [begin, end); empty when there is no index.
  void index_range(uintptr_t& begin, uintptr_t& end) const {
    begin = end = 0;
    if (!index_.empty()) begin = index_.front()->begin(), end = index_.back()->end();
  }
  // Pause only: frees unmarked objects; clears the survivors' marks unless `keep_marks`
  // (generational: survivors stay marked, i.e. old). Returns {freed bytes, freed count}.
  struct SweepResult {
    size_t freed_bytes = 0, freed_objects = 0, live_bytes = 0;
  };
  SweepResult sweep_in_pause(bool poison, bool keep_marks) SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  // Clears every mark (a full cycle after sticky marks), with no cycle marking.
  void clear_marks() {
    MutexLock lock(mu_);
    for (LargeObject* l = head_; l; l = l->next) l->mark.store(0, std::memory_order_relaxed);
  }

  size_t count() const { return count_.load(std::memory_order_relaxed); }
  size_t footprint_bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Bytes of jemalloc memory one object of `bytes` occupies (what the footprint counts).
  // (The object rounded to 16 bytes, then its two card sets.)
  static size_t allocation_size(size_t bytes) {
    return sizeof(LargeObject) + ((bytes + 15) & ~size_t{15}) + kCardSets * LargeObject::cards_for(bytes);
  }

  template <class F>
  void for_each(F&& f) {
    MutexLock lock(mu_);
    for (LargeObject* l = head_; l; l = l->next) f(*l);
  }

 private:
  mutable Mutex mu_;
  LargeObject* head_ SHOAL_GUARDED_BY(mu_) = nullptr;
  std::atomic<size_t> count_{0};
  std::atomic<size_t> bytes_{0};
  std::vector<LargeObject*> index_;  // written in pauses only
  // Allocated since index_ was built (cleared when it is rebuilt).
  std::unordered_set<const LargeObject*> since_index_ SHOAL_GUARDED_BY(mu_);
};

}  // namespace shoal::internal
