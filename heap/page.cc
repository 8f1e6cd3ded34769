// Page bitmaps and per-page helpers. See page.h for the layout and its invariants.
#include "heap/page.h"

#include <bit>

namespace shoal::internal {

void PageBitmap::set_strided(size_t g0, size_t g_end, size_t step, std::memory_order order) {
  // (fetch_or: markers may share a word of mark bits.)
  for_each_strided_word(g0, g_end, step, [&](size_t w, uint64_t bits) {
    words_[w].fetch_or(bits, order);
    return false;
  });
}

size_t PageBitmap::find_next(size_t g) const {
  if (g >= kGranulesPerPage) return kGranulesPerPage;
  size_t w = g >> 6;
  uint64_t bits = words_[w].load(std::memory_order_relaxed) & (~uint64_t{0} << (g & 63));
  while (bits == 0) {
    if (++w == kBitmapWords) return kGranulesPerPage;
    bits = words_[w].load(std::memory_order_relaxed);
  }
  return (w << 6) + static_cast<size_t>(std::countr_zero(bits));
}

size_t PageBitmap::find_next_clear_strided(size_t g, size_t step) const {
  size_t found = kGranulesPerPage;
  for_each_strided_word(g, kGranulesPerPage, step, [&](size_t w, uint64_t positions) {
    const uint64_t clear = ~words_[w].load(std::memory_order_relaxed) & positions;
    if (clear == 0) return false;
    found = (w << 6) + static_cast<size_t>(std::countr_zero(clear));
    return true;
  });
  return found;
}

// The sweeper counts every page's bits: with the popcnt instruction where the CPU has
// it (the build targets baseline x86-64, where std::popcount is a libgcc call).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("popcnt", "default")))
#endif
size_t PageBitmap::count() const {
  size_t n = 0;
  for (const auto& w : words_) n += static_cast<size_t>(std::popcount(w.load(std::memory_order_relaxed)));
  return n;
}

void PageBitmap::clear_all() {
  for (auto& w : words_) w.store(0, std::memory_order_relaxed);
}

void PageBitmap::copy_from(const PageBitmap& other) {
  for (size_t i = 0; i < kBitmapWords; ++i)
    words_[i].store(other.words_[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void PageBitmap::set_strided_single_writer(size_t g0, size_t g_end, size_t step, std::memory_order order) {
  for_each_strided_word(g0, g_end, step, [&](size_t w, uint64_t bits) {
    words_[w].store(words_[w].load(std::memory_order_relaxed) | bits, order);
    return false;
  });
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("popcnt", "default")))
#endif
size_t PageBitmap::count_common(const PageBitmap& other) const {
  size_t n = 0;
  for (size_t i = 0; i < kBitmapWords; ++i)
    n += static_cast<size_t>(std::popcount(words_[i].load(std::memory_order_relaxed) &
                                           other.words_[i].load(std::memory_order_relaxed)));
  return n;
}

void PageBitmap::clear_those_of(const PageBitmap& other) {
  for (size_t i = 0; i < kBitmapWords; ++i) {
    const uint64_t o = other.words_[i].load(std::memory_order_relaxed);
    if (o != 0) words_[i].fetch_and(~o, std::memory_order_relaxed);  // (markers: none now, but atomic anyway)
  }
}

void PageInfo::assign_class(size_t cls) {
  size_class = static_cast<uint8_t>(cls);
  const auto size = static_cast<uint32_t>(kClassSize[cls]);
  cell_count = static_cast<uint32_t>(kPageSize / size);
  cell_granules = size / static_cast<uint32_t>(kGranule);
  set_cell_size(size);
}

void PageInfo::set_cell_size(uint32_t size) {
  std::atomic_ref<uint32_t>(cell_size).store(size, std::memory_order_relaxed);
}

Object* PageInfo::object_containing(uintptr_t a) const {
  // One read of the class: the geometry below is derived from it, never mixed with a
  // newer class's. A stale one can only test a granule a start bit may or may not sit
  // on; a set bit is an object start whatever the class. (A free page has class 0.)
  const uint32_t size = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(cell_size)).load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  const size_t cell = (a - reinterpret_cast<uintptr_t>(start)) / size;
  const size_t offset = cell * size;
  if (offset + size > kPageSize) return nullptr;  // past the last whole cell
  if (!alloc_bits.test(offset / kGranule, std::memory_order_acquire)) return nullptr;
  return reinterpret_cast<Object*>(start + offset);
}

void PageInfo::flush_allocated(const char* from, const char* to, bool black, bool newborn) {
  record_allocated(from, to, black, newborn);
  tlab_run.store(0, std::memory_order_release);  // the bits first (see tlab_run)
}

void PageInfo::record_allocated(const char* from, const char* to, bool black, bool newborn) {
  if (from < to) {
    // The mark bits first, then the start bits with release, so a concurrent
    // conservative lookup that sees a start bit sees a black object marked, and has a
    // happens-before edge to the contents of any object it traces.
    if (newborn) {
      newborn_bits.set_strided(granule_of(from), granule_of(to), cell_granules);  // (markers: aging)
      newborn_cells += static_cast<size_t>(to - from) / cell_size;
    }
    if (black) mark_bits.set_strided(granule_of(from), granule_of(to), cell_granules);
    // (Alloc bits have one writer: the page's owner - this TLAB, its sweep or a pause.)
    alloc_bits.set_strided_single_writer(granule_of(from), granule_of(to), cell_granules,
                                         std::memory_order_release);
  }
}

void PageInfo::reset_to_single_run() {
  auto* run = reinterpret_cast<FreeRun*>(start);
  run->next = nullptr;
  run->end = cells_end();
  runs = run;
}

}  // namespace shoal::internal
