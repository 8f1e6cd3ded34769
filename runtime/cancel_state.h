// The shared state behind a CancellationToken (internal; include/shoal/cancellation.h).
//
// `cancelled` only goes from false to true. `mu` guards the children (weak: a child
// that nobody holds any more is dropped) and the wake words of the waits parked under
// this token (include/shoal/internal/parking.h). cancel() sets the flag, then - under
// mu - bumps and wakes every registered word, then cancels the children. A waiter
// registers its word and reads the flag under mu before it parks, so either it sees the
// flag or cancel() sees its word: no cancellation is missed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "shoal/internal/mutex.h"

namespace shoal::internal {

struct CancelState : std::enable_shared_from_this<CancelState> {
  std::atomic<bool> cancelled{false};
  Mutex mu;
  std::vector<std::weak_ptr<CancelState>> children SHOAL_GUARDED_BY(mu);
  std::vector<std::atomic<uint32_t>*> waits SHOAL_GUARDED_BY(mu);
};

// The calling thread's current token (CancellationScope); null outside every scope.
extern constinit thread_local CancelState* tls_cancel_state;

}  // namespace shoal::internal
