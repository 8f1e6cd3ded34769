// The reference store: every write of a reference into a heap object goes through
// shoal::write (directly, or via Ref<T>::set, store_field, RefArray::set).
//
// Before the barrier, the mutation checks (include/shoal/internal/mutation_checks.h):
// one load of the holder's header refuses a store into a frozen or deeply immutable
// object (InvalidMutabilityError) or into a mutable object another isolate owns
// (IncorrectDereferenceError / IsolationError) - the slot is left unchanged.
//
// The barrier has two parts. SATB: one relaxed load of a global flag and one predictable
// branch; the flag is off unless a collector is marking concurrently with mutators
// (HeapOptions::concurrent_marking), and then the slow path shades the overwritten value.
// Generational: storing a reference to a young object into an object that is neither
// young nor already remembered puts the holder on the remembered set (a test of the
// holder's header word - the line the mutation check just read - and, for an old
// holder, of the value's); while a generational cycle marks, so does storing one into
// any holder that is not fresh (the marking rule, below). barriers/write_barrier.h
// explains why both are enough.
#pragma once

#include <atomic>

#include "shoal/internal/mutation_checks.h"
#include "shoal/internal/mutator.h"
#include "shoal/internal/preemption.h"
#include "shoal/object.h"
#include "shoal/value.h"

