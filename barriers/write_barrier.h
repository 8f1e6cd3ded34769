// The write barrier (internal side). The inline fast path is shoal::write in
// include/shoal/write_barrier.h:
//
//   write(holder, slot, value):
//     if active = g_write_barrier_active:  // one relaxed load, one predictable branch
//       old = *slot
//       if old is an object                // (initialising stores skip the call...
//          or (some stack is unscanned     //  ...unless stacks are being scanned)
//              and value is an object):
//         write_barrier_slow(holder, slot, old, value)
//     *slot = value                        // release store
//
//   write_barrier_slow(old, value):
//     refuse (NotAttached / ThreadStateError) if this thread may not touch the heap
//     if this thread's heap is marking concurrently:
//       shade(old)                         // SATB, Yuasa's deletion barrier: mark bit
//                                          // test-and-set; if newly set, push onto the
//                                          // thread's SATB buffer
//       if its stacks are not all scanned:
//         shade(value)                     // Dijkstra's insertion barrier, for the
//                                          // short stack-scanning phase only
//
// g_write_barrier_active counts heaps that are marking concurrently (kBarrierMarking
// each) and heaps whose stacks are still being scanned after their initial pause
// (kBarrierStacksUnscanned each; gc/thread_stack_scan.cc); it changes only inside a
// pause of the heap that changes it, or - the second count's decrement - once that
// heap's last stack is scanned (turning a shading off early is safe only then), so a
// mutator of that heap sees the barrier switch on at a safepoint. Mutators of other
// heaps may take the slow path for nothing; it checks its own heap's flags.
//
// Why this is enough. With every stack scanned in the initial pause (the stacks that fit
// HeapOptions::initial_pause_stack_budget, or all of them) the argument is the classic
// snapshot one below (1-5); for the stacks scanned later, at their threads' own
// safepoints, gc/thread_stack_scan.cc gives the weak-tricolour argument, for which the
// insertion half covers the stores made while any stack is unscanned.
// The snapshot argument (invariant: every object reachable at the snapshot, the initial
// pause, is marked by the end of the cycle):
//   1. The snapshot's roots are marked in the initial pause: every thread's stack and
//      registers (conservatively), persistent handles and global slots. Stacks are never
//      rescanned, so they need no barrier: a reference a mutator loads onto its stack
//      later was either reachable at the snapshot or allocated after it.
//   2. The marker follows the snapshot graph. A mutator can hide a snapshot object only
//      by deleting a snapshot edge before the marker crosses it; the deleted edge's
//      target is exactly the `old` value this barrier shades. (Moving the only reference
//      from an unscanned object into an already-scanned one - the classic lost object -
//      is a delete plus an insert: the delete shades it.) Insertions need no barrier -
//      with every stack in the snapshot.
//   3. Objects allocated after the snapshot are black (TLAB flushes set their mark bits,
//      large objects are born marked), so new objects never need tracing to survive,
//      and storing them anywhere is harmless.
//   4. Racing writers of one slot: both load the old value before either stores, so the
//      snapshot value is shaded by the first overwrite whatever the interleaving; a value
//      stored after the snapshot and overwritten unshaded was reachable at the snapshot
//      through another path (1-3 keep that path's objects) or is new (black).
//   5. Shaded objects wait in per-thread SATB buffers: handed to the marker every
//      kSatbBatch objects, when the thread detaches (it takes its buffer with it
//      otherwise - a test covers exactly that), and collected from every thread in the
//      final pause, which drains them before sweeping.
// Memory ordering: the mark bit is set with an atomic RMW, so a mutator's shade and the
// marker's test agree on who pushes an object; the old value is read with an acquire
// load, so its header and fields are visible to the marker that traces it.
//
// The generational part (gc/generations.cc has the invariant). After the SATB part and
// before the store, in the same no-preempt region:
//
//   if a generational cycle is marking (the thread's marking_remember_skip is set):
//     if value is young or newborn
//        and holder has neither this cycle's newborn bit nor its remembered-next bit:
//       remember_while_marking_slow(holder) // fetch_or the remembered-next bit; the
//                                          // thread that set it pushes the holder
//   if value is a reference
//      and holder's header has no generational bit (young, newborn, remembered)
//      and value's header has the young or a newborn bit:
//     remember_slow(holder)                // fetch_or the remembered bit; the thread
//                                          // that set it pushes the holder onto its
//                                          // remembered-set buffer
//
// Why no old-to-young edge escapes it (between cycles, marks sticky):
//   a. A young or newborn holder needs no entry: it is traced by the next cycle if it
//      survives.
//   b. A remembered holder is on the set already (bit set => on some buffer or list;
//      the remembered bit is cleared only when a marker traces the holder - then its
//      young references are marked - or when a full cycle drops the stale set; the
//      remembered-next bit of the marking cycle is never cleared by that cycle).
//   c. Young is exactly "allocated since the last final pause, or while the last cycle
//      marked, and not traced": threads stamp the young bit at allocation while no
//      cycle marks and the cycle's newborn bit while one does (MutatorState::alloc_tags,
//      changed in pauses), the marker clears them on tracing (not the marking cycle's
//      own newborn bit: an unflushed newborn it traces stays a newborn, unmarked by the
//      sweep). So a value with neither bit is marked or will be by the cycle under way,
//      and stays marked.
//   d. No pause can fall between the test and the store (no-preempt region; the
//      remembered set is taken only in pauses), so the initial pause sees either both or
//      neither.
//   e. Stores made while a cycle marks: the argument above already marks the stored
//      value by the cycle's end, so an entry only serves the next cycle - and it must
//      still point at an allocated object then, so both slow paths shade the holder
//      while marking runs (with stacks scanned late, a holder reachable only from an
//      unscanned stack could otherwise die in this cycle with its entry on the buffer).
//      But the next cycle does need the entry when the value is a newborn: unmarked by
//      the sweep, it is young then. The second test alone would not do: a marker
//      tracing a young holder clears its young bit and then reads its slots, and a
//      thread that read the bit before the clear and stored after the read leaves an
//      old holder whose newborn the marker never saw, with no entry. Hence the marking
//      rule, which reads only bits no marker of this cycle clears (its newborn and
//      remembered-next bits): any holder that is not this cycle's newborn is recorded,
//      whatever the marker has done to it - a young one too (one entry per holder per
//      cycle at most; it is shaded, traced and old by the cycle's end, so the entry
//      is an old holder's). This cycle's newborns need none: they are young after the
//      sweep, like their referents. The first test exits for every thread whose heap is
//      not marking, the second for a fresh holder (this cycle's newborn: the
//      initialising stores).
// A large holder (not in the small-object pages) is remembered by card, not by header
// bit (gc/generations.cc, "Cards"): the slow paths get the slot, dirty its card in the
// card set the barrier records into and list the holder for that set. With no header
// bit set, a.-e. hold for each store and its card: every young store into an old large
// holder reaches remember_card (the holder test never exits for it), which leaves it
// out of the slow path only if the slot's card is dirty already in the set recorded
// into now - then the thread that dirtied it listed the holder, or will before its
// no-preempt region ends, so before any pause; and while a cycle marks the card set
// written is the one that cycle does not consume.
// CAS and exchange remember on the desired value (a failed CAS leaves a harmless entry).
// write_weak has no holder: a young target sends it to remember_weak_slow, which finds
// the holder from the slot's address (HeapImpl::holder_of_slot).
//
// Every reference store in Shoal goes through write(): Slot's raw store is private (only
// internal::SlotAccess reaches it, and tests/barriers/no_bypass_compile_test checks that
// user code cannot), and Member<T> is writable only through Ref<T>::set, store_field
// and the builtins' setters. Root slots outside the heap (persistent handles, registered
// globals) are written under the root lock (gc/roots.h): roots are read in the pauses,
// and while marking runs a value stored into a root is shaded there.
#pragma once

#include "shoal/write_barrier.h"
