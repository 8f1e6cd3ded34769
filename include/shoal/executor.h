// Executors: where tasks run (docs/concurrency.md, "Executors").
//
//   shoal::ThreadPool pool(heap, 4);                        // 4 attached worker threads
//   auto f = pool.submit([](shoal::Value s) { return s.as_object()->class_id(); }, str.value());
//   shoal::SerialExecutor queue(pool);                      // one task at a time, in order
//   queue.submit([] { ... });
//
// Executor is the interface: execute(Task) queues a task, submit(fn, args...) queues
// fn(args...) and returns a Future of its result. Every executor thread is attached to
// the executor's heap, so tasks allocate and touch heap objects freely, and every idle
// or blocked executor thread waits in the GC-safe state.
//
// Heap arguments: a Value or Ref<T> passed to submit() as an argument is held by a
// persistent handle from submission until the task starts, and is on the task's stack
// from then on - it cannot be collected while the task waits in a queue. References
// captured by a lambda are invisible to the collector: pass them as arguments (or hold
// them in a Persistent), never capture them.
//
// Cancellation: every task runs with a current cancellation token (cancellation.h): the
// executor's own token, which ThreadPool::shutdown_now cancels; a TaskGroup's child
// token for group tasks.
//
// Which parts TSan sees: all of it. The pools, queues and futures are built from
// std::thread, Shoal's annotated Mutex and atomics, with futex parking (which TSan does
// not model but which carries no ordering of its own; see internal/parking.h). oneTBB
// is the benchmark peer (bench/concurrency_bench.cc), not a dependency of these
// classes: Debian's libtbb is not TSan-instrumented, and TBB's workers are not threads
// the collector knows about.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <type_traits>
#include <utility>
#include <vector>

#include "shoal/cancellation.h"
#include "shoal/future.h"
#include "shoal/heap.h"
#include "shoal/internal/mutex.h"
#include "shoal/managed.h"
#include "shoal/persistent.h"