namespace shoal {
namespace internal {
// Counts heaps marking concurrently (kBarrierMarking each) and, of those, heaps whose
// threads' stacks are not all scanned yet (kBarrierStacksUnscanned each: the stacks are
// scanned one thread at a time after the initial pause, gc/collector.h). Zero: no barrier.
extern std::atomic<uint32_t> g_write_barrier_active;
inline constexpr uint32_t kBarrierMarking = 1;
inline constexpr uint32_t kBarrierStacksUnscanned = uint32_t{1} << 16;
// While some heap's stacks are unscanned, a store of a reference also shades the stored
// value (the insertion half of the hybrid barrier, barriers/write_barrier.h).
[[gnu::always_inline]] inline bool barrier_shades_new(uint32_t active, Value value) {
  return active >= kBarrierStacksUnscanned && value.is_object();
}
// Cold: laid out away from the callers' hot code (the tight-loop cost of the fast path is
// the flag load and branch themselves; docs/performance.md).
[[gnu::cold]] void write_barrier_slow(Object* holder, const Slot* slot, Value old_value, Value new_value);
[[gnu::cold]] void weak_barrier_slow(Value target);
// The remembering slow paths take the slots the store writes ([first, first + count)):
// a large holder is remembered by the cards those slots lie in, not whole
// (heap/large_object_space.h, gc/generations.cc "Cards").
[[gnu::cold]] void remember_slow(Object* holder, const Slot* first, size_t count = 1);
[[gnu::cold]] void remember_weak_slow(const Slot* slot);
[[gnu::cold]] void remember_while_marking_slow(Object* holder, const Slot* first, size_t count = 1);
// A large holder's young store (barriers/write_barrier.cc): returns at once when the
// slot's card is already recorded (LargeObject::card_recorded, loads only), else the
// slow path above. Out of line but not cold, and a leaf until it tail-calls the slow
// path: no stack stores, which would stall stores that miss the cache (a young store
// at random into a big old array: 39 ns with the slow path's, docs/performance.md), and
// the callers keep no extra values live (inlined, the test cost every store a spill).
[[gnu::noinline]] void remember_card(Object* holder, const Slot* slot);
[[gnu::noinline]] void remember_card_while_marking(Object* holder, const Slot* slot);

// The generational barrier's marking rule (barriers/write_barrier.h, "While a cycle
// marks"): while a generational cycle marks concurrently, a young value stored into a
// holder that is neither this cycle's newborn nor already recorded for the next cycle
// records the holder for the next cycle - whatever the holder's age: the marker may be
// tracing it at this moment and miss the store, and a newborn value is young again
// after the sweep. Fresh objects (this cycle's newborns, the stores that initialise
// them) exit on the holder test; a thread whose heap is not marking, on the first. (A
// large holder never has the header bits: each such store records its slot's card.)
[[gnu::always_inline]] inline void remember_while_marking(Object* holder, const Slot& slot, Value value) {
  const MutatorState* m = tls_mutator;
  if (m == nullptr) return;
  const uint64_t skip = m->marking_remember_skip;
  if (skip == 0 || !value.is_object()) return;
  const uint64_t h = holder->header_word();
  if ((h & skip) != 0) return;
  if ((value.as_object()->header_word() & header::kYoungBits) == 0) return;
  if ((h & header::kCarded) != 0) return remember_card_while_marking(holder, &slot);
  remember_while_marking_slow(holder, &slot);
}

// The generational barrier (barriers/write_barrier.h): a young holder (most stores:
// initialising fresh objects) or one already remembered exits on the first test; an old
// holder storing a young reference goes on the remembered set - a large one by the
// slot's card, so it never takes the remembered bit and each such store comes here.
// A large holder goes to remember_card, which returns at once if the slot's card is
// already recorded.
inline void remember_if_old_to_young(Object* holder, const Slot& slot, Value value) {
  if (!value.is_object()) return;
  const uint64_t h = holder->header_word();
  if ((h & header::kGenerationBits) != 0) return;
  if ((value.as_object()->header_word() & header::kYoungBits) == 0) [[likely]] return;
  if ((h & header::kCarded) != 0) return remember_card(holder, &slot);
  remember_slow(holder, &slot);
}

// For runtime code that fills a fresh array with plain stores (a list's growth, a map's
// rehash): call it at the start of each no-preempt stretch of such stores. A fresh array
// is young, or newborn if allocated while marking - but a pause between two stretches
// may have made it old, and the stores that follow may be of young references: so if it
// is neither young nor remembered it is remembered now (conservatively, whatever it will
// hold); while a generational cycle marks, by the marking rule (any holder but this
// cycle's newborns). No pause can fall inside the stretch, so the entry covers every
// store in it. [first, first + count) are the slots the stretch may write: a large
// holder is remembered by their cards.
inline void remember_before_plain_stores(Object* holder, const Slot* first, size_t count) {
  if (count == 0) return;
  if (const MutatorState* m = tls_mutator; m != nullptr && m->marking_remember_skip != 0) {
    if ((holder->header_word() & m->marking_remember_skip) == 0) remember_while_marking_slow(holder, first, count);
    return;
  }
  if ((holder->header_word() & header::kGenerationBits) == 0) remember_slow(holder, first, count);
}
}  // namespace internal

// While marking, only a store that overwrites a reference calls the slow path: an
// initialising store into a fresh object (old value null) or over a small integer
// deletes no snapshot edge, so it costs one load and a branch more than a plain store -
// except in the short stretch after an initial pause while the threads' stacks are being
// scanned, when every store of a reference shades the stored value too.
//
// The flag test and the store are one no-preempt region (internal/preemption.h): a
// pause that switches marking on cannot fall between them.
//
// Always inlined: left to itself GCC made it an out-of-line call that saves four
// registers, and binary-trees (two stores per node) ran 6 % slower (docs/performance.md).
[[gnu::always_inline]] inline void write(Object* holder, Slot& slot, Value value) {
  internal::check_store(holder);
  internal::NoPreemptScope no_preempt;
  if (const uint32_t active = internal::g_write_barrier_active.load(std::memory_order_relaxed); active != 0)
      [[unlikely]] {
    const Value old_value = slot.load();
    if (old_value.is_object() || internal::barrier_shades_new(active, value))
      internal::write_barrier_slow(holder, &slot, old_value, value);
    internal::remember_while_marking(holder, slot, value);
  }
  internal::remember_if_old_to_young(holder, slot, value);
  internal::SlotAccess::store(slot, value);
}

namespace internal {
// The barrier without the mutation checks (internal): for stores the runtime itself
// makes into objects it is building - a deeply immutable instance's initialisation
// (shoal::make_immutable), a deep copy's fresh objects.
inline void write_unchecked(Object* holder, Slot& slot, Value value) {
  NoPreemptScope no_preempt;
  if (const uint32_t active = g_write_barrier_active.load(std::memory_order_relaxed); active != 0) [[unlikely]] {
    const Value old_value = slot.load();
    if (old_value.is_object() || barrier_shades_new(active, value)) write_barrier_slow(holder, &slot, old_value, value);
    remember_while_marking(holder, slot, value);
  }
  remember_if_old_to_young(holder, slot, value);
  SlotAccess::store(slot, value);
}
}  // namespace internal

namespace internal {
// Atomic read-modify-writes of a reference slot, with the barrier and without the
// mutation checks (callers run check_store on the holder that owns the slot first).
//
// compare_and_swap: while marking, `expected` is shaded before the swap - if the swap
// happens, expected is exactly the value it overwrites (the SATB deletion); if it does
// not, nothing was overwritten and shading a value the caller holds keeps nothing alive
// that was not. exchange: outside marking a plain atomic exchange; while marking, a
// compare-and-swap loop shading each candidate first. Either way a thread the barrier
// refuses (NotAttached) is refused before the slot changes.
inline Value compare_and_swap_unchecked(Object* holder, Slot& slot, Value expected, Value desired) {
  NoPreemptScope no_preempt;
  if (const uint32_t active = g_write_barrier_active.load(std::memory_order_relaxed); active != 0) [[unlikely]] {
    if (expected.is_object() || barrier_shades_new(active, desired)) write_barrier_slow(holder, &slot, expected, desired);
    remember_while_marking(holder, slot, desired);
  }
  remember_if_old_to_young(holder, slot, desired);  // (a failed swap leaves a harmless entry)
  return SlotAccess::compare_exchange(slot, expected, desired);
}
inline Value exchange_unchecked(Object* holder, Slot& slot, Value desired) {
  NoPreemptScope no_preempt;
  if (const uint32_t active = g_write_barrier_active.load(std::memory_order_relaxed); active != 0) [[unlikely]] {
    remember_while_marking(holder, slot, desired);
    remember_if_old_to_young(holder, slot, desired);
    // While marking: a compare-and-swap loop that shades each candidate before it can
    // be overwritten, so a thread the barrier refuses (not running) changes nothing.
    Value old_value = slot.load();
    for (;;) {
      if (old_value.is_object() || barrier_shades_new(active, desired))
        write_barrier_slow(holder, &slot, old_value, desired);
      const Value witness = SlotAccess::compare_exchange(slot, old_value, desired);
      if (witness == old_value) return old_value;
      old_value = witness;
    }
  }
  remember_if_old_to_young(holder, slot, desired);
  return SlotAccess::exchange(slot, desired);
}
}  // namespace internal

// Compare-and-swap of a reference field of `holder` by identity (raw word equality):
// if the slot holds `expected`, stores `desired`. Returns the witness - the value the
// slot held, equal to `expected` exactly when the swap happened. Acquire-release. The
// mutation checks run first (a frozen holder: InvalidMutabilityError; another isolate's:
// IncorrectDereferenceError), and the swap obeys the write barrier. For the typed layer
// see Ref<T>::compare_and_swap; for arrays RefArray::compare_and_swap.
inline Value compare_and_swap(Object* holder, Slot& slot, Value expected, Value desired) {
  internal::check_store(holder, "compare_and_swap");
  return internal::compare_and_swap_unchecked(holder, slot, expected, desired);
}

// Atomically stores `desired` and returns the value it replaced (same checks and barrier).
inline Value exchange(Object* holder, Slot& slot, Value desired) {
  internal::check_store(holder, "exchange");
  return internal::exchange_unchecked(holder, slot, desired);
}

// Weak slots (SlotVisitor::visit_weak; WeakCell) are read with read_weak and written
// with write_weak (which has no holder: it refuses a thread that may not touch the heap -
// unattached, NotAttached; in run_native or a handshake operation, ThreadStateError - and
// callers that own a holder run internal::check_store on it first, for its owner and
// immutability). A read, while marking runs, shades its result: it hands out a strong
// reference to an object the snapshot may only reach weakly, and stacks are not
// rescanned. A write of a genuine weak slot would need no barrier (the overwritten
// target was only weakly held), but write_weak accepts any Slot, and on a strong field it
// deletes a snapshot edge: so while marking it shades the overwritten value like write()
// does (it may keep a weakly held target one cycle longer; nothing else changes). That
// is also why a weak slot in an object allocated during marking (never traced, so never
// considered for clearing this cycle) cannot be left dangling.
//
// Generationally, a weak slot is a slot like any other: a young target stored into an old
// holder puts the holder on the remembered set, so a young cycle traces it, records the
// weak slot and clears it if the target dies. write_weak has no holder: storing a young
// target takes the slow path, which finds the holder from the slot's address (rare: weak
// slots are written when weak tables and cells are, not in tight loops).
inline void write_weak(Slot& slot, Value value) {
  internal::check_store_thread("write_weak");  // (no holder: the thread part of the check)
  internal::NoPreemptScope no_preempt;
  if (const uint32_t active = internal::g_write_barrier_active.load(std::memory_order_relaxed); active != 0)
      [[unlikely]] {
    const Value old_value = slot.load();
    // (The new value is shaded while stacks are unscanned, as write() does: write_weak
    // accepts any slot, and on a strong one the stored value must survive the cycle.)
    if (old_value.is_object() || internal::barrier_shades_new(active, value))
      internal::write_barrier_slow(nullptr, &slot, old_value, value);
  }
  if (value.is_object() && (value.as_object()->header_word() & header::kYoungBits) != 0) [[unlikely]]
    internal::remember_weak_slow(&slot);
  internal::SlotAccess::store(slot, value);
}

inline Value read_weak(const Slot& slot) {
  internal::NoPreemptScope no_preempt;
  const Value v = slot.load();
  if (internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0 && v.is_object()) [[unlikely]]
    internal::weak_barrier_slow(v);
  return v;
}

}  // namespace shoal
