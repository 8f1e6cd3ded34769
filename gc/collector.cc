// The stop-the-world mark-sweep cycle. See collector.h for the phases and invariants.
#include "gc/collector.h"

#include <chrono>

#include "gc/marker.h"
#include "gc/stack_scanner.h"
#include "gc/sweeper.h"
#include "gc/verifier.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"

namespace shoal::internal {

namespace {
uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
}  // namespace

// Runs work() with `self` safe (its context captured) and the collector lock held;
// work() stops the world itself if it needs to. `self` is running again afterwards.
template <class F>
void Collector::with_collector_lock(MutatorThread* self, F&& work) {
  heap_.threads.run_native(self, [&] {
    MutexLock lock(gc_mu_);
    work();
  });
}

void Collector::collect(MutatorThread* self, const char* cause, bool only_if_needed) {
  CycleRecord record;
  std::string corruption;
  bool ran = false;
  with_collector_lock(self, [&] {
    if (only_if_needed && !heap_.over_trigger()) return;
    const uint64_t t0 = now_ns();
    heap_.threads.stop_the_world(self);
    const uint64_t t1 = now_ns();
    record.cause = cause;
    record.time_to_safepoint_ns = t1 - t0;
    run_cycle_in_pause(self, record);
    if (heap_.options.verify_after_gc) {
      VerifyReport report = verify_heap_in_pause(heap_);
      if (!report.ok) corruption = report.summary();
    }
    heap_.threads.resume_the_world();
    record.pause_ns = now_ns() - t0;
    record.index = cycles_.fetch_add(1, std::memory_order_acq_rel) + 1;
    ran = true;
  });
  if (ran) record_cycle(record);
  if (!corruption.empty()) throw HeapCorruption(corruption);
}

void Collector::run_cycle_in_pause(MutatorThread* self, CycleRecord& record) {
  (void)self;
  const auto& threads = heap_.threads.threads_in_pause();
  record.threads = threads.size();
  for (MutatorThread* t : threads) heap_.retire_all_tlabs(t);
  heap_.large.build_index_in_pause();

  const uint64_t mark_start = now_ns();
  Marker marker(heap_);
  for (MutatorThread* t : threads) {
    scan_words(t->context.sp, t->stack_base,
               [](void* m, uintptr_t w) { static_cast<Marker*>(m)->mark_conservative(w); }, &marker);
    for (uintptr_t r : t->context.registers) marker.mark_conservative(r);
  }
  heap_.roots.for_each_root([&](Value v) { marker.mark_value(v); });
  marker.drain();
  const uint64_t sweep_start = now_ns();
  record.mark_ns = sweep_start - mark_start;
  record.objects_marked = marker.objects_marked();

  const SweepResult swept = sweep_in_pause(heap_);
  record.sweep_ns = now_ns() - sweep_start;
  record.live_bytes = swept.live_bytes;
  record.freed_bytes = swept.freed_bytes;
  heap_.reset_pacing(swept.live_bytes);
}

VerifyReport Collector::verify(MutatorThread* self) {
  VerifyReport report;
  with_collector_lock(self, [&] {
    heap_.threads.stop_the_world(self);
    for (MutatorThread* t : heap_.threads.threads_in_pause()) heap_.retire_all_tlabs(t);
    heap_.large.build_index_in_pause();
    report = verify_heap_in_pause(heap_);
    heap_.threads.resume_the_world();
  });
  return report;
}

void Collector::handshake_all(MutatorThread* self, const HandshakeOp& op) {
  with_collector_lock(self, [&] { heap_.threads.handshake_all(self, op); });
}

void Collector::record_cycle(const CycleRecord& record) {
  MutexLock lock(stats_mu_);
  totals_.collections++;
  totals_.total_pause_ns += record.pause_ns;
  if (record.pause_ns > totals_.max_pause_ns) totals_.max_pause_ns = record.pause_ns;
  totals_.bytes_freed += record.freed_bytes;
  totals_.live_bytes = record.live_bytes;
  recent_.push_back(record);
  if (recent_.size() > 256) recent_.pop_front();
}

GcStats Collector::stats() const {
  MutexLock lock(stats_mu_);
  GcStats s = totals_;
  s.recent.assign(recent_.begin(), recent_.end());
  return s;
}

}  // namespace shoal::internal
