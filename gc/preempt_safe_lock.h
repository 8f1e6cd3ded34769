// PreemptSafeLock: a std::unique_lock<std::mutex> held inside a no-preempt region.
//
// Asynchronous preemption (gc/async_preemption.h) may park a thread anywhere outside a
// no-preempt region. A thread parked while holding a lock that a *running* thread waits
// for would hold up the pause: the waiter cannot reach a safepoint until it gets the
// lock, and the holder cannot release it until the pause ends. So every runtime mutex a
// running thread may block on is taken and held in a no-preempt region: the region is
// entered before locking and left after unlocking (a signal that lands meanwhile parks
// the thread at the region's end, with the lock released). Being a unique_lock, it works
// with std::condition_variable::wait (the region stays entered while waiting: the
// waiting thread is in run_native or parked at a genuine poll, never preempted there).
#pragma once

#include <mutex>

#include "shoal/internal/preemption.h"

namespace shoal::internal {

namespace detail {
struct NoPreemptBase {
  NoPreemptScope no_preempt;
};
}  // namespace detail

// Bases are constructed in declaration order and destroyed in reverse: the region is
// entered before the lock is taken and left after it is released.
class PreemptSafeLock : private detail::NoPreemptBase, public std::unique_lock<std::mutex> {
 public:
  explicit PreemptSafeLock(std::mutex& m) : std::unique_lock<std::mutex>(m) {}
  // Takes over a lock the caller already holds (taken in a safe state, e.g. by
  // block_gc_safe), entering the region now.
  PreemptSafeLock(std::mutex& m, std::adopt_lock_t) : std::unique_lock<std::mutex>(m, std::adopt_lock) {}
  PreemptSafeLock(const PreemptSafeLock&) = delete;
  PreemptSafeLock& operator=(const PreemptSafeLock&) = delete;
};

}  // namespace shoal::internal
