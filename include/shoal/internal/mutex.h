// An annotated mutex (internal): std::mutex with Clang thread-safety capability
// attributes, so fields can be declared SHOAL_GUARDED_BY(mu_) and checked at compile time.
#pragma once

#include <condition_variable>
#include <mutex>

#include "shoal/thread_annotations.h"

namespace shoal::internal {

class SHOAL_CAPABILITY("mutex") Mutex {
 public:
  void lock() SHOAL_ACQUIRE() { mu_.lock(); }
  void unlock() SHOAL_RELEASE() { mu_.unlock(); }
  bool try_lock() SHOAL_TRY_ACQUIRE(true) { return mu_.try_lock(); }
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
