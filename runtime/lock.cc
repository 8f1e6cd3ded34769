// Lock and Condition (include/shoal/lock.h): heap objects built on futex parking
// (include/shoal/internal/parking.h).
//
// Lock: `state_` is 0 (free), 1 (held) or 2 (held, and a waiter may be parked). The fast
// path (inline in lock.h) is a thread-state check, one CAS 0 -> 1 and one exchange back
// to 0; a CAS that fails - also the owner's own re-acquire - goes to acquire_slow. A waiter reads `wake_`, then
// exchanges the state to 2: if it was 0 the waiter now holds the lock (conservatively
// marked contended); otherwise it parks on `wake_` with the value it read. release()
// exchanges the state to 0 and, if it was 2, bumps `wake_` and wakes one waiter: a
// release between the waiter's read of `wake_` and its park changes the word, so the
// park returns at once - no lost wake-up. A waiter that gives up (timeout, cancellation)
// after it may have consumed a wake-up passes it on if the lock is free or contended.
// The acquire CAS / exchange is acquire and the release exchange is release: everything
// the previous holder did happens before the next holder's critical section (TSan sees
// these edges).
//
// `holder_` records who holds the lock, for the LockErrors: written by the acquirer
// after it wins, cleared by the releaser before it lets go; a thread only ever compares
// it with its own id, which only it can have written.
//
// Condition: a sequence number. wait() reads it, releases the lock, parks on it, and
// re-acquires; notify bumps it and wakes one (notify_all: all). A notify after the read
// changes the word, so the park returns at once.
#include "shoal/lock.h"

#include <string>

#include "gc/thread_registry.h"
#include "objects/builtin_class.h"
#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/executor.h"
#include "shoal/internal/parking.h"

namespace shoal {

namespace {
using internal::Clock;

// `payload`: the Lock or Condition itself, which must be of the thread's heap.
void require_running(const char* what, const void* payload) {
  internal::MutatorThread* t = internal::current_thread();
  if (!t)
    throw NotAttached(std::string(what) +
                      ": a Lock or Condition is a heap object; use it from a thread attached to its heap");
  internal::check_heap_access(t, what);
  internal::check_object_heap(t, Object::from_payload(const_cast<void*>(payload)), what);
}
}  // namespace

// --- Lock ---

ClassId Lock::class_id() {
  static const ClassId id = internal::define_fixed_builtin("Lock", sizeof(Lock), {}, header::kTriviallyShareable);
  return id;
}

Ref<Lock> Lock::create() {
  Object* o = internal::allocate_unowned(class_id());
  new (o->payload()) Lock();
  return Ref<Lock>::from_object(o);
}

bool Lock::is_held_by_current_thread() const {
  return holder_.load(std::memory_order_relaxed) == internal::current_holder_id();
}

void Lock::acquire_slow() {
  require_running("Lock::acquire", this);
  acquire_as(internal::current_holder_id(), "Lock::acquire", true);
}

void Lock::wake_one() { internal::bump_and_unpark(wake_, 1); }

bool Lock::try_acquire() {
  require_running("Lock::try_acquire", this);
  const uint64_t me = internal::current_holder_id();
  if (holder_.load(std::memory_order_relaxed) == me)
    throw LockError("Lock::try_acquire: the calling thread already holds this lock (it is not reentrant)");
  uint32_t expected = 0;
  if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) return false;
  holder_.store(me, std::memory_order_relaxed);
  return true;
}

bool Lock::try_acquire_for(std::chrono::nanoseconds timeout) {
  require_running("Lock::try_acquire_for", this);
  return acquire_until(internal::current_holder_id(), internal::deadline_after(timeout), "Lock::try_acquire_for", true);
}

void Lock::release_slow() {
  require_running("Lock::release", this);
  release_as(internal::current_holder_id(), "Lock::release");
}

void Lock::acquire_as(uint64_t holder, const char* what, bool cancellable) {
  acquire_until(holder, Clock::time_point::max(), what, cancellable);
}

