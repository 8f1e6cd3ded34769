// Actors, global actors and workers (docs/concurrency.md, "Actors" and "Workers").
//
//   shoal::Actor counter(group, "counter", [] { return shoal::AtomicInt64::create().value(); });
//   shoal::Future<int64_t> n = counter.call([](shoal::Value state) {
//     return shoal::Ref<shoal::AtomicInt64>::from_value(state)->fetch_add(1) + 1; });
//
// Actor (Swift): an isolate of its own, a state object living in it, and a serial
// executor. call(fn, args...) queues fn(state, args...) and returns a Future of its
// result; the calls run one at a time, in order, inside the actor's isolate, so the
// state - an ordinary mutable object owned by that isolate - is only ever touched by the
// actor. What crosses into and out of the actor must be shareable (the runtime form of
// Swift's Sendable): an argument that is a reference to a non-shareable object is
// refused at call() with NotShareableError (nothing queued), and so is such a result
// (the future fails with NotShareableError) - unless the group shares everything.
// Plain C++ arguments and results (numbers, strings, structs) are copied.
//
// Each Actor, GlobalActor and Worker takes one of its group's isolates (at most 2^22 - 2
// over the group's lifetime: ids are not reused); destroying it drops its isolated
// globals' copies at once (docs/concurrency.md, "Actors").
//
// Re-entrancy: an actor's call runs to completion; the actor does not interleave
// another call at a blocking point (Swift's actors do, at each await). A call that
// blocks on another actor's future blocks this actor meanwhile (in the GC-safe state);
// one that waits on a future of its own actor gets DeadlockError (it would wait for
// itself). Two actors that wait on each other synchronously deadlock: chain with then()
// instead.
//
// Executors: an actor runs on `target` if given (a ThreadPool shared by many actors),
// else on a thread of its own. GlobalActor runs on one named thread instead: the thread
// that calls run() (the Dart proposal's "main / UI thread" case: calls from any thread,
// executed on the one thread a native toolkit insists on).
//
// Worker (Kotlin/Native): an isolate with a thread. execute(mode, producer, job) runs
// producer() on the calling thread, hands its result to the worker by `mode` (the
// sharing model's transfer: kShare, kCopy, kTransfer = SAFE, kTransferUnsafe = UNSAFE;
// the same checks and errors as a port send, thrown here with nothing queued), and runs
// job(value) on the worker's thread inside its isolate; the future gets job's result,
// under the same Sendable rule as an actor's.
//
// Shutdown: shutdown() (and the destructor) refuses new calls, runs the queued ones and
// stops; from one of the actor's own calls it throws DeadlockError (the destructor
// aborts). A GlobalActor cannot run calls without its thread: its shutdown drops the
// calls not yet run (their futures fail with CancelledError) and makes a running run()
// return. Call shutdown() before the group is destroyed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "shoal/errors.h"
#include "shoal/executor.h"
#include "shoal/isolate.h"
#include "shoal/ports.h"
#include "shoal/sharing.h"

namespace shoal {

namespace internal {
// Throws NotShareableError when `v` may not cross into or out of an actor of `group`.
void check_sendable(IsolateGroup& group, Value v, const char* who, const std::string& name, const char* what);
template <class A>
void check_sendable_arg(IsolateGroup& group, const A& a, const char* who, const std::string& name) {
  if constexpr (std::is_same_v<std::decay_t<A>, Value>) check_sendable(group, a, who, name, "an argument");
  else if constexpr (IsRef<std::decay_t<A>>::value) check_sendable(group, a.value(), who, name, "an argument");
}
template <class R>
void check_sendable_result(IsolateGroup& group, const R& r, const char* who, const std::string& name) {
  if constexpr (std::is_same_v<std::decay_t<R>, Value>) check_sendable(group, r, who, name, "the result");
  else if constexpr (IsRef<std::decay_t<R>>::value) check_sendable(group, r.value(), who, name, "the result");
}
}  // namespace internal

// An executor whose tasks run on the one thread that calls run() (or run_pending()).
class RunLoop final : public Executor {
 public:
  explicit RunLoop(Heap& heap);
  ~RunLoop() override;
  void execute(Task task) override;
  bool try_execute(Task& task) override;
  bool is_current() const override;
  CancellationToken token() const override { return token_; }
  // Runs tasks on the calling (attached) thread until stop(), waiting GC-safe while
  // idle. Only one thread may run a loop at a time (InvalidArgument otherwise).
  void run();
  // Runs the tasks queued now and returns how many ran.
  size_t run_pending();
  // Makes the current (or, if none runs, the next) run() return after the task it is
  // running; new tasks are still accepted.
  void stop();
  // Refuses new tasks, drops the queued ones (their futures fail with CancelledError)
  // and makes a running run() return. The destructor does this, then waits for run()
  // to return.
  void shutdown();

