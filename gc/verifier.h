// The heap verifier: an independent check that the collector kept what it must and freed
// nothing twice. Runs in a pause (Heap::verify(), or after every cycle with
// HeapOptions::verify_after_gc), after TLABs are flushed.
//
// It checks, without using the mark bits:
//   1. Reachability: a fresh traversal from the same roots (conservative stacks and
//      registers, persistents, globals) with its own visited set. Every object reached
//      must be allocated (object-start bit set, or a registered large object), have a
//      well-formed header (ObjectModel::is_well_formed), fit its cell, and every
//      reference slot must hold null, a small integer or an allocated object's start.
//      A collector that freed a reachable object fails here.
//   2. Page structure: alloc bits only at cell starts, mark bits clear, free runs inside
//      the page, cell-aligned, in order, disjoint from allocated cells, poison intact
//      (when poisoning is on); a pool page has no allocated cell.
//   3. Free exactly once: every page is on at most one list (pool or its class's), and
//      in the list its state says; large objects are registered once with valid magic.
#pragma once

#include "shoal/heap.h"

namespace shoal::internal {

class HeapImpl;

VerifyReport verify_heap_in_pause(HeapImpl& heap);

}  // namespace shoal::internal
