// Regions that asynchronous preemption must not split (internal).
//
// A collector that waits too long for a running thread to poll interrupts it with a
// signal (gc/async_preemption.h); the handler parks the thread right where it is,
// unless the thread is inside a region this counter marks. Shoal's own code raises it
// around every sequence that must not straddle a pause: the allocation path (the TLAB
// bump and the header store), the write and weak barriers (the marking-flag test and
// the store it guards), every internal lock held, and runtime operations that keep raw
// references outside the scanned roots. The counter is thread-local and only its own
// thread's signal handler reads it, so no atomic instruction is needed: compiler
// signal fences keep the region's loads and stores between the increment and the
// decrement. Cost on a fast path: an increment, a decrement and a compare of a TLS word.
//
// A signal that finds the thread inside a region sets kPreemptPending in the counter
// and returns; the decrement that leaves the outermost region then sees exactly
// kPreemptPending and parks the thread there (preempt_at_region_exit) - so a thread
// that spends nearly all its time in barriers is still stopped within one region, not
// after however many signals it takes to land between two. (Where the increment or
// decrement is a load and a store, a signal between the two can lose the bit; the next
// signal sets it again.)
#pragma once

#include <atomic>
#include <cstdint>

namespace shoal::internal {

// > 0 while the thread is in a region asynchronous preemption must not interrupt.
extern constinit thread_local uint32_t tls_no_preempt;
inline constexpr uint32_t kPreemptPending = uint32_t{1} << 31;

// Clears kPreemptPending and serves the stop or collector handshake that asked for it.
[[gnu::cold]] void preempt_at_region_exit();

[[gnu::always_inline]] inline void leave_no_preempt_region() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (--tls_no_preempt == kPreemptPending) [[unlikely]]
    preempt_at_region_exit();
}

class NoPreemptScope {
 public:
  [[gnu::always_inline]] NoPreemptScope() {
    ++tls_no_preempt;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  [[gnu::always_inline]] ~NoPreemptScope() { leave_no_preempt_region(); }
  NoPreemptScope(const NoPreemptScope&) = delete;
  NoPreemptScope& operator=(const NoPreemptScope&) = delete;
};

}  // namespace shoal::internal
