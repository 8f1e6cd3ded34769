// Futures and promises (docs/concurrency.md, "Futures").
//
//   shoal::Future<int64_t> f = pool.submit([](int64_t x) { return x * 2; }, 21);
//   shoal::Future<std::string> g = f.then([](int64_t v) { return std::to_string(v); });
//   int64_t v = f.get();                 // blocks in the GC-safe state
//
// A Future is a shared handle to a result that some task will produce: get() blocks
// until it is there and returns it (or rethrows the task's exception), then() and
// catch_error() chain continuations without blocking. Copies share the result (as
// std::shared_future); any thread may hold, copy and destroy them.
//
// A result of a move-only type (LockTicket, std::unique_ptr) goes to the first get();
// a later get() - on any copy of the future - throws InvalidArgument.
//
// Heap results: a Future<Value> or Future<Ref<T>> keeps its object alive (a persistent
// handle) until the last copy of the future goes. Reading such a result, like any raw
// reference, needs a running thread of the heap (ThreadStateError elsewhere). Results of
// other types are plain C++ values; a struct that hides heap references inside it is
// not rooted (use Value or Ref<T>).
//
// Blocking: get() and wait_for() park in the GC-safe state, so collections never wait
// for them. get() on a thread of the executor that must complete the future (a pool
// worker of that pool, a serial executor's or actor's own task) would risk waiting for
// itself: it throws DeadlockError unless the result is already there. Inside a task
// whose cancellation token is cancelled, get() throws CancelledError.
//
// Continuations run on the executor of the future they chain to (the one its task was
// submitted to) when it has one, else on the thread that completes it - or at once on
// the calling thread if it is already complete. If that executor has shut down, the
// continuation does not run and its future fails with CancelledError. A chain may be as
// long as the program likes: continuations that run on the completing thread nest at
// most 64 deep, the rest wait their turn there - so an inline continuation must not
// block on a later link of its own chain (it would wait for ever).
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "shoal/errors.h"
#include "shoal/heap.h"
#include "shoal/internal/mutex.h"
#include "shoal/internal/parking.h"
#include "shoal/persistent.h"
#include "shoal/value.h"

namespace shoal {

class Executor;
template <class T>
class Future;
template <class T>
class Promise;
template <class T>
class TaskGroup;

// A move-only `void()` callable: the unit of work an executor runs.
class Task {
 public:
  Task() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Task>>>
  Task(F&& f) : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}  // NOLINT: implicit by design
  Task(Task&&) noexcept = default;
  Task& operator=(Task&&) noexcept = default;
  void operator()() { impl_->run(); }
  explicit operator bool() const { return impl_ != nullptr; }
  // What a waiter may help this task for (internal): the serial executor it drains, or
  // the task group it is a child of; null for any other task. A thread waiting for a
  // serial executor's future on a pool worker runs only queued tasks with that key, a
  // task group's waiter its own children first (ThreadPool::help_one).
  const void* help_key() const { return help_key_; }
  void set_help_key(const void* key) { help_key_ = key; }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void run() = 0;
  };
  template <class F>
  struct Impl final : Base {
    explicit Impl(F&& f) : f(std::move(f)) {}
    explicit Impl(const F& f) : f(f) {}
    void run() override { f(); }
    F f;
  };
  std::unique_ptr<Base> impl_;
  const void* help_key_ = nullptr;
};

namespace internal {

// Hands `task` to `e`; if `e` refuses it (shut down), drops it (a promise inside then
// fails its future with CancelledError).
void execute_or_drop(Executor* e, Task task);
// The heap the calling thread is attached to, for rooting a reference result; throws
// ThreadStateError naming `what` if it is not attached and running.
Heap& heap_for_reference(const char* what);

// How a waiting thread helps (FutureCore::helper_while_waiting): the executor whose
// queued tasks it runs - null: it parks - and the help key of those it may run. With
// `then_any` (a task group's waiter on its own pool), when none with the key is queued
// it runs any other queued task - the oldest - unless it is already nested that deep
// in such helping (FutureCore::kMaxHelpsOfOthers): the rest it leaves to the workers.
struct Helping {
  Executor* helper = nullptr;
  const void* key = nullptr;
  bool then_any = false;
};

// The non-template part of a future's shared state.
class FutureCore {
 public:
  // How many helped tasks that are not the waiter's own (Helping::then_any) may be
  // nested on one thread: each lies on the stack above the waiter, and waits in turn.
  static constexpr int kMaxHelpsOfOthers = 8;

