// An annotated mutex (internal): std::mutex with Clang thread-safety capability
// attributes, so fields can be declared SHOAL_GUARDED_BY(mu_) and checked at compile time.
// Holding one is a no-preempt region (preemption.h): asynchronous preemption never
// parks a thread that holds a lock a pause may need.
#pragma once

#include <condition_variable>
#include <mutex>

#include "shoal/internal/preemption.h"
#include "shoal/thread_annotations.h"

namespace shoal::internal {

class SHOAL_CAPABILITY("mutex") Mutex {
 public:
  void lock() SHOAL_ACQUIRE() {
    ++tls_no_preempt;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    try {
      mu_.lock();
    } catch (...) {  // (std::system_error: the region was never entered)
      leave_no_preempt_region();
      throw;
    }
  }
  void unlock() SHOAL_RELEASE() {
    mu_.unlock();
    leave_no_preempt_region();
  }
  bool try_lock() SHOAL_TRY_ACQUIRE(true) {
    ++tls_no_preempt;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (mu_.try_lock()) return true;
    leave_no_preempt_region();
    return false;
  }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SHOAL_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SHOAL_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() SHOAL_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace shoal::internal
