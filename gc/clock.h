// The collector's clock: steady_clock in nanoseconds, for pause timings,
// deadlines and the idle-cycle policy (one clock, so their figures compare).
#pragma once

#include <chrono>
#include <cstdint>

namespace shoal::internal {

inline uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace shoal::internal
