// Sweeping: turning mark bitmaps back into allocation state, in the pause.
//
// For each carved page (heap/page.h):
//   - new object-start bitmap = mark bitmap (live objects stay allocated, dead ones are
//     freed by losing their bit); the mark bitmap is cleared for the next cycle - unless
//     generations are on (Collector::generational), in which case the survivors stay
//     marked: old;
//   - every maximal range of free cells becomes a FreeRun, linked in address order;
//   - a page with no live object goes to the free pool (any class may reuse it); a page
//     with free runs goes to its class's available list; a full page to no list.
// With poisoning on, every free run is filled with kPoisonByte (except the 16-byte run
// header); the allocator checks the pattern before it reuses the memory, so a write
// through a dangling pointer is caught. Large objects: unmarked ones are freed.
//
// Cost: O(bitmap words + live objects) per page, independent of the number of dead
// objects; no object header is read. Pages are independent, so heaps of at least
// 2 * kPagesPerSweepTask pages are swept in parallel by TBB workers (the mutators are
// parked, their cores idle); each worker gives its pages back under the lists' locks.
// TSan builds sweep serially: TBB's internal synchronisation is not instrumented.
#pragma once

#include <cstddef>

namespace shoal::internal {

class HeapImpl;
struct PageInfo;

inline constexpr size_t kPagesPerSweepTask = 32;

struct SweepResult {
  size_t live_bytes = 0;
  // Of live_bytes: objects allocated while the cycle marked, which a sweep keeping the
  // marks leaves unmarked (young), not old.
  size_t newborn_bytes = 0;
  size_t freed_bytes = 0;
  size_t pages_freed = 0;
};

// Pause only: sweeps every page and the large-object space, rebuilds the page lists.
SweepResult sweep_in_pause(HeapImpl& heap);

// Sweeps one page that no thread owns and no list holds, and gives it to the right list
// (or none, if full). Callable outside a pause for pages in state kUnswept.
SweepResult sweep_one_page(HeapImpl& heap, PageInfo& page);

}  // namespace shoal::internal