 private:
  bool pop(Task& out, bool wait);
  // run() and run_pending() claim the loop for the calling thread (`what` names the
  // caller in the error when another thread has it) and give it back when they return
  // or throw - attaching to the loop's heap can throw.
  class Claim;
  CancellationToken token_;
  internal::Mutex mu_;
  std::deque<Task> queue_ SHOAL_GUARDED_BY(mu_);
  bool accepting_ SHOAL_GUARDED_BY(mu_) = true;
  bool stop_ SHOAL_GUARDED_BY(mu_) = false;
  bool running_ SHOAL_GUARDED_BY(mu_) = false;
  std::atomic<uint32_t> wake_{0};
};

class Actor {
 public:
  // `init` (optional) runs first, inside the actor's isolate; its result is the state
  // (null without one). `target`: the executor to run on (null: a thread of its own).
  Actor(IsolateGroup& group, std::string name, std::function<Value()> init = {}, Executor* target = nullptr);
  virtual ~Actor();
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  // Queues fn(state, args...) (see the file comment).
  template <class F, class... Args>
  auto call(F fn, Args&&... args) {
    // (The thread first: the sendable check reads the argument's header, which only a
    // running thread of the heap may - submit's own check would come too late.)
    if constexpr ((internal::kIsHeapArg<Args> || ...))
      (void)internal::heap_for_reference("Actor::call");
    (internal::check_sendable_arg(*group_, args, "Actor", name_), ...);
    return serial_->submit(
        [this, fn = std::move(fn)](auto&&... a) mutable {
          IsolateScope in(*isolate_);
          auto result = fn(state_.get(), std::forward<decltype(a)>(a)...);
          internal::check_sendable_result(*group_, result, "Actor", name_);
          return result;
        },
        std::forward<Args>(args)...);
  }

  Isolate& isolate() const { return *isolate_; }
  const std::string& name() const { return name_; }
  // True while the calling thread runs one of this actor's calls.
  bool is_current() const { return serial_->is_current(); }
  Executor& executor() const { return *serial_; }
  void shutdown();

 protected:
  Actor(IsolateGroup& group, std::string name, std::function<Value()> init, std::unique_ptr<RunLoop> loop);

 private:
  void start(std::function<Value()> init);
  IsolateGroup* group_;
  std::string name_;
  Isolate* isolate_;
  std::unique_ptr<ThreadPool> own_thread_;
  std::unique_ptr<RunLoop> loop_;
  std::unique_ptr<SerialExecutor> serial_;
  PersistentValue state_;  // written by the first call, read by later ones (serial)
};

// An actor bound to one thread: the one that calls run(). Global actors are registered
// by name (find()) for code that needs "the main actor" without a reference to it.
class GlobalActor final : public Actor {
 public:
  GlobalActor(IsolateGroup& group, std::string name, std::function<Value()> init = {});
  ~GlobalActor() override;
  // Runs the actor's calls on the calling thread until stop() (the thread must be
  // attached to the group's heap or outside any heap: it is attached for the loop).
  void run();
  size_t run_pending();
  void stop();
  static GlobalActor* find(const std::string& name);

 private:
  RunLoop* run_loop_;
};

class Worker {
 public:
  Worker(IsolateGroup& group, std::string name);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  template <class P, class J>
  auto execute(SendMode mode, P producer, J job) {
    Value v = producer();
    internal::block_gc_safe([&] { mu_.native().lock(); });
    std::unique_lock<std::mutex> hold(mu_.native(), std::adopt_lock);
    if (closed_) throw ExecutorShutdownError("Worker '" + name_ + "': shut down, the job was not queued");
    to_worker_.send(v, mode);  // checks and errors as a port send; nothing queued if it throws
    return pool_->submit([this, job = std::move(job)]() mutable {
      IsolateScope in(*isolate_);
      auto result = job(inbox_->receive());
      internal::check_sendable_result(*group_, result, "Worker", name_);
      return result;
    });
  }

  Isolate& isolate() const { return *isolate_; }
  const std::string& name() const { return name_; }
  // Refuses new jobs, runs the queued ones and stops the thread.
  void shutdown();

 private:
  IsolateGroup* group_;
  std::string name_;
  Isolate* isolate_;
  std::unique_ptr<ReceivePort> inbox_;
  SendPort to_worker_;
  std::unique_ptr<ThreadPool> pool_;
  internal::Mutex mu_;  // orders sends with job submissions
  bool closed_ = false;  // under mu_
};

}  // namespace shoal