namespace shoal {

namespace internal {
// Task arguments held across the queue: heap references in persistent handles,
// everything else by value.
template <class A>
struct RootedArg {
  std::decay_t<A> value;
  RootedArg(Heap&, A&& a) : value(std::forward<A>(a)) {}
  std::decay_t<A>& get() { return value; }
};
template <>
struct RootedArg<Value> {
  PersistentValue handle;
  Value immediate;
  RootedArg(Heap& heap, Value v) : immediate(v) {
    if (v.is_object()) handle = PersistentValue(heap, v);
  }
  Value get() { return handle.empty() ? immediate : handle.get(); }
};
template <class U>
struct RootedArg<Ref<U>> {
  Persistent<U> handle;
  RootedArg(Heap& heap, Ref<U> r) {
    if (r) handle = Persistent<U>(heap, r);
  }
  Ref<U> get() { return handle.empty() ? Ref<U>() : handle.get(); }
};
template <class U>
struct IsRef : std::false_type {};
template <class U>
struct IsRef<Ref<U>> : std::true_type {};
template <class A>
inline constexpr bool kIsHeapArg = std::is_same_v<std::decay_t<A>, Value> || IsRef<std::decay_t<A>>::value;

template <class A>
auto root_arg(Heap& heap, A&& a) {
  if constexpr (std::is_same_v<std::decay_t<A>, Value>) return RootedArg<Value>(heap, a);
  else if constexpr (IsRef<std::decay_t<A>>::value) return RootedArg<std::decay_t<A>>(heap, a);
  else return RootedArg<A>(heap, std::forward<A>(a));
}

// A task that runs `body` with `token` current.
Task with_token(CancellationToken token, Task body);
}  // namespace internal

class Executor {
 public:
  explicit Executor(Heap& heap) : heap_(&heap) {}
  virtual ~Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`; ExecutorShutdownError once the executor is shutting down. A task
  // should not throw: its exception is caught and counted (uncaught_task_errors()).
  virtual void execute(Task task) = 0;
  // Queues `task` and returns true, or returns false - `task` untouched - when the
  // executor is shutting down. (What SerialExecutor uses on its target; the default
  // forwards to execute, so a refusal of a custom executor throws.)
  virtual bool try_execute(Task& task) {
    execute(std::move(task));
    return true;
  }
  // True when the calling thread is running a task of this executor.
  virtual bool is_current() const = 0;
  // On one of this executor's own threads, runs one queued task and returns true: with
  // a `key`, only a task whose help key (Task::help_key) it is - a thread waiting for a
  // future of a serial executor or actor on this pool runs that executor's drain and
  // nothing else (an unrelated task run on top of the waiter could wait for the
  // executor the waiter holds up: a hang); without, any task - a task group's waiter,
  // which must keep a pool of waiters from starving (fork-join). False when there is
  // none or the executor cannot run tasks out of order here.
  virtual bool help_one(const void* key) {
    (void)key;
    return false;
  }
  // True when a thread of this executor may wait for other tasks of it by helping
  // (help_one) - a pool; false for executors whose tasks cannot run until the current
  // one returns (serial executors, actors).
  virtual bool helps() const { return false; }
  // The executor this one runs its tasks on (a serial executor's target), or null.
  virtual Executor* runs_on() const { return nullptr; }
  // The token its tasks run under.
  virtual CancellationToken token() const = 0;

  Heap& heap() const { return *heap_; }
  size_t uncaught_task_errors() const { return uncaught_.load(std::memory_order_relaxed); }

  // Queues fn(args...) and returns the future of its result. Heap arguments (Value,
  // Ref<T>) are rooted until the task runs; the caller must be a running thread of the
  // heap if any argument is a reference.
  template <class F, class... Args>
  auto submit(F fn, Args&&... args) {
    return submit_with_help_key(nullptr, std::move(fn), std::forward<Args>(args)...);
  }

 protected:
  template <class U>
  friend class TaskGroup;
  // submit, the task marked with a help key (Task::help_key): a task group's children
  // carry their group's, so its waiter can run them first.
  template <class F, class... Args>
  auto submit_with_help_key(const void* key, F fn, Args&&... args) {
    using R = std::invoke_result_t<F&, std::decay_t<Args>&...>;
    Promise<R> promise(this);
    Future<R> future = promise.future();
    auto rooted = std::make_tuple(internal::root_arg(heap(), std::forward<Args>(args))...);
    Task task([promise = std::move(promise), fn = std::move(fn), rooted = std::move(rooted)]() mutable {
      internal::fulfil(promise, [&]() -> R {
        return std::apply([&](auto&... a) -> R { return std::invoke(fn, a.get()...); }, rooted);
      });
    });
    task.set_help_key(key);
    execute(std::move(task));
    return future;
  }

  // Runs a task, counting an escaping exception.
  void run_task(Task& task) noexcept;

 private:
  Heap* heap_;
  std::atomic<size_t> uncaught_{0};
};

// A fixed set of worker threads, attached to the heap for their lifetime, taking tasks
// from one FIFO queue. Idle workers park in the GC-safe state.
//
// Shutdown: shutdown() refuses new tasks, lets the queued ones run and joins the
// workers; shutdown_now() also drops the queued tasks (their futures fail with
// CancelledError) and cancels the pool's token, so running tasks that poll it or block
// in the library end with CancelledError. Both wait in the GC-safe state; called from a
// worker of the pool itself they throw DeadlockError. The destructor is shutdown().
// The heap must outlive the pool (its workers are attached to it).
class ThreadPool final : public Executor {
 public:
  // threads = 0: std::thread::hardware_concurrency(). Worker i's thread is named
  // "<name>-<i>" (for top, perf and debuggers; Linux keeps 15 characters, so a long name
  // is shortened before the suffix).
  explicit ThreadPool(Heap& heap, unsigned threads = 0, std::string name = "shoal-pool");
  ~ThreadPool() override;

  void execute(Task task) override;
  bool try_execute(Task& task) override;
  bool is_current() const override;
  bool help_one(const void* key) override;
  bool helps() const override { return true; }
  CancellationToken token() const override { return token_; }
  void shutdown();
  void shutdown_now();
  size_t size() const { return workers_.size(); }
  const std::string& name() const { return name_; }

 private:
  void worker_main(size_t index);
  bool pop(Task& out) SHOAL_EXCLUDES(mu_);
  void stop(bool drop_queued);

  std::string name_;
  CancellationToken token_;
  internal::Mutex mu_;
  std::deque<Task> queue_ SHOAL_GUARDED_BY(mu_);
  // Queued tasks per help key (help_one(key) scans the queue only when some are there).
  std::unordered_map<const void*, size_t> keyed_ SHOAL_GUARDED_BY(mu_);
  void taken_locked(const Task& t) SHOAL_REQUIRES(mu_);
  bool accepting_ SHOAL_GUARDED_BY(mu_) = true;
  bool stopping_ SHOAL_GUARDED_BY(mu_) = false;
  size_t idle_ SHOAL_GUARDED_BY(mu_) = 0;
  std::atomic<uint32_t> work_wake_{0};
  std::atomic<uint32_t> sleepers_{0};  // workers parked (or about to park) on work_wake_
  std::vector<std::thread> workers_;
  internal::Mutex join_mu_;
};

// Runs its tasks one at a time, in submission order, on another executor (a pool's
// worker borrows itself for a batch, then hands the rest back): Swift's serial executor,
// a dispatch queue. Tasks of one serial executor never overlap, and each one sees
// everything the previous one did. shutdown() (and the destructor) refuses new tasks
// and waits until the queued ones have run (DeadlockError from one of its own tasks).
class SerialExecutor final : public Executor {
 public:
  explicit SerialExecutor(Executor& target);
  ~SerialExecutor() override;

  void execute(Task task) override;
  bool try_execute(Task& task) override;
  bool is_current() const override;
  CancellationToken token() const override { return token_; }
  void shutdown();
  // Drops the queued tasks (their futures fail with CancelledError), cancels the token
  // and waits for the running task.
  void shutdown_now();
  Executor& target() const { return *target_; }
  Executor* runs_on() const override { return target_; }

 private:
  struct DrainCall;
  enum class Enqueued { kRefused, kQueued, kFirst };  // kFirst: into an idle queue
  Enqueued enqueue(Task& task) SHOAL_EXCLUDES(mu_);
  // Queues this executor's drain on its target, and up the chain while targets are idle
  // serial executors; ExecutorShutdownError (the chain abandoned) if one refuses.
  void schedule_drains();
  // Runs the queue (and those of executors running on it, met as its tasks) until it is
  // empty or a batch is done and rescheduled.
  void drain();
  // Stops accepting and drops the queue (its drain call was dropped unrun).
  void abandon();
  void abandon_now() SHOAL_EXCLUDES(mu_);
  void stop(bool drop_queued);
  Executor* target_;
  CancellationToken token_;
  internal::Mutex mu_;
  std::deque<Task> queue_ SHOAL_GUARDED_BY(mu_);
  bool scheduled_ SHOAL_GUARDED_BY(mu_) = false;
  bool accepting_ SHOAL_GUARDED_BY(mu_) = true;
  std::atomic<uint32_t> idle_wake_{0};
};

}  // namespace shoal
