// Idle full cycles: the marker thread collects a heap that has gone quiet.
//
// Pacing starts a cycle when the mutators allocate, so a heap whose threads stop
// allocating keeps the garbage it held at that moment until they start again (for
// ever, if they never do). With generations this garbage can be most of the heap.
// Every object a young cycle promoted and that died since the last full cycle stays
// marked until a full cycle runs, and the old generation must first grow by
// full_gc_growth before one does. The scavenger (heap/scavenger.cc) returns free pages
// only; pages holding garbage count as in use. Go answers this with a cycle forced
// every two minutes; V8 with idle-time collection driven by its embedder. Shoal's
// marker thread already wakes every kScavengeIdleWake while no cycle runs, to
// scavenge. At such a wake it starts a full concurrent cycle itself when all of these
// hold:
//
//   - the heap is quiet. No cycle has ended for HeapOptions::idle_full_cycle_after,
//     and at every wake in that stretch the threads had allocated, since the wake
//     before, at a rate under the pacing goal per kIdleQuietHorizon (a minute): at
//     that rate pacing would not collect for over a minute. A heap that merely
//     allocates slowly - a large heap whose paced cycles are seconds apart - is not
//     quiet, so idle cycles never add to a working program's collections.
//   - it has not had one in this quiet stretch. A stretch ends only at a wake that
//     sees allocation above that rate, so a heap that trickles below it gets one idle
//     cycle, not one after each of its (rare) paced cycles.
//   - the cycle may pay. The bytes allocated since the newest full cycle's initial
//     pause are at least min_gc_trigger / 4 and an eighth of the footprint. These
//     bytes bound the garbage such a cycle could free, the floating garbage of that
//     full cycle included.
//   - nothing else would collect. No cycle is due (allocation is under the pacing
//     trigger), none is running, and the last cycle's sweep is complete.
//
// Invariants:
//   - At most one idle cycle per quiet stretch (and once it has run, allocation since
//     the newest full cycle is about zero besides): a quiet heap is collected once,
//     not at every wake.
//   - The idle cycle is an ordinary concurrent full cycle. It starts under gc_mu_
//     through begin_concurrent_cycle_locked, as a paced cycle does, so it cannot
//     overlap another cycle or a pause.
//   - It starts on a thread that is not a mutator, so its initial pause stops every
//     attached thread (self = nullptr, as a final pause does). The marker thread then
//     marks it as usual (cycle_ready_); its sweep and the scavenger's next batch
//     follow, and together they give the footprint back. Its peak (pages in use at
//     its final pause, before the sweep) is not remembered as demand: it is the
//     garbage the cycle frees, and would keep the scavenger from returning the pages.
//   - A stop-the-world heap has no marker thread, so nothing collects it while it is
//     idle: call collect() there (idle() starts concurrent cycles only).
#include <algorithm>

#include "gc/clock.h"
#include "gc/collector.h"
#include "heap/heap_impl.h"

namespace shoal::internal {

std::chrono::milliseconds Collector::idle_wake_interval() const {
  const auto after = heap_.options.idle_full_cycle_after;
  if (after.count() <= 0) return kScavengeIdleWake;
  return std::clamp(after, std::chrono::milliseconds{10}, kScavengeIdleWake);
}

bool Collector::idle_cycle_may_pay() const {
  const uint64_t total = heap_.allocated_total();
  const uint64_t since_full = total - std::min(total, allocated_at_full_start_.load(std::memory_order_relaxed));
  return since_full >= heap_.options.min_gc_trigger / 4 && since_full >= heap_.footprint() / 8;
}

void Collector::maybe_start_idle_cycle() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  const auto after = heap_.options.idle_full_cycle_after;
  if (after.count() <= 0) return;
  const uint64_t now = now_ns();
  const uint64_t total = heap_.allocated_total();
  const uint64_t allocated = total - std::min(total, idle_allocated_at_wake_);
  const uint64_t elapsed = now - std::min(now, idle_last_wake_ns_);
  const bool first_wake = idle_last_wake_ns_ == 0;
  idle_allocated_at_wake_ = total;
  idle_last_wake_ns_ = now;
  // Quiet: allocated / elapsed < goal / horizon.
  const double horizon_ns = static_cast<double>(std::chrono::nanoseconds(kIdleQuietHorizon).count());
  const bool quiet = !first_wake && static_cast<double>(allocated) * horizon_ns <
                                        static_cast<double>(heap_.trigger_bytes()) * static_cast<double>(elapsed);
  if (!quiet) {  // a new stretch starts
    idle_quiet_since_ns_ = now;
    idle_cycle_ran_in_stretch_ = false;
    return;
  }
  if (idle_cycle_ran_in_stretch_) return;
  const uint64_t since = std::max(idle_quiet_since_ns_, last_cycle_end_ns_.load(std::memory_order_relaxed));
  // (In milliseconds: a delay of centuries overflows a count of nanoseconds.)
  if ((now - std::min(now, since)) / 1000000 < static_cast<uint64_t>(after.count())) return;
  if (heap_.over_trigger() || stopping_.load(std::memory_order_relaxed) || !idle_cycle_may_pay()) return;
  // The last sweep first (its pages: the initial pause needs the mark bits clear).
  while (sweeper_.sweep_next()) {
    if (stopping_.load(std::memory_order_relaxed)) return;
  }
  report_lazy_sweep();
  idle_cycle_ran_in_stretch_ = begin_full_cycle_from_marker_thread(kIdleCycleCause);
}

}  // namespace shoal::internal
