// The write barrier (internal side). The inline fast path is shoal::write in
// include/shoal/write_barrier.h:
//
//   write(holder, slot, value):
//     if g_write_barrier_active:      // one relaxed load, one predictable branch
//       write_barrier_slow(holder, slot, old = *slot, value)
//     *slot = value                   // release store
//
// Foundation status: the collector stops the world for the whole cycle, so no marking
// ever overlaps a mutator store and the flag is never set; write_barrier_slow therefore
// has nothing to do. What it must do once marking runs concurrently (shade the
// overwritten value, SATB, and/or the new one) - and why that is correct with
// conservatively scanned stacks - is the concurrent-marking issue's to write here.
//
// Every reference store in Shoal goes through write(): Slot has no public store, and
// Member<T> is writable only through Ref<T>::set, store_field and the builtins' setters.
// Root slots outside the heap (persistent handles, registered globals) use
// Slot::store_root: they are scanned inside the pause and need no barrier.
#pragma once

#include "shoal/write_barrier.h"
