// The scavenger: gives free pages back to the system when the heap holds more than its
// recent cycles needed - after a burst, when the live set shrinks, or under a lowered
// soft limit - so that the footprint (and RSS) follows the heap down, not just up.
//
// Algorithm. Demand is what the pages in use reached at each cycle's peak (its final
// pause, or a stop-the-world pause before the sweep: note_peak_in_use), remembered for
// the last kScavengeCycles cycles and for at most kScavengeWindowNs. The footprint the
// heap keeps is
//
//     retain   = max(R, expected)
//     R        = (1 + kScavengeHeadroom) x the largest recent peak, or the soft limit M
//                if that is lower (Go's scavenger goal), or 0 when no peak is recent
//                (an idle heap)
//     expected = (S + G) x k: the pacer's own forecast of this cycle's peak - the last
//                cycle's survivors S and the goal G in pages, k the measured overhead
//                (the soft limit's fit, heap/heap.cc "Soft limit")
//
// and the committed free pages above it are decommitted (madvise MADV_DONTNEED), the
// least recently freed first: the pool hands out the most recently freed pages first,
// so those stay warm, and a decommitted page only once no committed one is left. A heap
// in a steady state keeps its peak plus a tenth, so it does not decommit the pages it
// is about to fault back in (tests/heap/scavenger_test.cc, ASteadyHeapDoesNotChurn);
// one whose demand fell keeps the old peak for kScavengeCycles cycles or
// kScavengeWindowNs (a program's phases), then shrinks to what the pacer forecasts.
// Under a soft limit the footprint comes down to M, or to the forecast where the pacer
// cannot fit under M (the goal's cut stops at a floor; a concurrent cycle keeps what
// was allocated while it marked).
//
// Who runs it: the marker thread, after each concurrent cycle's background sweep and
// when it has been idle for Collector::kScavengeIdleWake, kScavengeBatchPages at a
// time under the collector's lock, and never while a cycle is due; after a
// stop-the-world cycle, the collecting thread (at most kScavengePagesAfterPause: a
// stop-the-world heap has no marker thread, so it does not shrink while idle).
// Heap::release_free_memory decommits every free page at once. A decommitted page is
// zero when faulted back in: it is handed out without the allocator's memset.
//
// Invariants. A page is decommitted only while it is free and off every list (so no
// thread can be allocating in it): the scavenger unlinks its batch under the pool's
// lock and relinks it after the madvise, under gc_mu_ throughout so that no pause
// rebuilds the pool meanwhile (release_free_memory instead keeps the pool's lock over
// the madvise, and runs where no pause can start: on a running mutator, or under
// gc_mu_). The footprint counts committed pages only: release() the moment a page is
// decommitted, try_reserve() again before one is recommitted (acquire_page), so the
// heap limit still bounds committed memory. The verifier checks that only free pages
// are decommitted, that none of them is marked dirty, and the pool's count.
#include <chrono>

#include "heap/heap_impl.h"

namespace shoal::internal {

namespace {
constexpr double kScavengeHeadroom = 0.1;
constexpr uint64_t kScavengeWindowNs = uint64_t{5} * 1000 * 1000 * 1000;

uint64_t steady_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
}  // namespace

void HeapImpl::remember_peak(size_t in_use) { peaks_[next_peak_++ % kScavengeCycles] = {in_use, steady_ns()}; }

size_t HeapImpl::scavenge_retain_bytes() {
  const size_t m = soft_limit();
  const size_t goal = trigger_bytes();
  MutexLock lock(pacing_mu_);
  const uint64_t now = steady_ns();
  size_t recent_peak = 0;
  for (const PeakSample& p : peaks_)
    if (p.ns != 0 && now - p.ns <= kScavengeWindowNs) recent_peak = std::max(recent_peak, p.bytes);
  auto retain = static_cast<size_t>(static_cast<double>(recent_peak) * (1.0 + kScavengeHeadroom));
  if (m != 0) retain = std::min(retain, m);
  // The pacer's own expectation of this cycle's peak: the survivors and the goal, in
  // pages (the soft limit's fit, heap/heap.cc).
  const auto expected = static_cast<size_t>(static_cast<double>(pacing_.survivors + goal) * overhead_);
  return std::max(retain, expected);
}

size_t HeapImpl::scavenge_batch(size_t max_pages) {
  const size_t retain = scavenge_retain_bytes();
  const size_t fp = footprint();
  if (fp <= retain + kPageSize) return 0;
  const size_t committed_free = pages.committed_free_pages();
  const size_t excess_pages = std::min((fp - retain) / kPageSize, committed_free);
  const size_t n = std::min(excess_pages, max_pages);
  return note_decommitted(pages.decommit_free_pages_beyond(committed_free - excess_pages, n));
}

size_t HeapImpl::release_all_free_pages() { return note_decommitted(pages.decommit_free_pages()); }

size_t HeapImpl::note_decommitted(size_t bytes) {
  release(bytes);
  bytes_released_.fetch_add(bytes, std::memory_order_relaxed);
  return bytes;
}

}  // namespace shoal::internal