  explicit FutureCore(Executor* executor) : executor_(executor) {}
  bool is_ready() const { return ready_.load(std::memory_order_acquire); }
  // Blocks until ready (see the file comment for the errors). `cancellable`: a
  // cancelled current token ends the wait with CancelledError. `check_executor`: refuse
  // (DeadlockError) on a thread of the completing executor.
  void wait(const char* what, bool cancellable = true, bool check_executor = true);
  // Waits at most `timeout`; true when ready.
  bool wait_for(std::chrono::nanoseconds timeout, const char* what);
  // Marks the result there (value or error set before) and runs the continuations.
  void complete();
  // Runs `k` once the future is ready: now, on this thread, if it already is.
  void on_ready(Task k);
  // For a thread about to wait for a task of `e`, when e runs its tasks on other
  // executors (a serial executor or actor on a pool): the one of them whose task this
  // thread is running, if it helps (its queue holds e's pending work - the drain of the
  // chain's executor that runs on it, the help key - and this thread must run it: on a
  // 1-thread pool nobody else will); no helper when the thread may simply park.
  // DeadlockError (naming `what`) when this thread runs a task of one that cannot help
  // (its queue cannot move until this task returns), or may not help now: inside
  // run_native or a handshake operation a helped task would run where the heap may not
  // be touched (internal::may_touch_heap; a helping thread is a pool worker, attached).
  static Helping helper_while_waiting(const Executor& e, const char* what);
  // DeadlockError (naming `what`) when `e`, or an executor it runs on, is a serial
  // executor whose running task is suspended beneath the calling one on this thread (a
  // helped task): it cannot run another task before this one returns.
  static void refuse_wait_for_suspended(const Executor& e, const char* what);
  // Helps run the queued tasks with the help key until ready, napping (GC-safe, 50 us
  // growing to 1 ms) when there is none - a task queued later may be the one needed.
  void help_until_ready(const Helping& helping, const char* what, bool cancellable);
  Executor* executor() const { return executor_; }
  std::exception_ptr error;  // written before complete(), read after is_ready()

 private:
  // The waiters' loop: parks (GC-safe) until ready, the deadline passes (false) or - if
  // `cancellable` - the current token is cancelled (CancelledError naming `what`).
  bool park_until_ready(std::chrono::steady_clock::time_point deadline, const char* what, bool cancellable);
  Executor* executor_;
  std::atomic<bool> ready_{false};
  std::atomic<uint32_t> wake_{0};
  // Threads inside wait(): complete() skips the wake-up system call when there are none
  // (seq_cst on both sides: either the waiter sees ready_ or complete() sees it counted).
  std::atomic<uint32_t> waiters_{0};
  Mutex mu_;
  std::vector<Task> continuations_ SHOAL_GUARDED_BY(mu_);
  bool completed_ SHOAL_GUARDED_BY(mu_) = false;
};

// Where a result of type T waits for its reader. Heap references are held by a
// persistent handle; everything else by value.
template <class T>
struct ResultSlot {
  mutable std::optional<T> value;
  mutable std::atomic<bool> taken{false};  // move-only results: claimed by a get()
  void set(T v) { value.emplace(std::move(v)); }
  // A move-only result goes to the first reader - one of them, when copies of the
  // future race (never two: a LockTicket would have two holders); later ones throw.
  T get() const {
    if constexpr (std::is_copy_constructible_v<T>) {
      return *value;
    } else {
      if (taken.exchange(true, std::memory_order_acq_rel))
        throw InvalidArgument("Future::get: the result, of a move-only type, was taken by an earlier get()");
      return std::move(*value);
    }
  }
};
template <>
struct ResultSlot<void> {};
template <>
struct ResultSlot<Value> {
  PersistentValue handle;
  Value immediate = Value::null();
  void set(Value v) {
    if (v.is_object()) handle = PersistentValue(heap_for_reference("a future's result"), v);
    else immediate = v;
  }
  Value get() const { return handle.empty() ? immediate : handle.get(); }
};
template <class U>
struct ResultSlot<Ref<U>> {
  Persistent<U> handle;
  void set(Ref<U> r) {
    if (r) handle = Persistent<U>(heap_for_reference("a future's result"), r);
  }
  Ref<U> get() const { return handle.empty() ? Ref<U>() : handle.get(); }
};

// A result handed on in a container the collector does not scan (TaskGroup::wait's
// vector): heap references as persistent handles, everything else as it is.
template <class T>
struct RootedResult {
  using type = T;
  static T from(T&& v) { return std::move(v); }
};
template <>
struct RootedResult<Value> {
  using type = PersistentValue;
  static PersistentValue from(Value v) { return PersistentValue(heap_for_reference("TaskGroup::wait"), v); }
};
template <class U>
struct RootedResult<Ref<U>> {
  using type = Persistent<U>;
  static Persistent<U> from(Ref<U> r) { return Persistent<U>(heap_for_reference("TaskGroup::wait"), r); }
};

template <class T>
struct FutureState : FutureCore {
  using FutureCore::FutureCore;
  ResultSlot<T> slot;
};

// Calls produce() and stores its result (or exception) in `promise`.
template <class T, class F>
void fulfil(Promise<T>& promise, F&& produce) {
  try {
    if constexpr (std::is_void_v<T>) {
      std::forward<F>(produce)();
      promise.set_value();
    } else {
      promise.set_value(std::forward<F>(produce)());
    }
  } catch (...) {
    promise.set_exception(std::current_exception());
  }
}

template <class F, class T>
struct ThenResult {
  using type = std::invoke_result_t<F, T>;
};
template <class F>
struct ThenResult<F, void> {
  using type = std::invoke_result_t<F>;
};

}  // namespace internal

