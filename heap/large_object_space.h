// Large objects: anything bigger than the largest size class (8 KiB).
//
// Each large object is one jemalloc allocation (mallocx, 64-byte aligned, zeroed) that
// starts with a LargeObject record - list links, size and the mark bit - followed by the
// object itself. The record is side metadata, so marking still never writes the object
// header. All large objects are on one intrusive list (mutex-guarded); at the start of a
// pause the collector builds an address-sorted index so a conservative root can be tested
// for "points into a large object" with a binary search. Dead large objects are freed
// to jemalloc by the sweep, into an arena of their own without the thread cache, which
// is purged after each cycle off the pause (purge_freed): the memory behind freed large
// objects leaves RSS instead of waiting out jemalloc's decay. Sanitizer builds use
// aligned_alloc/free instead, so ASan sees large-object use-after-free.
//
// The marker asks, for every large object it marks, whether the reference really is the
// start of one (gc/marker.h, bad references): a binary search of the index for the
// objects that existed at the last pause, then - for those allocated since, which a
// concurrent marker meets while mutators allocate - a hash set under the list's mutex.
// The index changes only in pauses, when no marker runs, so its search takes no lock.
//
// Cards (generations, gc/generations.cc "Cards"). A young cycle must not trace a large
// remembered object whole - one young store into a 64 MiB array would cost every young
// cycle 64 MiB - so a large object's remembered-set entry is the set of its dirty
// cards: kCardBytes of the object each, one byte per card, in two card sets (the cycles
// alternate between them, as the remembered-next header bits do). The card bytes lie
// after the object in the same allocation, zeroed with it. `listed[set]` says the
// object is on a remembered-set buffer for that set: the thread that turns it on pushes
// the object, so each object is listed once per set however many cards are dirtied.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "shoal/internal/mutex.h"
#include "shoal/object.h"

namespace shoal::internal {

inline constexpr size_t kCardShift = 9;
inline constexpr size_t kCardBytes = size_t{1} << kCardShift;  // 64 slots
inline constexpr unsigned kCardSets = 2;

struct LargeObject {
  LargeObject* prev;
  LargeObject* next;
  size_t object_bytes;
  size_t allocation_bytes;
  std::atomic<uint32_t> mark;
  uint32_t magic;
  size_t card_count;                       // cards per set
  std::atomic<uint8_t> listed[kCardSets];  // on a remembered-set buffer for that card set
  uint8_t padding[6];
  uint64_t padding2;

  static constexpr uint32_t kMagic = 0x5ea1b16u;
  static size_t cards_for(size_t object_bytes) { return (object_bytes + kCardBytes - 1) >> kCardShift; }
  // Card set `set`: card_count bytes, 0 clean, 1 dirty. Mutators write only the set the
  // barrier records into (atomically: std::atomic_ref); the other set is read and
  // cleared by the collector alone (gc/generations.cc, "Cards").
  uint8_t* cards(unsigned set) const {
    return reinterpret_cast<uint8_t*>(begin() + ((object_bytes + 15) & ~size_t{15})) + set * card_count;
  }
  size_t card_of(uintptr_t a) const { return (a - begin()) >> kCardShift; }
  // The collector's: set `set` clean and the object off its list (no mutator writes it).
  void clean_cards(unsigned set) {
    std::fill_n(cards(set), card_count, uint8_t{0});
    listed[set].store(0, std::memory_order_release);  // (clean cards before it: tests poll it)
  }
  // The write barrier's test (remember_card, barriers/write_barrier.cc): is `slot`'s
  // card dirty in `set`? Loads only - a store that finds it needs no slow path. Within
  // one recording epoch (between two initial pauses) a card only goes from 0 to 1, and
  // the thread that dirtied it lists the object before it leaves its no-preempt region
  // (so before any pause). False for a slot outside the object.
  bool card_recorded(unsigned set, const void* slot) const {
    const auto a = reinterpret_cast<uintptr_t>(slot);
    if (a < begin() || a >= end()) return false;
    uint8_t& card = cards(set)[card_of(a)];
    return std::atomic_ref<uint8_t>(card).load(std::memory_order_relaxed) != 0;
  }
  // Whether set `set` has a dirty card (the collector's read: no mutator writes it then).
  bool any_dirty(unsigned set) const {
    const uint8_t* c = cards(set);
    return std::find(c, c + card_count, uint8_t{1}) != c + card_count;
  }
  Object* object() { return reinterpret_cast<Object*>(this + 1); }
  static LargeObject* of(const Object* o) {
    return reinterpret_cast<LargeObject*>(const_cast<Object*>(o)) - 1;
  }
  uintptr_t begin() const { return reinterpret_cast<uintptr_t>(this + 1); }
  uintptr_t end() const { return begin() + object_bytes; }
};
static_assert(sizeof(LargeObject) % 64 == 0);


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

  // Gives the memory of the large objects freed since the last purge back to the
  // system (jemalloc's purge of the large objects' arena; nothing in sanitizer builds).
  // Off the pauses, from any thread. Without it what a sweep freed stayed resident for
  // jemalloc's decay time (10 s): two threads churning 8-20 KiB objects under a 16 MiB
  // heap limit peaked at 24-36 MiB of RSS.
  void purge_freed();
  // The jemalloc arena of the large objects (for tests); -1 if there is none (sanitizer
  // builds, or jemalloc would not make one).
  static int arena_index();
  // Whether to: `footprint` plus what was freed since the last purge exceeds `bound`
  // (the heap limit's pacing target). A heap far from its limit leaves the freed memory
  // to jemalloc's decay, and reuses it without page faults.
  bool purge_due(size_t footprint, size_t bound) const {
    const size_t unpurged = freed_unpurged_.load(std::memory_order_relaxed);
    return unpurged != 0 && footprint + unpurged > bound;
  }
  size_t count() const { return count_.load(std::memory_order_relaxed); }
  size_t footprint_bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Bytes of jemalloc memory one object of `bytes` occupies (what the footprint counts):
  // the record, the object rounded to 16 bytes, then - if `carded`: with generations -
  // its two card sets; all of it rounded up to the allocator's size class (jemalloc
  // rounds up to a quarter: a footprint of requested bytes let the memory behind large
  // objects pass heap_limit by as much).
  static size_t allocation_size(size_t bytes, bool carded);

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
  std::atomic<size_t> freed_unpurged_{0};
  std::vector<LargeObject*> index_;  // written in pauses only
  // Allocated since index_ was built (cleared when it is rebuilt).
  std::unordered_set<const LargeObject*> since_index_ SHOAL_GUARDED_BY(mu_);
};

}  // namespace shoal::internal
