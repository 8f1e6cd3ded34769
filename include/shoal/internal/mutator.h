// The part of a mutator thread's state that the inline allocation fast path needs
// (internal). The full record is gc/thread_registry.h's MutatorThread, which derives
// from this.
//
// Each attached thread owns one thread-local allocation buffer (TLAB) per size class:
// a bump range [cursor, end) inside a free run of a page it owns. Allocation is
// `p = cursor; cursor += cell_size` when that stays below `limit`; everything else is the
// slow path (heap/allocator.cc). Only the owning thread touches its TLABs, with two
// exceptions: the collector retires them in a pause (owner parked), and any thread that
// requests a safepoint or handshake may zero `limit` (see Tlab).
#pragma once

#include <atomic>
#include <cstdint>

#include "shoal/internal/size_classes.h"

namespace shoal::internal {

class HeapImpl;
struct PageInfo;

// The bump range is [cursor, end). `limit` equals `counted_end` (the end of the part of
// the run counted toward pacing, heap/allocator.cc), except that a thread asking this
// one to reach a safepoint (stop-the-world, handshake) lowers it to 0, so the very next
// allocation takes the slow path, which polls and then restores limit = counted_end
// (counting the next chunk if the cursor reached it). `limit` is
// the only field another thread writes, hence atomic (relaxed: a plain load on x86). If
// the owner's refill races with the lowering and wins, the request is still seen at the
// next slow path - later, never lost.
struct Tlab {
  uintptr_t cursor = 0;            // next free byte
  std::atomic<uintptr_t> limit{0}; // counted_end, or 0 to force the slow path
  uintptr_t end = 0;               // end of the current run
  // The run is counted toward pacing a chunk at a time (heap/allocator.cc, "Pacing
  // counts"): [run_start, counted_end) has been; the fast path stops at it.
  uintptr_t counted_end = 0;
  uintptr_t run_start = 0;         // where the current run began (for the object-start bitmap)
  PageInfo* page = nullptr;        // the page the run lies in; owned by this thread

  void reset() {
    cursor = end = run_start = counted_end = 0;
    limit.store(0, std::memory_order_relaxed);
    page = nullptr;
  }
};

struct MutatorState {
  Tlab tlabs[kNumSizeClasses];
  HeapImpl* heap = nullptr;
  // The attached heap's small-object address range (its page reservation): a range test
  // tells an object of this heap from another heap's without a call (Lock's fast path;
  // large objects lie outside it and take the slow path, check_object_heap).
  uintptr_t page_base = 0;
  size_t page_bytes = 0;
  // Owner bits (object.h, bits 42..63) of the isolate this thread has entered, OR-ed into
  // every header it allocates: objects record their owner without a store of their own.
  // Equal to tls_owner_key's owner bits (mutation_checks.h); 0 outside isolates.
  uint64_t owner_bits = 0;
  // GC bits OR-ed into every header it allocates: with generational collection on,
  // header::kYoung while no concurrent marking runs and the cycle's newborn bit while
  // one does (black for that cycle, young after its sweep: gc/generations.cc); 0 with
  // generations off. Changed only in pauses (and at attach).
  uint64_t alloc_tags = 0;
  // While a generational cycle marks concurrently: the cycle's newborn and
  // remembered-next bits. A reference store of a young value into a holder with neither
  // records the holder for the next cycle (the barrier's marking rule,
  // barriers/write_barrier.h). 0 otherwise. Changed only in pauses (and at attach).
  uint64_t marking_remember_skip = 0;
  // The card set the barrier records a large holder's young references into
  // (gc/generations.cc, "Cards"). Changed only in pauses (and at attach).
  uint32_t card_record_set = 0;
  // Non-zero when the thread must enter the safepoint slow path: a stop-the-world
  // request or a pending handshake. Polled with a relaxed load.
  std::atomic<uint32_t> poll_word{0};
  // > 0 inside run_native (native_depth) and while the thread runs code that must not
  // touch the heap: run_native's function or a handshake operation (no_heap_depth).
  // Heap entry points throw ThreadStateError meanwhile. Only the thread itself writes
  // them.
  int native_depth = 0;
  int no_heap_depth = 0;
};



// The current thread's mutator record, or null when it is not attached.
// constinit: no dynamic initialisation, so access needs no TLS wrapper call.
extern constinit thread_local MutatorState* tls_mutator;
inline MutatorState* current_mutator() { return tls_mutator; }

// True when the calling thread is attached and may touch the heap now (the inline
// fast paths' thread-state check; the slow paths say which rule was broken).
inline bool may_touch_heap() {
  const MutatorState* m = tls_mutator;
  return m && (m->native_depth | m->no_heap_depth) == 0;
}

// may_touch_heap(), and `object` lies in the small-object pages of the heap the thread
// is attached to (false for another heap's object - and for a large object of this one:
// the slow path, check_object_heap in gc/thread_registry.h, tells them apart).
inline bool may_touch_heap_object(const void* object) {
  const MutatorState* m = tls_mutator;
  return m && (m->native_depth | m->no_heap_depth) == 0 &&
         reinterpret_cast<uintptr_t>(object) - m->page_base < m->page_bytes;
}

}  // namespace shoal::internal