// The producing end: set a value or an exception once. A promise destroyed unfulfilled
// fails its future with CancelledError (a task dropped before it ran). Move-only.
template <class T>
class Promise {
 public:
  // `executor`: where continuations run and whose threads may not block on the future.
  explicit Promise(Executor* executor = nullptr) : state_(std::make_shared<internal::FutureState<T>>(executor)) {}
  Promise(Promise&& other) noexcept : state_(std::move(other.state_)), done_(std::exchange(other.done_, false)) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
      done_ = std::exchange(other.done_, false);
    }
    return *this;
  }
  ~Promise() { abandon(); }

  Future<T> future() const { return Future<T>(state_); }

  template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
  void set_value(U v) {
    check_unfulfilled();
    state_->slot.set(std::move(v));
    finish();
  }
  template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
  void set_value() {
    check_unfulfilled();
    finish();
  }
  void set_exception(std::exception_ptr e) {
    check_unfulfilled();
    state_->error = std::move(e);
    finish();
  }

 private:
  void check_unfulfilled() {
    if (!state_ || done_) throw InvalidArgument("Promise: the result is already set");
  }
  void finish() {
    done_ = true;
    state_->complete();
  }
  void abandon() {
    if (state_ && !done_) {
      state_->error = std::make_exception_ptr(CancelledError("the task was dropped before it ran (its executor shut down)"));
      finish();
    }
  }
  std::shared_ptr<internal::FutureState<T>> state_;
  bool done_ = false;
};

template <class T>
class Future {
 public:
  // An empty future (default-constructed or moved from): valid() is false and every
  // other call throws InvalidArgument.
  Future() = default;
  bool valid() const { return state_ != nullptr; }
  bool is_ready() const { return state("Future::is_ready").is_ready(); }

  // Blocks until the result is there and returns it, or rethrows the task's exception.
  T get() const {
    internal::FutureState<T>& s = state("Future::get");
    s.wait("Future::get");
    if (s.error) std::rethrow_exception(s.error);
    if constexpr (!std::is_void_v<T>) return s.slot.get();
  }
  // Blocks until the result is there, without consuming it or throwing the task's
  // error (DeadlockError and CancelledError as get()).
  void wait() const { state("Future::wait").wait("Future::wait"); }
  // Waits at most `timeout`; true when the result is there.
  bool wait_for(std::chrono::nanoseconds timeout) const {
    return state("Future::wait_for").wait_for(timeout, "Future::wait_for");
  }
  // The task's exception, or null (after the future is ready).
  std::exception_ptr error() const {
    internal::FutureState<T>& s = state("Future::error");
    return s.is_ready() ? s.error : nullptr;
  }

  // A future of fn(result) - or of the same error, without calling fn. fn may return a
  // plain value or void.
  template <class F>
  auto then(F fn) const {
    using R = typename internal::ThenResult<F, T>::type;
    Promise<R> next(state("Future::then").executor());
    Future<R> result = next.future();
    auto state = state_;
    state_->on_ready([state, fn = std::move(fn), next = std::move(next)]() mutable {
      if (state->error) {
        next.set_exception(state->error);
        return;
      }
      internal::fulfil(next, [&]() -> R {
        if constexpr (std::is_void_v<T>) return fn();
        else return fn(state->slot.get());
      });
    });
    return result;
  }
  // A future of the same value - or, on error, of fn(exception_ptr), which returns a T
  // (or rethrows).
  template <class F>
  Future<T> catch_error(F fn) const {
    Promise<T> next(state("Future::catch_error").executor());
    Future<T> result = next.future();
    auto state = state_;
    state_->on_ready([state, fn = std::move(fn), next = std::move(next)]() mutable {
      internal::fulfil(next, [&]() -> T {
        if (state->error) return fn(state->error);
        if constexpr (!std::is_void_v<T>) return state->slot.get();
      });
    });
    return result;
  }

 private:
  friend class Promise<T>;
  template <class U>
  friend class TaskGroup;
  explicit Future(std::shared_ptr<internal::FutureState<T>> s) : state_(std::move(s)) {}
  internal::FutureState<T>& state(const char* what) const {
    if (!state_) throw InvalidArgument(std::string(what) + ": an empty future (default-constructed or moved from)");
    return *state_;
  }
  std::shared_ptr<internal::FutureState<T>> state_;
};

// A future that is already complete with `v`.
template <class T>
Future<std::decay_t<T>> make_ready_future(T&& v) {
  Promise<std::decay_t<T>> p;
  p.set_value(std::forward<T>(v));
  return p.future();
}

}  // namespace shoal