bool Lock::acquire_until(uint64_t holder, Clock::time_point deadline, const char* what, bool cancellable) {
  if (holder_.load(std::memory_order_relaxed) == holder)
    throw LockError(std::string(what) + ": the caller already holds this lock (it is not reentrant; this would deadlock)");
  uint32_t expected = 0;
  if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]] {
    holder_.store(holder, std::memory_order_relaxed);
    return true;
  }
  bool woken = false, timed_out = false;
  for (;;) {
    const uint32_t seen = wake_.load(std::memory_order_acquire);
    if (state_.exchange(2, std::memory_order_acquire) == 0) {
      holder_.store(holder, std::memory_order_relaxed);
      return true;
    }
    const bool cancelled = cancellable && internal::cancel_state_cancelled(internal::current_cancel_state());
    if (cancelled || timed_out) {
      // Pass on a wake-up this waiter may have consumed.
      if (woken && state_.load(std::memory_order_relaxed) != 1) internal::bump_and_unpark(wake_, 1);
      if (cancelled) internal::throw_cancelled(what);
      return false;
    }
    timed_out = !internal::park(wake_, seen, deadline, cancellable);  // timed out: one more try, then give up
    woken = true;
  }
}

void Lock::release_as(uint64_t holder, const char* what) {
  if (holder_.load(std::memory_order_relaxed) != holder)
    throw LockError(std::string(what) + (state_.load(std::memory_order_relaxed) == 0
                                             ? ": the lock is not held"
                                             : ": the lock is held by another thread or ticket, not the caller"));
  holder_.store(0, std::memory_order_relaxed);
  if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
}

Future<LockTicket> Lock::acquire_async(Executor& executor) {
  require_running("Lock::acquire_async", this);
  Persistent<Lock> root(executor.heap(), Ref<Lock>::from_object(Object::from_payload(this)));
  Lock* self = this;
  return executor.submit([root = std::move(root), self]() mutable {
    const uint64_t ticket = internal::new_holder_id();
    self->acquire_as(ticket, "Lock::acquire_async", true);
    return LockTicket(std::move(root), self, ticket);
  });
}

// --- LockTicket ---

LockTicket::LockTicket(LockTicket&& other) noexcept
    : root_(std::move(other.root_)), lock_(std::exchange(other.lock_, nullptr)), holder_(std::exchange(other.holder_, 0)) {}

LockTicket& LockTicket::operator=(LockTicket&& other) noexcept {
  if (this != &other) {
    if (holds()) release();
    root_ = std::move(other.root_);
    lock_ = std::exchange(other.lock_, nullptr);
    holder_ = std::exchange(other.holder_, 0);
  }
  return *this;
}

LockTicket::~LockTicket() {
  if (holds()) release();
}

void LockTicket::release() {
  if (!holds()) throw LockError("LockTicket::release: the ticket holds no lock (released already, or moved from)");
  // A ticket that outlived its heap: the lock is gone with it (the handle reads as null).
  if (root_) lock_->release_as(holder_, "LockTicket::release");
  holder_ = 0;
  root_.reset();
  lock_ = nullptr;
}

// --- Condition ---

ClassId Condition::class_id() {
  static const ClassId id =
      internal::define_fixed_builtin("Condition", sizeof(Condition), {}, header::kTriviallyShareable);
  return id;
}

Ref<Condition> Condition::create() {
  Object* o = internal::allocate_unowned(class_id());
  new (o->payload()) Condition();
  return Ref<Condition>::from_object(o);
}

// Waits on `seq_` (read before the lock is released) and re-acquires the lock, not
// cancellably: the caller holds the lock again on every way out.
bool Condition::wait_until(Lock& lock, Clock::time_point deadline, const char* what) {
  require_running(what, this);
  const uint64_t me = internal::current_holder_id();
  if (lock.holder_.load(std::memory_order_relaxed) != me)
    throw LockError(std::string(what) + ": the calling thread does not hold the lock");
  const uint32_t seen = seq_.load(std::memory_order_acquire);
  lock.release_as(me, what);
  const bool in_time = internal::park(seq_, seen, deadline, true);
  lock.acquire_as(me, what, /*cancellable=*/false);
  if (internal::cancel_state_cancelled(internal::current_cancel_state())) {
    // This waiter may have consumed a notify() meant for another: pass it on (a
    // cancelled waiter must not swallow a notification).
    if (seq_.load(std::memory_order_relaxed) != seen) internal::bump_and_unpark(seq_, 1);
    internal::throw_cancelled(what);
  }
  return in_time;
}

void Condition::wait(Lock& lock) { wait_until(lock, Clock::time_point::max(), "Condition::wait"); }

bool Condition::wait_for(Lock& lock, std::chrono::nanoseconds timeout) {
  return wait_until(lock, internal::deadline_after(timeout), "Condition::wait_for");
}

void Condition::notify() {
  require_running("Condition::notify", this);
  internal::bump_and_unpark(seq_, 1);
}

void Condition::notify_all() {
  require_running("Condition::notify_all", this);
  internal::bump_and_unpark(seq_, INT32_MAX);
}

}  // namespace shoal
