// Heap pages: the unit of small-object memory (glossary for heap/).
//
//   reservation  one contiguous virtual range per heap (heap/page_space.h), carved into
//                pages from low to high addresses; the heap never moves objects.
//   page         kPageSize bytes, aligned to kPageSize, holding cells of one size class.
//                256 KiB: big enough that per-page work (taking a page, sweeping a page's
//                bitmaps: 2 x 4 KiB) is amortised over 32..16384 objects and the 8 KiB
//                largest class wastes nothing; small enough that a thread's page costs
//                little when it stops allocating, that the side table stays small
//                (12.1 KiB per page, three bitmaps: 4.7%), and that a page fits in L2
//                while it is zeroed.
//   cell         a slot of the page's class size; cell i starts at start + i*cell_size.
//   granule      8 bytes, the object alignment; bitmaps have one bit per granule (32768
//                bits per page). 8 rather than 16 so that the common small objects - a
//                header and two, four or six slots (24, 40, 56 bytes: a cons cell, a
//                two-child tree node) - get cells of their own size: with
//                16-byte granules a 24-byte node took a 32-byte cell, a third more memory
//                to allocate, zero, mark and sweep (docs/performance.md).
//   PageInfo     a page's metadata, kept in a side table (not in the page), indexed by
//                (address - reservation base) >> kPageShift.
//   alloc bits   the object-start bitmap: bit set <=> an allocated object starts there.
//   mark bits    the side mark bitmap (setting a mark never writes the object header).
//   newborn bits the cells a TLAB flushed black while a cycle marked (until the sweep).
//   free run     a maximal range of free cells; its first 16 bytes hold a FreeRun
//                {next, end}; runs are handed to TLABs whole.
//
// Invariants (outside a pause):
//   - alloc bits are set only at cell starts; mark bits are all clear, or - with
//     generations - set exactly on old objects (gc/generations.cc).
//   - a cell is exactly one of: allocated (alloc bit set), in a free run of the page,
//     inside a TLAB's bump range, or already handed out by a TLAB but not yet flushed
//     (between the TLAB's run_start and cursor). Pauses flush TLABs first, so inside a
//     pause a cell is allocated or free.
//   - PageInfo::state and ::runs change only under the lock of the list the page is on,
//     by the owning thread (state kOwned), or in a pause.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "shoal/internal/size_classes.h"
#include "shoal/object.h"

namespace shoal::internal {

inline constexpr size_t kPageShift = 18;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
inline constexpr size_t kGranulesPerPage = kPageSize / kGranule;
inline constexpr size_t kBitmapWords = kGranulesPerPage / 64;

// The positions g0, g0 + step, g0 + 2 step, ... below g_end, a 64-bit bitmap word at a
// time: calls fn(word index, the positions' bits in that word) for each word holding one,
// in order, and stops early if fn returns true. Below a step of 64 a word's bits are one
// pattern (bits 0, step, 2 step, ...) shifted to the word's first position, so the cost
// is per word, not per position: a TLAB flush of 24-byte cells sets 21 bits per store.
template <class Fn>
inline void for_each_strided_word(size_t g0, size_t g_end, size_t step, Fn&& fn) {
  if (step >= 64) {
    for (size_t g = g0; g < g_end; g += step)
      if (fn(g >> 6, uint64_t{1} << (g & 63))) return;
    return;
  }
  uint64_t pattern = 0;
  for (size_t i = 0; i < 64; i += step) pattern |= uint64_t{1} << i;
  for (size_t g = g0; g < g_end;) {  // g: the first position in its word
    const uint64_t positions = pattern << (g & 63);  // (bit g & 63 is set: never 0)
    uint64_t bits = positions;
    if (g_end < (((g >> 6) + 1) << 6)) bits &= (uint64_t{1} << (g_end & 63)) - 1;
    if (fn(g >> 6, bits)) return;
    // The next position: one step past the word's last.
    g = (g & ~size_t{63}) + static_cast<size_t>(63 - std::countl_zero(positions)) + step;
  }
}

// A bitmap over the granules of one page. Words are atomic so that parallel markers can
// set bits and conservative lookups can read them while other threads run.
class PageBitmap {
 public:
  bool test(size_t g, std::memory_order order = std::memory_order_relaxed) const {
    return (words_[g >> 6].load(order) >> (g & 63)) & 1;
  }
  // Returns true if this call set the bit (it was clear before).
  bool test_and_set(size_t g) {
    const uint64_t mask = uint64_t{1} << (g & 63);
    std::atomic<uint64_t>& w = words_[g >> 6];
    if (w.load(std::memory_order_relaxed) & mask) return false;
    return (w.fetch_or(mask, std::memory_order_relaxed) & mask) == 0;
  }
  void clear_bit(size_t g) { words_[g >> 6].fetch_and(~(uint64_t{1} << (g & 63)), std::memory_order_relaxed); }
  // ORs `bits` into word w (atomic: other writers allowed).
  void or_word(size_t w, uint64_t bits) { words_[w].fetch_or(bits, std::memory_order_relaxed); }
  // Sets the bits g0, g0+step, ... below g_end, with an atomic OR per word (other
  // writers allowed: markers share the mark bitmap).
  void set_strided(size_t g0, size_t g_end, size_t step, std::memory_order order = std::memory_order_relaxed);
  // The first set bit at or after g, or kGranulesPerPage.
  size_t find_next(size_t g) const;
  // The first clear bit among g, g + step, g + 2 step, ... or kGranulesPerPage: a word
  // at a time (see for_each_strided_word).
  size_t find_next_clear_strided(size_t g, size_t step) const;
  size_t count() const;
  void clear_all();
  void copy_from(const PageBitmap& other);
  // set_strided for a bitmap no other thread writes meanwhile (a load and a store per
  // word, no read-modify-write; readers may read it meanwhile).
  void set_strided_single_writer(size_t g0, size_t g_end, size_t step,
                                 std::memory_order order = std::memory_order_relaxed);
  // Clears the bits set in `other` (single writer: whoever owns the page, or a pause).
  void clear_those_of(const PageBitmap& other);
  // How many bits are set in both this and `other`.
  size_t count_common(const PageBitmap& other) const;
  bool empty() const { return find_next(0) == kGranulesPerPage; }
  // The word holding bit g (for prefetching).
  const void* word_address(size_t g) const { return &words_[g >> 6]; }

