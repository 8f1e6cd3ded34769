// The reference store: every write of a reference into a heap object goes through
// shoal::write (directly, or via Ref<T>::set, store_field, RefArray::set).
//
// The barrier's fast path is one relaxed load of a global flag and one predictable
// branch. The flag is off unless a collector is marking concurrently with mutators
// (HeapOptions::concurrent_marking); then the slow path shades the overwritten value
// (SATB). barriers/write_barrier.h explains why that keeps concurrent marking correct.
#pragma once

#include <atomic>

#include "shoal/object.h"
#include "shoal/value.h"

namespace shoal {
namespace internal {
extern std::atomic<uint32_t> g_write_barrier_active;
void write_barrier_slow(Object* holder, const Slot* slot, Value old_value, Value new_value);
void weak_barrier_slow(Value target);
}  // namespace internal

inline void write(Object* holder, Slot& slot, Value value) {
  if (internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0) [[unlikely]]
    internal::write_barrier_slow(holder, &slot, slot.load(), value);
  slot.store_after_barrier(value);
}

// Weak slots (SlotVisitor::visit_weak; WeakCell). A weak slot is written with
// write_weak and read with read_weak, never with write/load: while marking runs, both
// shade the target. A read hands out a strong reference the snapshot did not include;
// a write may go into an object allocated during marking, which the marker never
// traces, so its weak slot would not be cleared this cycle if the target died.
inline void write_weak(Slot& slot, Value value) {
  if (internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0 && value.is_object()) [[unlikely]]
    internal::weak_barrier_slow(value);
  slot.store_after_barrier(value);
}

inline Value read_weak(const Slot& slot) {
  const Value v = slot.load();
  if (internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0 && v.is_object()) [[unlikely]]
    internal::weak_barrier_slow(v);
  return v;
}

}  // namespace shoal
