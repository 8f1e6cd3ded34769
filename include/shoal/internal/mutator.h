// The part of a mutator thread's state that the inline allocation fast path needs
// (internal). The full record is gc/thread_registry.h's MutatorThread, which derives
// from this.
//
// Each attached thread owns one thread-local allocation buffer (TLAB) per size class:
// a bump range [cursor, limit) inside a free run of a page it owns. Allocation is
// `p = cursor; cursor += cell_size` when it fits; everything else is the slow path
// (heap/allocator.cc). Only the owning thread touches its TLABs, except the collector
// during a pause, when the owner is parked.
#pragma once

#include <atomic>
#include <cstdint>

#include "shoal/internal/size_classes.h"

namespace shoal::internal {

class HeapImpl;
struct PageInfo;

struct Tlab {
  char* cursor = nullptr;     // next free byte
  char* limit = nullptr;      // end of the current run
  char* run_start = nullptr;  // where the current run began (for the object-start bitmap)
  PageInfo* page = nullptr;   // the page the run lies in; owned by this thread
};

struct MutatorState {
  Tlab tlabs[kNumSizeClasses];
  HeapImpl* heap = nullptr;
  // Non-zero when the thread must enter the safepoint slow path: a stop-the-world
  // request or a pending handshake. Polled with a relaxed load.
  std::atomic<uint32_t> poll_word{0};
};

// The current thread's mutator record, or null when it is not attached.
// constinit: no dynamic initialisation, so access needs no TLS wrapper call.
extern constinit thread_local MutatorState* tls_mutator;
inline MutatorState* current_mutator() { return tls_mutator; }

}  // namespace shoal::internal
