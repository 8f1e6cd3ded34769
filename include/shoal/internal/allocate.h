// The inline allocation fast path (internal).
//
// About 8 instructions when the size is a compile-time constant: load the thread's
// record from TLS, check the TLAB has room, bump, store the header (with the owner bits
// of the thread's isolate and the young bit OR-ed in). The room check is
// also the safepoint poll: another thread requests one by zeroing `limit` (mutator.h). The cell's
// payload is zeroed here, inside the no-preempt region, so every reference field starts
// out null and no pause or marker ever sees a cell with stale contents: with a constant
// size these are a few stores, most of which the compiler drops when the constructor
// that follows overwrites them. (Zeroing each cell where it is written, not a whole run
// when the TLAB takes it, writes the memory once instead of twice: a run is up to a page,
// more than the first-level cache.) Anything else - no TLAB, empty TLAB, a large object,
// an unattached thread - goes to allocate_slow (heap/allocator.cc).
#pragma once

#include <cstddef>
#include <cstring>
#include <new>

#include "shoal/internal/mutator.h"
#include "shoal/internal/preemption.h"
#include "shoal/internal/size_classes.h"
#include "shoal/object.h"

namespace shoal::internal {

Object* allocate_slow(size_t bytes, uint64_t header_word);

// The whole call is a no-preempt region (preemption.h): a pause never sees the cursor
// moved past a cell without its header, nor retires the TLAB in the middle of a bump.
inline Object* allocate(size_t bytes, uint64_t header_word) {
  NoPreemptScope no_preempt;
  MutatorState* m = tls_mutator;
  if (bytes <= kMaxSmallSize && m != nullptr) [[likely]] {
    const size_t cls = size_class_of(bytes);
    const size_t cell = kClassSize[cls];
    Tlab& t = m->tlabs[cls];
    const uintptr_t p = t.cursor;
    if (p + cell <= t.limit.load(std::memory_order_relaxed)) [[likely]] {
      t.cursor = p + cell;
      std::memset(reinterpret_cast<char*>(p) + kHeaderSize, 0, cell - kHeaderSize);
      return new (reinterpret_cast<void*>(p)) Object(header_word | m->owner_bits | m->alloc_tags);
    }
  }
  return allocate_slow(bytes, header_word);
}

}  // namespace shoal::internal
