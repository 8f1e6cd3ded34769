// Write-barrier state and slow path. See write_barrier.h.
#include "barriers/write_barrier.h"

#include "shoal/internal/check.h"

namespace shoal::internal {

std::atomic<uint32_t> g_write_barrier_active{0};

void write_barrier_slow(Object* holder, const Slot* slot, Value old_value, Value new_value) {
  (void)holder;
  (void)slot;
  (void)old_value;
  (void)new_value;
  // Unreachable while every cycle is stop-the-world (the flag is never set).
  SHOAL_CHECK(false && "write barrier slow path reached without concurrent marking");
}

}  // namespace shoal::internal
