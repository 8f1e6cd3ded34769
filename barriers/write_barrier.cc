// Write-barrier state and slow path. See write_barrier.h.
#include "barriers/write_barrier.h"

#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

std::atomic<uint32_t> g_write_barrier_active{0};

void write_barrier_slow(Object* holder, const Slot* slot, Value old_value, Value new_value) {
  (void)holder;
  (void)slot;
  (void)new_value;
  // SATB (Yuasa deletion barrier): shade the value being overwritten.
  if (!old_value.is_object()) return;
  MutatorThread* self = current_thread();
  // A thread that is not running may not write heap objects: its overwritten value
  // cannot be shaded safely (an unattached thread has no SATB buffer; a native one's is
  // taken by handshakes and pauses without it). Refuse before the store happens.
  if (!self) throw NotAttached("write: a heap object written by a thread that is not attached");
  check_heap_access(self, "write");
  self->heap->collector.shade(self, old_value.as_object());
}

void weak_barrier_slow(Value target) {
  // A weak read during marking: shade what it returns, so the strong reference the
  // caller now holds keeps its target this cycle (see shoal::read_weak).
  MutatorThread* self = current_thread();
  if (!self) return;
  self->heap->collector.shade(self, target.as_object());
}

}  // namespace shoal::internal