 private:
  std::atomic<uint64_t> words_[kBitmapWords] = {};
};

struct FreeRun {
  FreeRun* next;
  char* end;
};

enum class PageState : uint8_t {
  kFree,       // in the free pool, no size class
  kOwned,      // a thread's TLAB allocates from it; only the owner touches `runs`
  kAvailable,  // on its class's available list, has free runs
  kFull,       // no free runs left (until the next sweep)
  // (A page marked by the last concurrent cycle and not swept yet keeps its kAvailable /
  // kFull state but is on no list: the lazy sweeper's bitmap says it is unswept.)
};

struct PageInfo {
  char* start = nullptr;
  uint32_t index = 0;
  uint8_t size_class = 0;
  PageState state = PageState::kFree;
  bool dirty = false;      // memory may hold old data (poison checks apply; cells are zeroed as allocated)
  bool committed = true;   // counted in the footprint; false after decommit
  uint32_t cell_size = 0;  // 0: no class (written with atomic_ref: see object_containing)
  uint32_t cell_count = 0;
  uint32_t cell_granules = 0;
  // The run the owning TLAB allocates from, in granules from start (begin << 16 | end;
  // 0 when none): set when a run is taken, cleared when the TLAB flushes it - after the
  // start bits are set, with release. Its objects have no start bit until then; the
  // marker's bad-reference check (gc/marker.cc) reads this to tell them from free cells.
  // (In what was padding: the side table's stride, and so its cache behaviour, stays.)
  std::atomic<uint32_t> tlab_run{0};
  FreeRun* runs = nullptr;
  PageInfo* next = nullptr;  // link on the free pool or the class's available list
  size_t live_bytes = 0;     // after the last sweep
  PageBitmap mark_bits;
  PageBitmap alloc_bits;
  // Objects allocated (black) while the last concurrent cycle marked: with generations
  // on, the sweep keeps them but clears their marks - they are young after it, not old
  // (gc/generations.cc, "Newborns"). Empty outside the stretch from a black flush to
  // the page's sweep.
  // Also young objects a young cycle traced and keeps young (aging, gc/generations.cc):
  // the marker sets their bits (atomically: the owner's flushes share the words) and
  // kept_young.
  PageBitmap newborn_bits;  // (cleared only by a pause or the page's sweep)
  // How many were flushed. Those flushed black are marked; those flushed white (before
  // their thread's stack was scanned, gc/thread_stack_scan.cc) only if the cycle reached
  // them: the sweep counts the survivors, newborn_bits & mark_bits.
  size_t newborn_cells = 0;  // (the owner's)
  std::atomic<bool> kept_young{false};  // a marker recorded some in newborn_bits
  bool has_newborn_bits() const { return newborn_cells != 0 || kept_young.load(std::memory_order_relaxed); }

  void assign_class(size_t cls);
  void set_cell_size(uint32_t size);  // (0: the page is free)
  char* cells_end() const { return start + size_t{cell_count} * cell_size; }
  size_t granule_of(const void* p) const {
    return static_cast<size_t>(static_cast<const char*>(p) - start) / kGranule;
  }
  // The allocated object whose cell contains address `a`, or null. Safe while other
  // threads allocate (a stack scanned during concurrent marking, gc/thread_stack_scan.cc):
  // it reads the page's class once (a free page - class 0 - may be given one meanwhile)
  // and never `state`, and returns null or an address whose start bit is set: an object.
  // Objects whose TLAB has not flushed yet have no start bit and are not found (while
  // marking they are black anyway). A start bit that a black flush set is seen with the
  // flush's mark bits (release/acquire), so such an object is found already marked.
  Object* object_containing(uintptr_t a) const;
  // Marks [from, to) (whole cells) as allocated: a TLAB handing its bump range back.
  // With `black` (during concurrent marking, once the thread's stack is scanned) the
  // cells are marked too: they survive the cycle. `newborn` (while a generational cycle
  // marks, black or not): recorded in newborn_bits as well. Also clears tlab_run.
  void flush_allocated(const char* from, const char* to, bool black, bool newborn);
  // The same for a TLAB that goes on allocating from its run (tlab_run stays): a white
  // flush before its thread's stack is scanned, so that the scan finds those objects.
  void record_allocated(const char* from, const char* to, bool black, bool newborn);
  void set_tlab_run(const char* begin, const char* end) {
    tlab_run.store(static_cast<uint32_t>(granule_of(begin) << 16 | granule_of(end)), std::memory_order_release);
  }
  // True if address a (in this page) lies in the run a TLAB is allocating from now.
  bool in_tlab_run(uintptr_t a) const {
    const uint32_t r = tlab_run.load(std::memory_order_acquire);
    const size_t g = granule_of(reinterpret_cast<const void*>(a));
    return g >= (r >> 16) && g < (r & 0xffffu);
  }
  // Makes the whole page one free run (a page newly given a class).
  void reset_to_single_run();
};
static_assert(kGranulesPerPage < (size_t{1} << 16), "PageInfo::tlab_run packs two granule indexes");

}  // namespace shoal::internal
