// Write-barrier state and slow path. See write_barrier.h.
#include "barriers/write_barrier.h"

#include <string>

#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

std::atomic<uint32_t> g_write_barrier_active{0};

// A thread that is not running may not write heap objects: what its barrier records (a
// shaded value, a remembered holder) would go to a buffer a handshake or pause may take
// without it, or to none (an unattached thread). Every slow path below refuses it
// (require_running_thread) before the store happens.

void write_barrier_slow(Object* holder, const Slot* slot, Value old_value, Value new_value) {
  (void)holder;
  (void)slot;
  MutatorThread* self = require_running_thread("write");
  // SATB (Yuasa deletion barrier): shade the value being overwritten.
  if (old_value.is_object()) self->heap->collector.shade(self, old_value.as_object());
  // While this heap's stacks are being scanned one by one: shade the stored value too
  // (the insertion half: see write_barrier.h, "Stacks scanned one thread at a time").
  if (new_value.is_object() && self->heap->collector.stacks_unscanned())
    self->heap->collector.shade(self, new_value.as_object());
}

namespace {
// A large holder is remembered by card (heap/large_object_space.h; gc/generations.cc,
// "Cards"): the cards of [first, first + count) are dirtied in the set the barrier
// records into now, and the holder is listed for that set if it is not yet - by the
// thread that turns `listed` on, which also shades it (as remember_slow does for an
// object). No header bit: later stores into other cards must still reach this path.
// The set changes only in pauses, and this runs in the store's no-preempt region, so
// the cards, the listing and the store are seen together by the cycle that consumes it.
void remember_cards(MutatorThread* self, Object* holder, const Slot* first, size_t count) {
  LargeObject* l = LargeObject::of(holder);
  SHOAL_DCHECK(l->magic == LargeObject::kMagic && !self->heap->pages.contains(holder));
  const auto a = reinterpret_cast<uintptr_t>(first);
  // A store through a slot of another object (a wrong holder passed to shoal::write)
  // would dirty a byte outside the cards: refused before the store.
  if (a < l->begin() || a >= l->end() || count > (l->end() - a) / sizeof(Slot))
    throw InvalidArgument("write: the slot does not lie in the holder object passed with it");
  const unsigned set = self->card_record_set;
  std::atomic<uint8_t>& listed = l->listed[set];
  // Room first: a bad_alloc must not leave dirty cards on a holder no buffer has.
  if (listed.load(std::memory_order_relaxed) == 0) self->remembered.reserve(self->remembered.size() + 1);
  uint8_t* cards = l->cards(set);
  const size_t last = l->card_of(a + count * sizeof(Slot) - 1);
  for (size_t c = l->card_of(a); c <= last; ++c) {
    std::atomic_ref<uint8_t> card(cards[c]);
    if (card.load(std::memory_order_relaxed) == 0) card.store(1, std::memory_order_relaxed);
  }
  if (listed.load(std::memory_order_relaxed) != 0 || listed.exchange(1, std::memory_order_relaxed) != 0) return;
  self->remembered.push_back(holder);
  self->heap->collector.shade(self, holder);
}
}  // namespace

// (A slot outside the holder is not "recorded": the slow path refuses it.)
void remember_card(Object* holder, const Slot* slot) {
  const MutatorState* m = tls_mutator;
  if (m != nullptr && LargeObject::of(holder)->card_recorded(m->card_record_set, slot)) return;
  remember_slow(holder, slot);
}

void remember_card_while_marking(Object* holder, const Slot* slot) {
  const MutatorState* m = tls_mutator;
  if (m != nullptr && LargeObject::of(holder)->card_recorded(m->card_record_set, slot)) return;
  remember_while_marking_slow(holder, slot);
}

void remember_slow(Object* holder, const Slot* first, size_t count) {
  // An old holder (no generational bit) is about to hold a young reference.
  MutatorThread* self = require_running_thread("write");
  // Without generations nothing is young and no cycle reads the remembered set: only
  // remember_before_plain_stores (which cannot tell) comes here, and an entry would
  // never be taken - a buffer growing with every holder, dangling once they die. The
  // bit alone (until a cycle traces the holder) lets the next stretches exit at the
  // holder test.
  if (!self->heap->collector.generational()) {
    if ((holder->header_word() & header::kCarded) == 0) holder->set_gc_bits(header::kRemembered);
    return;
  }
  if ((holder->header_word() & header::kCarded) != 0) return remember_cards(self, holder, first, count);
  // The bit decides who records it: exactly one thread pushes each holder. Room first:
  // a bad_alloc must not leave the bit set on a holder no list has.
  self->remembered.reserve(self->remembered.size() + 1);
  if ((holder->set_gc_bits(header::kRemembered) & header::kRemembered) != 0) return;
  self->remembered.push_back(holder);
  // The entry is read by the next cycle, so the holder must survive this one if one is
  // marking: with stacks scanned one thread at a time, a holder reachable only from an
  // unscanned stack could otherwise be dropped and freed by a full cycle's sweep, leaving
  // a dangling entry (gc/thread_stack_scan.cc).
  self->heap->collector.shade(self, holder);
}

void remember_weak_slow(const Slot* slot) {
  MutatorThread* self = require_running_thread("write_weak");
  // The holder is the object whose cell contains the slot (null for a slot outside the
  // heap: a root, which the collector treats separately). An object still in a TLAB's
  // unflushed run has no start bit yet and is not found: it is young (or, while a cycle
  // marks, that cycle's newborn, which the marking rule exempts: young after the sweep).
  Object* holder = self->heap->holder_of_slot(reinterpret_cast<uintptr_t>(slot));
  if (!holder) return;
  if (const uint64_t skip = self->marking_remember_skip; skip != 0) {
    // While a generational cycle marks: the marking rule (write_barrier.h).
    if ((holder->header_word() & skip) == 0) remember_while_marking_slow(holder, slot);
    return;
  }
  if ((holder->header_word() & header::kGenerationBits) == 0) remember_slow(holder, slot);
}

void remember_while_marking_slow(Object* holder, const Slot* first, size_t count) {
  // A generational cycle marks: a young value goes into a holder that is not this
  // cycle's newborn and not recorded for the next cycle yet (write_barrier.h, "While a
  // cycle marks"). Recorded with this cycle's remembered-next bit, which the marker
  // leaves alone, so the entry stands whatever the marker does to the holder meanwhile.
  // (A large holder: by card, in the set this cycle does not consume.)
  MutatorThread* self = require_running_thread("write");
  if ((holder->header_word() & header::kCarded) != 0) return remember_cards(self, holder, first, count);
  const uint64_t next = self->marking_remember_skip & header::kRememberedNextBits;
  SHOAL_DCHECK(next != 0);
  self->remembered.reserve(self->remembered.size() + 1);
  if ((holder->set_gc_bits(next) & next) != 0) return;
  self->remembered.push_back(holder);
  // As in remember_slow: the entry is read by the next cycle, so the holder survives
  // this one.
  self->heap->collector.shade(self, holder);
}

void weak_barrier_slow(Value target) {
  // A weak read during marking: shade what it returns, so the strong reference the
  // caller now holds keeps its target this cycle (see shoal::read_weak).
  MutatorThread* self = current_thread();
  if (!self) return;
  self->heap->collector.shade(self, target.as_object());
}

}  // namespace shoal::internal
