// Locks and conditions as heap objects, with compile-time lock names
// (docs/concurrency.md, "Locks").
//
//   struct Account {
//     shoal::Member<shoal::Lock> lock;
//     int64_t balance SHOAL_GUARDED_BY(lock) = 0;        // Clang checks every access
//     static constexpr auto kRefs = shoal::refs(&Account::lock);
//   };
//   shoal::LockHolder hold(*acct->lock);                  // or acct->lock->acquire()
//   acct->balance += 10;                                  // fine: the lock is held
//
// Lock and Condition are trivially shareable heap objects with no owner: they live in
// shared graphs, frozen structures and shared fields, go through ports by reference,
// and every isolate may use them. The collector frees them like any object (nothing
// native is attached to them); a lock that becomes unreachable while held is simply
// gone.
//
// Lock is not reentrant. acquire() blocks; try_acquire() does not; try_acquire_for()
// waits at most the timeout; acquire_async() returns a Future of a LockTicket for
// executor code (the ticket, not a thread, holds the lock, and may be released from any
// thread). Acquiring a lock the calling thread already holds (it would deadlock) and
// releasing a lock it does not hold are LockErrors; the lock is unchanged.
//
// Condition: wait(lock) releases the lock, waits for notify()/notify_all() (or a
// spurious wake-up: wait in a loop, or use the predicate form), and re-acquires the
// lock before it returns - also when it throws. Waiting without holding the lock is a
// LockError.
//
// Blocking: every wait here parks in the GC-safe state (collections and handshakes never
// wait for a blocked thread), and inside a task whose cancellation token is cancelled it
// ends with CancelledError (the lock not acquired; a Condition wait re-acquires first).
//
// Thread states: the calling thread must be attached to the lock's heap and running
// (NotAttached / ThreadStateError otherwise): a lock is a heap object, and a raw
// reference to one is only safe on a stack its heap's collector scans.
//
// Lock names: Lock is a Clang capability, LockHolder a scoped capability, acquire/
// release/try_acquire carry acquire/release/try-acquire attributes and Condition::wait
// requires the lock. SHOAL_GUARDED_BY(lock) on a field - where `lock` is a Lock, a
// Ref<Lock> or a Member<Lock> - makes clang -Wthread-safety reject every access to it
// without the lock held (include/shoal/thread_annotations.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shoal/future.h"
#include "shoal/internal/mutator.h"
#include "shoal/internal/parking.h"
#include "shoal/managed.h"
#include "shoal/thread_annotations.h"

namespace shoal {

class Executor;
class LockTicket;

class SHOAL_CAPABILITY("shoal::Lock") Lock {
 public:
  static Ref<Lock> create();
  static ClassId class_id();

  // Blocks until the calling thread holds the lock.
  void acquire() SHOAL_ACQUIRE() {
    uint32_t expected = 0;
    const uint64_t me = internal::tls_holder_id;
    if (me != 0 && internal::may_touch_heap_object(this) &&
        state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]] {
      holder_.store(me, std::memory_order_relaxed);
      return;
    }
    acquire_slow();
  }
  // Takes the lock if it is free; never blocks.
  bool try_acquire() SHOAL_TRY_ACQUIRE(true);
  // Waits at most `timeout` for the lock; true when taken.
  bool try_acquire_for(std::chrono::nanoseconds timeout) SHOAL_TRY_ACQUIRE(true);
  void release() SHOAL_RELEASE() {
    const uint64_t me = internal::tls_holder_id;
    if (me != 0 && internal::may_touch_heap_object(this) && holder_.load(std::memory_order_relaxed) == me) [[likely]] {
      holder_.store(0, std::memory_order_relaxed);
      if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
        wake_one();
      return;
    }
    release_slow();
  }
  // A future that completes once a ticket holds the lock; the waiting happens on
  // `executor` (one of its threads blocks, GC-safe, until the lock is free). The caller
  // must be a running thread of the heap (the lock is rooted until the ticket has it).
  Future<LockTicket> acquire_async(Executor& executor);

  bool is_locked() const { return state_.load(std::memory_order_relaxed) != 0; }
  bool is_held_by_current_thread() const;

 private:
  friend class Condition;
  friend class LockTicket;
  // The inline paths' rest: thread-state errors, the holder-id checks, contention.
  void acquire_slow() SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  void release_slow() SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  void wake_one();
  void acquire_as(uint64_t holder, const char* what, bool cancellable) SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  bool acquire_until(uint64_t holder, std::chrono::steady_clock::time_point deadline, const char* what,
                     bool cancellable) SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  void release_as(uint64_t holder, const char* what) SHOAL_NO_THREAD_SAFETY_ANALYSIS;

  // 0 free, 1 held, 2 held and someone may be parked.
  std::atomic<uint32_t> state_{0};
  // Waiters park on it; release bumps it (so does cancellation: a spurious wake-up).
  std::atomic<uint32_t> wake_{0};
  // Who holds it (internal::current_holder_id of a thread, or a ticket's id); 0 if free.
  std::atomic<uint64_t> holder_{0};
};

class Condition {
 public:
  static Ref<Condition> create();
  static ClassId class_id();

  void wait(Lock& lock) SHOAL_REQUIRES(lock);
  // False when the timeout passed without a notification (the lock is held again).
  bool wait_for(Lock& lock, std::chrono::nanoseconds timeout) SHOAL_REQUIRES(lock);
  // The predicate runs with the lock held; annotate a lambda that reads guarded fields
  // SHOAL_REQUIRES(the lock) (Clang does not see through the template's call to it).
  template <class Pred>
  void wait(Lock& lock, Pred ready) SHOAL_REQUIRES(lock) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    while (!ready()) wait(lock);
  }
  void notify();
  void notify_all();

 private:
  bool wait_until(Lock& lock, std::chrono::steady_clock::time_point deadline, const char* what)
      SHOAL_NO_THREAD_SAFETY_ANALYSIS;
  std::atomic<uint32_t> seq_{0};
};

// Holds a lock for the scope's lifetime.
class SHOAL_SCOPED_CAPABILITY LockHolder {
 public:
  explicit LockHolder(Lock& lock) SHOAL_ACQUIRE(lock) : lock_(lock) { lock_.acquire(); }
  ~LockHolder() SHOAL_RELEASE() { lock_.release(); }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

 private:
  Lock& lock_;
};

// Holds a lock on behalf of executor code rather than a thread (Lock::acquire_async).
// Any thread may release it, attached or not (the ticket keeps the lock alive with a
// persistent handle); destroying a ticket that still holds its lock releases it.
// Move-only.
class LockTicket {
 public:
  LockTicket() = default;
  LockTicket(LockTicket&& other) noexcept;
  LockTicket& operator=(LockTicket&& other) noexcept;
  ~LockTicket();
  bool holds() const { return holder_ != 0; }
  void release();

 private:
  friend class Lock;
  LockTicket(Persistent<Lock> root, Lock* lock, uint64_t holder)
      : root_(std::move(root)), lock_(lock), holder_(holder) {}
  Persistent<Lock> root_;  // keeps *lock_ alive (the heap does not move objects)
  Lock* lock_ = nullptr;
  uint64_t holder_ = 0;
};

}  // namespace shoal
