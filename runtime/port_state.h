// A port's shared state (internal; runtime/ports.cc). Shared by the ReceivePort and every
// SendPort copy; registered with the group, whose destructor closes it (dropping the
// queued handles while the heap still exists), so a port handle that outlives its group
// answers PortClosedError instead of touching freed memory.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <deque>
#include <mutex>

#include "shoal/internal/parking.h"
#include "shoal/persistent.h"

namespace shoal::internal {

class GroupImpl;
class IsolateImpl;

struct PortState {
  std::atomic<GroupImpl*> group{nullptr};  // null once the group is destroyed (set under mu)
  IsolateImpl* owner = nullptr;            // valid while group is
  std::mutex mu;
  // The receiver parks on `wake` (include/shoal/internal/parking.h), cancellably: a
  // sender bumps it after queuing, close() after closing.
  std::atomic<uint32_t> wake{0};
  std::deque<PersistentValue> queue;  // guarded by mu
  bool closed = false;                // guarded by mu

  // Closes the port and returns the queued messages (destroy them outside mu).
  std::deque<PersistentValue> close_and_take() {
    std::deque<PersistentValue> dropped;
    {
      internal::NoPreemptScope no_preempt_lock;  // (a running thread may wait for this lock)
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      dropped.swap(queue);
    }
    bump_and_unpark(wake, INT32_MAX);
    return dropped;
  }
};

}  // namespace shoal::internal
