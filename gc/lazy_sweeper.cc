// Lazy and background sweeping. See lazy_sweeper.h for the protocol and invariants.
#include "gc/lazy_sweeper.h"

#include <memory>
#include <thread>

#include "heap/heap_impl.h"

namespace shoal::internal {

LazySweeper::LazySweeper(HeapImpl& heap)
    : heap_(heap), unswept_(std::make_unique<std::atomic<uint64_t>[]>(heap.pages.in_use_words())) {}

void LazySweeper::begin_in_pause() {
  PageSpace& pages = heap_.pages;
  pages.reset_class_lists_in_pause();
  const size_t n = pages.carved_pages();
  for (size_t w = 0; w < (n + 63) / 64; ++w)
    unswept_[w].store(pages.in_use_word(w), std::memory_order_relaxed);
  live_.store(0, std::memory_order_relaxed);
  newborn_.store(0, std::memory_order_relaxed);
  freed_.store(0, std::memory_order_relaxed);
  pages_freed_.store(0, std::memory_order_relaxed);
  cursor_.store(0, std::memory_order_relaxed);
  swept_.store(0, std::memory_order_relaxed);
  unreported_.store(true, std::memory_order_relaxed);
  end_.store(n, std::memory_order_release);
}

bool LazySweeper::sweep_next() {
  NoPreemptScope no_preempt;  // collector work on a mutator: claimed pages, grey objects
  const size_t end = end_.load(std::memory_order_acquire);
  if (cursor_.load(std::memory_order_relaxed) >= end) return false;
  const size_t i = cursor_.fetch_add(1, std::memory_order_acq_rel);
  if (i >= end) return false;
  const uint64_t bit = uint64_t{1} << (i & 63);
  if (unswept_[i >> 6].fetch_and(~bit, std::memory_order_acq_rel) & bit) {
    PageInfo& page = heap_.pages.page_at(i);
    const SweepResult r = sweep_one_page(heap_, page);
    live_.fetch_add(r.live_bytes, std::memory_order_relaxed);
    newborn_.fetch_add(r.newborn_bytes, std::memory_order_relaxed);
    freed_.fetch_add(r.freed_bytes, std::memory_order_relaxed);
    pages_freed_.fetch_add(r.pages_freed, std::memory_order_relaxed);
  }
  swept_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

size_t LazySweeper::sweep_some(size_t budget) {
  size_t n = 0;
  while (n < budget && sweep_next()) ++n;
  return n;
}

PageInfo* LazySweeper::sweep_for_class(size_t cls, size_t budget) {
  for (size_t n = 0; n < budget && sweep_next(); ++n)
    if (PageInfo* p = heap_.pages.take_available(cls)) return p;
  return nullptr;
}

void LazySweeper::finish() {
  while (sweep_next()) {
  }
  while (pending()) std::this_thread::yield();  // a claimer is finishing its page
}

bool LazySweeper::take_result(SweepResult& out) {
  if (pending() || !unreported_.exchange(false, std::memory_order_acq_rel)) return false;
  out.live_bytes = live_.load(std::memory_order_relaxed);
  out.newborn_bytes = newborn_.load(std::memory_order_relaxed);
  out.freed_bytes = freed_.load(std::memory_order_relaxed);
  out.pages_freed = pages_freed_.load(std::memory_order_relaxed);
  return true;
}

}  // namespace shoal::internal
