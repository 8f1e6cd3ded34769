// Structured concurrency: task groups (docs/concurrency.md, "Task groups").
//
//   shoal::TaskGroup<int64_t> group(pool);
//   for (auto& part : parts) group.spawn([](shoal::Value p) { return count(p); }, part);
//   std::vector<int64_t> counts = group.wait();   // every result, or the first error
//
// A group's children run on its executor under the group's token, a child of the
// creating thread's current token: cancelling the creator (its task, thread or group)
// cancels the children, and cancel() cancels them directly. The first child to fail
// records its exception and cancels the group, so its siblings see CancelledError at
// their next check_cancelled() or blocking wait. wait() waits for every child - always
// all of them, so no child outlives the group - then returns every result in spawn
// order, or rethrows the first failure. Heap results come back rooted, as a
// std::vector<PersistentValue> for TaskGroup<Value> and std::vector<Persistent<U>> for
// TaskGroup<Ref<U>> (a std::vector is not scanned: raw references in one would be
// freed by the next collection); reading them needs a running thread of the heap.
//
// Waiting from inside the executor: on a ThreadPool worker, wait() runs queued tasks of
// the pool while its children are unfinished - its own children first, others only a
// few deep on one thread - looking at the queue again after each short nap (fork-join
// without deadlock, even for tasks queued later, and with a stack as deep as the
// program's own recursion); a group over
// a serial executor or actor cannot be created from that executor's own task (its
// children could not start before the task returns): DeadlockError.
//
// The destructor of a group not waited for cancels it and waits for the children.
#pragma once

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "shoal/cancellation.h"
#include "shoal/executor.h"
#include "shoal/future.h"
#include "shoal/internal/mutator.h"

namespace shoal {

template <class T = void>
class TaskGroup {
 public:
  explicit TaskGroup(Executor& executor)
      : executor_(&executor), token_(CancellationToken::current().child()), shared_(std::make_shared<Shared>()) {
    if (executor.is_current() && !executor.helps())
      throw DeadlockError("TaskGroup: created from a task of its own serial executor; its children could not start "
                          "before this task returns");
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    if (futures_.empty()) return;
    token_.cancel();
    try {
      await_all();
    } catch (...) {
    }
  }

  // Queues fn(args...) as a child (heap arguments rooted as Executor::submit does).
  template <class F, class... Args>
  void spawn(F fn, Args&&... args) {
    auto shared = shared_;
    auto token = token_;
    futures_.push_back(executor_->submit_with_help_key(
        shared_.get(), [shared, token, fn = std::move(fn)](auto&&... a) mutable -> T {
          CancellationScope scope(token);
          try {
            return fn(std::forward<decltype(a)>(a)...);
          } catch (...) {
            {
              internal::NoPreemptScope no_preempt_lock;  // (a running thread may wait for this lock)
              std::lock_guard<std::mutex> lock(shared->mu);
              if (!shared->first_error) shared->first_error = std::current_exception();
            }
            token.cancel();
            throw;
          }
        },
        std::forward<Args>(args)...));
  }

  // Waits for every child; their results in spawn order (heap results rooted, see
  // above), or the first failure.
  auto wait() {
    await_all();
    std::exception_ptr error;
    {
      internal::NoPreemptScope no_preempt_lock;  // (a running thread may wait for this lock)
      std::lock_guard<std::mutex> lock(shared_->mu);
      error = shared_->first_error;
    }
    std::vector<Future<T>> done = std::move(futures_);
    futures_.clear();
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>) {
      for (auto& f : done) f.get();  // a child dropped unrun (executor shut down) fails here
    } else {
      // (A vector is not scanned: heap results go in as persistent handles.)
      using Rooted = internal::RootedResult<T>;
      std::vector<typename Rooted::type> results;
      results.reserve(done.size());
      for (auto& f : done) results.push_back(Rooted::from(f.get()));
      return results;
    }
  }

  void cancel() { token_.cancel(); }
  const CancellationToken& token() const { return token_; }
  size_t size() const { return futures_.size(); }

 private:
  struct Shared {
    std::mutex mu;
    std::exception_ptr first_error;
  };
  // Waits (not cancellably: the children are cancelled with us) for every child; on the
  // executor's own threads, helps it run queued tasks meanwhile - and keeps coming back
  // to the queue while it waits (naps of 50 us growing to 1 ms): a task queued after this
  // thread found the queue empty may be the one a child needs, with every other worker
  // busy or waiting like this one (nested groups on a small pool: parked for good, the
  // waiters starved the pool - a hang found by a CI run).
  // A group over a serial executor or actor that runs on a pool, waited for on a worker
  // of that pool, helps the pool the same way (its children's drain is queued there);
  // on a thread running a task of an executor that cannot help: DeadlockError.
  void await_all() {
    // On the group's own pool: its own queued children first (newest first, as a
    // work-first scheduler: the stack grows with the program's own fork-join depth),
    // then any queued task, up to FutureCore::kMaxHelpsOfOthers of those nested on this
    // thread (a pool whose workers all wait for their groups must still run the tasks
    // queued behind them); over a serial executor on a pool: that executor's drain.
    internal::FutureCore::refuse_wait_for_suspended(*executor_, "TaskGroup::wait");
    internal::Helping helping;
    if (executor_->is_current())
      helping = {internal::may_touch_heap() ? executor_ : nullptr, shared_.get(), /*then_any=*/true};
    else helping = internal::FutureCore::helper_while_waiting(*executor_, "TaskGroup::wait");
    for (auto& f : futures_) {
      if (helping.helper) f.state_->help_until_ready(helping, "TaskGroup::wait", /*cancellable=*/false);
      else f.state_->wait("TaskGroup::wait", /*cancellable=*/false, /*check_executor=*/false);
    }
  }

  Executor* executor_;
  CancellationToken token_;
  std::shared_ptr<Shared> shared_;
  std::vector<Future<T>> futures_;
};

}  // namespace shoal
