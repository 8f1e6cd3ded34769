// The pause-time sweeper. See sweeper.h.
#include "gc/sweeper.h"

#include <cstring>

#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

namespace {

struct PageSweep {
  size_t live_cells = 0;
  size_t freed_cells = 0;
};

PageSweep sweep_page(PageInfo& page, bool poison) {
  PageSweep r;
  const size_t allocated_before = page.alloc_bits.count();
  if (page.mark_bits.find_next(0) == kGranulesPerPage) {
    // Nothing survived: the page goes back to the pool whole; no runs to build.
    r.freed_cells = allocated_before;
    page.alloc_bits.clear_all();
    page.runs = nullptr;
    page.dirty = true;
    page.live_bytes = 0;
    return r;
  }
  FreeRun* head = nullptr;
  FreeRun** tail = &head;
  auto add_run = [&](char* from, char* to) {
    if (poison) std::memset(from + sizeof(FreeRun), kPoisonByte, static_cast<size_t>(to - from) - sizeof(FreeRun));
    auto* run = reinterpret_cast<FreeRun*>(from);
    run->next = nullptr;
    run->end = to;
    *tail = run;
    tail = &run->next;
  };

  char* free_from = page.start;
  char* const cells_end = page.cells_end();
  for (size_t g = page.mark_bits.find_next(0); g < kGranulesPerPage;
       g = page.mark_bits.find_next(g + page.cell_granules)) {
    char* object = page.start + g * kGranule;
    SHOAL_DCHECK(object < cells_end && g % page.cell_granules == 0);
    if (object > free_from) add_run(free_from, object);
    free_from = object + page.cell_size;
    ++r.live_cells;
  }
  if (cells_end > free_from) add_run(free_from, cells_end);

  SHOAL_DCHECK(allocated_before >= r.live_cells);
  r.freed_cells = allocated_before - r.live_cells;
  page.alloc_bits.copy_from(page.mark_bits);
  page.mark_bits.clear_all();
  page.runs = head;
  page.dirty = true;
  page.live_bytes = r.live_cells * page.cell_size;
  return r;
}

}  // namespace

SweepResult sweep_in_pause(HeapImpl& heap) {
  SweepResult result;
  const bool poison = heap.options.poison_freed_memory;
  PageSpace& pages = heap.pages;
  pages.reset_lists_in_pause();
  const size_t n = pages.carved_pages();
  for (size_t i = 0; i < n; ++i) {
    PageInfo& page = pages.page_at(i);
    if (page.state == PageState::kFree) {
      pages.give_free(&page);
      continue;
    }
    SHOAL_DCHECK(page.state != PageState::kOwned);
    const PageSweep s = sweep_page(page, poison);
    result.freed_bytes += s.freed_cells * page.cell_size;
    result.live_bytes += s.live_cells * page.cell_size;
    if (s.live_cells == 0) {
      if (poison) std::memset(page.start + sizeof(FreeRun), kPoisonByte, kPageSize - sizeof(FreeRun));
      pages.give_free(&page);
      ++result.pages_freed;
    } else if (page.runs) {
      pages.give_available(&page);
    } else {
      page.state = PageState::kFull;
      page.next = nullptr;
    }
  }
  const auto large = heap.large.sweep_in_pause(poison);
  result.freed_bytes += large.freed_bytes;
  result.live_bytes += large.live_bytes;
  heap.release(large.freed_bytes);
  return result;
}

}  // namespace shoal::internal
