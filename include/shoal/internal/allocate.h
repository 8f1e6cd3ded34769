// The inline allocation fast path (internal).
//
// About 8 instructions when the size is a compile-time constant: load the thread's
// record from TLS, check the TLAB has room, bump, store the header (with the owner bits
// of the thread's isolate and the young bit OR-ed in). The room check is
// also the safepoint poll: another thread requests one by zeroing `limit` (mutator.h). The cell's
// payload is zeroed here (construct_in_cell), inside the no-preempt region, so every
// reference field starts out null and no pause or marker sees an allocated object with
// stale contents: with a constant size, a few stores (the constructor that follows
// stores its fields again; the no-preempt region's end keeps the compiler from merging
// them). Zeroing each cell as it is allocated, not a whole run when the TLAB takes it,
// keeps the second write in cache: a run is up to a page, more than the first-level
// cache (heap/allocator.cc). Anything else - no TLAB, empty TLAB, a large object,
// an unattached thread - goes to allocate_slow (heap/allocator.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "shoal/internal/mutator.h"
#include "shoal/internal/preemption.h"
#include "shoal/internal/size_classes.h"
#include "shoal/object.h"

namespace shoal::internal {

Object* allocate_slow(size_t bytes, uint64_t header_word);

// How every small object comes into being, on the fast path and in allocate_small_slow:
// the cell's payload zeroed, then its header written. The caller has bumped the TLAB
// past the cell and is inside a no-preempt region.
[[gnu::always_inline]] inline Object* construct_in_cell(uintptr_t p, size_t cell, uint64_t header_word) {
  std::memset(reinterpret_cast<char*>(p) + kHeaderSize, 0, cell - kHeaderSize);
  return new (reinterpret_cast<void*>(p)) Object(header_word);
}

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
      return construct_in_cell(p, cell, header_word | m->owner_bits | m->alloc_tags);
    }
  }
  return allocate_slow(bytes, header_word);
}

}  // namespace shoal::internal
