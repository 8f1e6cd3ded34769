// The pause-time sweeper. See sweeper.h.
#include "gc/sweeper.h"

#include <algorithm>
#include <cstring>

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>

#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

namespace {

struct PageSweep {
  size_t live_cells = 0;
  size_t freed_cells = 0;
  size_t newborn_cells = 0;  // of the live ones: allocated while the cycle marked
};

PageSweep sweep_page(PageInfo& page, bool poison, bool keep_marks) {
  PageSweep r;
  const size_t allocated_before = page.alloc_bits.count();
  if (page.mark_bits.empty()) {
    // Nothing survived: the page goes back to the pool whole; no runs to build.
    r.freed_cells = allocated_before;
    page.alloc_bits.clear_all();
    if (page.has_newborn_bits()) page.newborn_bits.clear_all();
    page.newborn_cells = 0;
    page.kept_young.store(false, std::memory_order_relaxed);
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

  // Walk runs of live cells, not live cells: a page allocated black during concurrent
  // marking is live from end to end, and for the 16-byte class that is 16K cells. A run
  // ends at the next clear cell-start bit, found a word at a time
  // (find_next_clear_strided).
  char* free_from = page.start;
  char* const cells_end = page.cells_end();
  const size_t step = page.cell_granules;
  for (size_t g = page.mark_bits.find_next(0); g < kGranulesPerPage;) {
    char* object = page.start + g * kGranule;
    SHOAL_DCHECK(object < cells_end && g % step == 0);
    if (object > free_from) add_run(free_from, object);
    const size_t run_end = page.mark_bits.find_next_clear_strided(g, step);
    r.live_cells += (run_end - g) / step;
    free_from = std::min(page.start + run_end * kGranule, cells_end);
    g = page.mark_bits.find_next(run_end);
  }
  if (cells_end > free_from) add_run(free_from, cells_end);

  SHOAL_DCHECK(allocated_before >= r.live_cells);
  r.freed_cells = allocated_before - r.live_cells;
  page.alloc_bits.copy_from(page.mark_bits);
  if (!keep_marks) {
    page.mark_bits.clear_all();
    if (page.has_newborn_bits()) page.newborn_bits.clear_all();
  } else if (page.has_newborn_bits()) {
    // Kept: the traced survivors are old. Objects allocated while the cycle marked were
    // black only for that cycle: unmarked now, they are young (gc/generations.cc,
    // "Newborns"), and the next cycle - young or full - decides about them. (Those
    // allocated white, before their thread's stack was scanned, survive only if marked.)
    // The same for those the cycle kept young ("Aging").
    r.newborn_cells = page.mark_bits.count_common(page.newborn_bits);
    page.mark_bits.clear_those_of(page.newborn_bits);
    page.newborn_bits.clear_all();
  }
  page.newborn_cells = 0;
  page.kept_young.store(false, std::memory_order_relaxed);
  page.runs = head;
  page.dirty = true;
  page.live_bytes = r.live_cells * page.cell_size;
  return r;
}

SweepResult combine(SweepResult a, const SweepResult& b);

}  // namespace

SweepResult sweep_one_page(HeapImpl& heap, PageInfo& page) {
  SweepResult result;
  const bool poison = heap.options.poison_freed_memory;
  SHOAL_DCHECK(page.state != PageState::kOwned && page.state != PageState::kFree);
  const PageSweep s = sweep_page(page, poison, heap.collector.generational());
  result.freed_bytes = s.freed_cells * page.cell_size;
  result.live_bytes = s.live_cells * page.cell_size;
  result.newborn_bytes = s.newborn_cells * page.cell_size;
  if (s.live_cells == 0) {
    if (poison) std::memset(page.start + sizeof(FreeRun), kPoisonByte, kPageSize - sizeof(FreeRun));
    heap.pages.give_free(&page);
    result.pages_freed = 1;
  } else if (page.runs) {
    heap.pages.give_available(&page);
  } else {
    page.state = PageState::kFull;
    page.next = nullptr;
  }
  return result;
}

namespace {

// Sweeps pages [begin, end) and gives each back to the right list (the lists' own locks
// make concurrent give-backs from several sweeping workers safe).
SweepResult sweep_range(HeapImpl& heap, size_t begin, size_t end) {
  SweepResult result;
  for (size_t i = begin; i < end; ++i) {
    PageInfo& page = heap.pages.page_at(i);
    if (page.state == PageState::kFree) {
      heap.pages.give_free(&page);
      continue;
    }
    result = combine(result, sweep_one_page(heap, page));
  }
  return result;
}

SweepResult combine(SweepResult a, const SweepResult& b) {
  a.live_bytes += b.live_bytes;
  a.newborn_bytes += b.newborn_bytes;
  a.freed_bytes += b.freed_bytes;
  a.pages_freed += b.pages_freed;
  return a;
}

#if defined(__SANITIZE_THREAD__)
constexpr bool kParallelSweep = false;  // TBB's own synchronisation is invisible to TSan
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kParallelSweep = false;
#else
constexpr bool kParallelSweep = true;
#endif
#else
constexpr bool kParallelSweep = true;
#endif

}  // namespace

SweepResult sweep_in_pause(HeapImpl& heap) {
  heap.pages.reset_lists_in_pause();
  const size_t n = heap.pages.carved_pages();
  SweepResult result;
  if (kParallelSweep && n >= 2 * kPagesPerSweepTask) {
    // Pages are independent: TBB's workers (on the cores the parked mutators left idle)
    // sweep chunks of them; the results are summed. Isolated: a pause taken inside a
    // user's TBB task must not, while it waits for the sweep, pick up another of the
    // user's tasks (which could touch the heap in the middle of the pause).
    tbb::this_task_arena::isolate([&] {
      result = tbb::parallel_reduce(
          tbb::blocked_range<size_t>(0, n, kPagesPerSweepTask), SweepResult{},
          [&](const tbb::blocked_range<size_t>& r, SweepResult acc) {
            return combine(acc, sweep_range(heap, r.begin(), r.end()));
          },
          combine);
    });
  } else {
    result = sweep_range(heap, 0, n);
  }
  const auto large = heap.large.sweep_in_pause(heap.options.poison_freed_memory, heap.collector.generational());
  result.freed_bytes += large.freed_bytes;
  result.live_bytes += large.live_bytes;
  heap.release(large.freed_bytes);
  return result;
}

}  // namespace shoal::internal
