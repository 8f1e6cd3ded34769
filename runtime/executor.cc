// Futures' shared state, thread pools and serial executors (include/shoal/future.h,
// include/shoal/executor.h).
//
// ThreadPool: one FIFO queue under mu_. A worker that finds it empty counts itself idle
// and reads work_wake_ under mu_, then parks on it (GC-safe); execute() pushes under mu_
// and, if any worker is idle, bumps work_wake_ and wakes one. Because the push and the
// idle count are both under mu_, either the worker saw the task or execute() saw the
// worker idle and changed the word it sleeps on: no task waits while a worker sleeps.
//
// SerialExecutor: a queue and a `scheduled` flag under mu_. The first task into an idle
// queue schedules one drain() on the target; drain runs tasks one by one (a batch of up
// to kBatch, then it re-schedules itself so one busy queue cannot hold a pool worker
// forever) and clears `scheduled` when the queue is empty. (Chains of serial executors:
// "--- SerialExecutor ---" below.) Exactly one drain is
// scheduled or running while `scheduled` is set, so tasks never overlap; mu_ orders
// each task after the previous one. Waiters for an idle queue (shutdown) park on
// idle_wake_, which drain bumps while still holding mu_, so the executor cannot be
// destroyed under it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "gc/thread_registry.h"
#include "runtime/isolate_context.h"
#include "shoal/executor.h"

namespace shoal {

namespace {
constinit thread_local const ThreadPool* tls_pool = nullptr;
constinit thread_local const SerialExecutor* tls_serial = nullptr;
// The serial executors whose running task is suspended beneath a helped task on this
// thread (ThreadPool::help_one), innermost first: none of them can run another task
// until the helped task returns.
struct SuspendedSerial {
  const Executor* serial;
  const SuspendedSerial* next;
};
constinit thread_local const SuspendedSerial* tls_suspended = nullptr;
constexpr int kBatch = 64;

[[noreturn]] void abort_with(const char* message) {
  std::fprintf(stderr, "shoal: %s\n", message);
  std::abort();
}
}  // namespace

namespace internal {

void execute_or_drop(Executor* e, Task task) {
  try {
    e->execute(std::move(task));
  } catch (...) {
    // Refused (shut down) or failed (out of memory): the task, moved into execute's
    // parameter, is gone and its promise has failed. Runs inside ~Promise: no throw.
  }
}

Heap& heap_for_reference(const char* what) {
  MutatorThread* t = current_thread();
  if (!t)
    throw ThreadStateError(std::string(what) +
                           ": a heap reference needs a running thread of the heap to root it (this one is not attached)");
  check_heap_access(t, what);
  return *current_heap();
}

Task with_token(CancellationToken token, Task body) {
  return [token = std::move(token), body = std::move(body)]() mutable {
    CancellationScope scope(token);
    body();
  };
}

void FutureCore::wait(const char* what, bool cancellable, bool check_executor) {
  if (is_ready()) return;
  if (check_executor && executor_ && executor_->is_current())
    throw DeadlockError(std::string(what) +
                        ": this thread runs a task of the executor that must complete the future; waiting here could "
                        "wait for itself (chain with then(), or wait outside the executor)");
  if (check_executor && executor_) {
    refuse_wait_for_suspended(*executor_, what);
    if (const Helping helping = helper_while_waiting(*executor_, what); helping.helper) {
      help_until_ready(helping, what, cancellable);
      return;
    }
  }
  if (spin_until([&] { return is_ready(); }, 2048)) return;
  park_until_ready(Clock::time_point::max(), what, cancellable);
}

Helping FutureCore::helper_while_waiting(const Executor& e, const char* what) {
  const Executor* below = &e;  // the chain's executor that runs on x: its drain is x's task
  for (Executor* x = e.runs_on(); x != nullptr; below = x, x = x->runs_on()) {
    if (!x->is_current()) continue;
    if (x->helps()) {
      if (may_touch_heap()) return {x, below};
      throw DeadlockError(std::string(what) +
                          ": waiting inside run_native or a handshake operation on a worker of the pool that must run "
                          "the future's executor: the wait cannot run its queued drain there (the heap may not be "
                          "touched), and on a busy pool nothing else would (wait outside run_native)");
    }
    throw DeadlockError(std::string(what) +
                        ": this thread runs a task of the executor the future's executor runs on, which cannot run "
                        "another task until this one returns (chain with then(), or wait outside it)");
  }
  return {};
}

void FutureCore::refuse_wait_for_suspended(const Executor& e, const char* what) {
  for (const SuspendedSerial* s = tls_suspended; s != nullptr; s = s->next)
    for (const Executor* x = &e; x != nullptr; x = x->runs_on())
      if (x == s->serial)
        throw DeadlockError(std::string(what) +
                            ": the future needs a serial executor or actor whose running task is suspended beneath this "
                            "one on this thread (this task was run by that task's wait, which helped): it cannot go on "
                            "until this task returns");
}

namespace {
constinit thread_local int tls_helps_of_others = 0;  // nested Helping::then_any helps

// One queued task with the waiter's key; else, with then_any and below the nesting
// limit, any other. (Keyed help nests as deep as the program's own fork-join
// recursion; help of others - FIFO, unrelated to the waiter - would nest once per queued
// task: a fork-join tree of 35,000 tasks on two workers overflowed a stack.)
bool help_once(Executor& helper, const Helping& helping) {
  if (helper.help_one(helping.key)) return true;
  if (!helping.then_any || helping.key == nullptr || tls_helps_of_others >= FutureCore::kMaxHelpsOfOthers) return false;
  ++tls_helps_of_others;
  struct Leave {
    ~Leave() { --tls_helps_of_others; }
  } leave;
  return helper.help_one(nullptr);
}
}  // namespace

void FutureCore::help_until_ready(const Helping& helping, const char* what, bool cancellable) {
  Executor& helper = *helping.helper;
  std::chrono::nanoseconds nap = std::chrono::microseconds(50);
  for (;;) {
    bool helped = false;
    while (!is_ready() && help_once(helper, helping)) helped = true;
    if (is_ready()) return;
    nap = helped ? std::chrono::microseconds(50) : std::min<std::chrono::nanoseconds>(2 * nap, std::chrono::milliseconds(1));
    if (park_until_ready(deadline_after(nap), what, cancellable)) return;
  }
}

bool FutureCore::wait_for(std::chrono::nanoseconds timeout, const char* what) {
  if (is_ready()) return true;
  if (executor_ && executor_->is_current())
    throw DeadlockError(std::string(what) + ": this thread runs a task of the executor that must complete the future");
  return park_until_ready(deadline_after(timeout), what, true);
}

bool FutureCore::park_until_ready(Clock::time_point deadline, const char* what, bool cancellable) {
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  struct Leave {
    std::atomic<uint32_t>& n;
    ~Leave() { n.fetch_sub(1, std::memory_order_relaxed); }
  } leave{waiters_};
  for (;;) {
    const uint32_t seen = wake_.load(std::memory_order_acquire);
    if (ready_.load(std::memory_order_seq_cst)) return true;
    if (cancellable) check_cancelled_in(what);
    if (!park(wake_, seen, deadline, cancellable)) return is_ready();
  }
}

namespace {
// Handing a continuation on nests: without an executor it runs here, completes the next
// future and hands on that one's continuation; with one that refuses it (shut down),
// dropping it abandons the next promise, which completes that future... A chain of
// then()s as long as the program likes would nest as deep and overflow the stack. So
// past kNestedHandOns on a thread, a continuation waits in the outermost hand-on's
// backlog, which runs it once the continuation it is running returns. (A continuation
// at that depth that blocks on a later one's result would wait for ever: continuations
// must not block - include/shoal/future.h.)
constexpr int kNestedHandOns = 64;
struct HandOn {
  Executor* executor;
  Task k;
};
constinit thread_local int tls_hand_on_depth = 0;
constinit thread_local std::vector<HandOn>* tls_hand_on_backlog = nullptr;

void run_hand_on(HandOn& h) {
  if (h.executor) execute_or_drop(h.executor, std::move(h.k));
  else h.k();
}

void hand_on(Executor* executor, Task k) {
  if (tls_hand_on_depth >= kNestedHandOns) {
    tls_hand_on_backlog->push_back({executor, std::move(k)});
    return;
  }
  std::vector<HandOn> backlog;  // (the outermost's; destroyed after `depth` below)
  const bool outermost = tls_hand_on_depth == 0;
  if (outermost) tls_hand_on_backlog = &backlog;
  struct Depth {
    bool outermost;
    Depth(bool o) : outermost(o) { ++tls_hand_on_depth; }
    ~Depth() {
      --tls_hand_on_depth;
      if (outermost) tls_hand_on_backlog = nullptr;
    }
  } depth(outermost);
  HandOn first{executor, std::move(k)};
  run_hand_on(first);
  if (!outermost) return;
  for (size_t i = 0; i < backlog.size(); ++i) {
    HandOn next = std::move(backlog[i]);  // (runs at depth 1; may append to backlog)
    run_hand_on(next);
  }
}
}  // namespace

void FutureCore::complete() {
  std::vector<Task> ks;
  {
    MutexLock lock(mu_);
    ready_.store(true, std::memory_order_seq_cst);
    completed_ = true;
    ks.swap(continuations_);
  }
  if (waiters_.load(std::memory_order_seq_cst) != 0) bump_and_unpark(wake_, INT32_MAX);
  for (Task& k : ks) hand_on(executor_, std::move(k));
}

void FutureCore::on_ready(Task k) {
  {
    MutexLock lock(mu_);
    if (!completed_) {
      continuations_.push_back(std::move(k));
      return;
    }
  }
  hand_on(nullptr, std::move(k));
}

}  // namespace internal

void Executor::run_task(Task& task) noexcept {
  try {
    task();
  } catch (...) {
    uncaught_.fetch_add(1, std::memory_order_relaxed);
  }
}

// --- ThreadPool ---

ThreadPool::ThreadPool(Heap& heap, unsigned threads, std::string name) : Executor(heap), name_(std::move(name)) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads);
  try {
    for (unsigned i = 0; i < threads; ++i) {
      workers_.emplace_back([this, i] { worker_main(i); });
      internal::name_thread(workers_.back(), name_, i);
    }
  } catch (...) {
    stop(false);  // join the workers that did start
    throw;
  }
}

ThreadPool::~ThreadPool() {
  if (is_current()) abort_with("a ThreadPool destroyed by one of its own tasks (it would join itself)");
  stop(false);
}

void ThreadPool::worker_main(size_t) {
  MutatorScope attach(heap());
  tls_pool = this;
  CancellationScope scope(token_);
  Task task;
  while (pop(task)) {
    run_task(task);
    task = Task();
  }
  tls_pool = nullptr;
}

void ThreadPool::taken_locked(const Task& t) {
  if (!t.help_key()) return;
  auto it = keyed_.find(t.help_key());
  if (--it->second == 0) keyed_.erase(it);
}

bool ThreadPool::pop(Task& out) {
  for (;;) {
    uint32_t seen;
    {
      internal::MutexLock lock(mu_);
      if (!queue_.empty()) {
        out = std::move(queue_.front());
        queue_.pop_front();
        taken_locked(out);
        return true;
      }
      if (stopping_) return false;
      ++idle_;
      seen = work_wake_.load(std::memory_order_relaxed);
    }
    // A task usually follows soon in a busy pool: spin briefly before sleeping. Only a
    // sleeper costs execute() a wake-up system call (seq_cst on both sides: either this
    // worker sees the bump, or execute() sees it counted in sleepers_).
    if (!internal::spin_until([&] { return work_wake_.load(std::memory_order_relaxed) != seen; }, 4096)) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      if (work_wake_.load(std::memory_order_seq_cst) == seen)
        internal::park(work_wake_, seen, internal::Clock::time_point::max(), /*cancellable=*/false);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    internal::MutexLock lock(mu_);
    --idle_;
  }
}

void ThreadPool::execute(Task task) {
  if (!try_execute(task)) throw ExecutorShutdownError("ThreadPool '" + name_ + "': shut down, the task was not queued");
}

bool ThreadPool::try_execute(Task& task) {
  bool wake;
  {
    internal::MutexLock lock(mu_);
    if (!accepting_) return false;
    if (task.help_key()) ++keyed_[task.help_key()];
    queue_.push_back(std::move(task));
    wake = idle_ > 0;
  }
  if (!wake) return true;
  work_wake_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) internal::unpark(work_wake_, 1);
  return true;
}

bool ThreadPool::is_current() const { return tls_pool == this; }

bool ThreadPool::help_one(const void* key) {
  if (!is_current()) return false;
  Task task;
  {
    internal::MutexLock lock(mu_);
    // The newest queued task with the key (a task group's children are at the back),
    // or the oldest (no key).
    if (key == nullptr) {
      if (queue_.empty()) return false;
      task = std::move(queue_.front());
      queue_.pop_front();
    } else {
      if (!keyed_.contains(key)) return false;  // (no scan of a long queue for nothing)
      auto it = std::find_if(queue_.rbegin(), queue_.rend(), [key](const Task& t) { return t.help_key() == key; });
      task = std::move(*it);
      queue_.erase(std::next(it).base());
    }
    taken_locked(task);
  }
  // The task's own context, not the helping waiter's: the pool's token, no serial
  // executor, a lock-holder identity of its own (it must not see, or release, the
  // locks the suspended task below it holds), and no isolate - a pool task starts
  // outside isolates. An isolate the waiter holds is released meanwhile (the waiter is
  // suspended, as when it enters another isolate: the helped task may enter this one)
  // and taken back, GC-safe, before the waiter goes on.
  CancellationScope scope(token_);
  struct Suspended {
    const SerialExecutor* serial = std::exchange(tls_serial, nullptr);
    const SuspendedSerial node{serial, tls_suspended};
    const uint64_t holder = std::exchange(internal::tls_holder_id, 0);
    const internal::ThreadIsolateState waiter = internal::tls_isolate;
    Suspended() {
      if (serial) tls_suspended = &node;
      if (waiter.isolate) waiter.isolate->release();
      internal::set_thread_isolate({});
    }
    ~Suspended() {
      if (waiter.isolate) waiter.isolate->acquire(true);
      internal::set_thread_isolate(waiter);
      internal::tls_holder_id = holder;
      tls_serial = serial;
      tls_suspended = node.next;
    }
    Suspended(const Suspended&) = delete;
    Suspended& operator=(const Suspended&) = delete;
  } suspended;
  run_task(task);
  return true;
}

void ThreadPool::shutdown() {
  if (is_current()) throw DeadlockError("ThreadPool::shutdown from one of the pool's own tasks (it would join itself)");
  stop(false);
}

void ThreadPool::shutdown_now() {
  if (is_current()) throw DeadlockError("ThreadPool::shutdown_now from one of the pool's own tasks (it would join itself)");
  stop(true);
}

void ThreadPool::stop(bool drop_queued) {
  std::deque<Task> dropped;
  {
    internal::MutexLock lock(mu_);
    accepting_ = false;
    stopping_ = true;
    if (drop_queued) {
      dropped.swap(queue_);
      keyed_.clear();
    }
  }
  if (drop_queued) token_.cancel();
  dropped.clear();  // outside mu_: abandoned promises run their continuations
  internal::bump_and_unpark(work_wake_, INT32_MAX);
  internal::block_gc_safe([&] {
    internal::MutexLock lock(join_mu_);
    for (std::thread& w : workers_)
      if (w.joinable()) w.join();
  });
}

// --- SerialExecutor ---

// The task that drains a serial executor on its target. If the target drops it unrun
// (shut down), the serial executor can never run its queue: it stops accepting and
// drops the queue, failing the queued tasks' futures with CancelledError.
//
// Chains - a serial executor running on another, actors on one another's executors -
// are walked three ways, and none of them makes a call per link (a chain as long as the
// program likes would overflow the stack; each did, at 20,000-75,000 links):
// - scheduling: the first task into an idle executor queues its drain call on the
//   target; if that is an idle serial executor, its own drain call goes on its target,
//   and so on - a loop up the chain (schedule_drains);
// - draining: a drain runs its executor's tasks, one of which may be the drain call of
//   an executor running on it, whose tasks must all run before the next of this one.
//   The drain keeps the executors it is draining as a stack of frames (DrainFrame):
//   run by the drain loop as its current executor's task, a drain call pushes a frame
//   and returns, and the loop goes on with the top frame; when a frame's queue is empty
//   (or its batch is done and rescheduled) the loop resumes the frame below;
// - abandoning: an abandoned executor drops its queue, which drops the drain calls of
//   the executors running on it, which abandons them... an abandon inside another on
//   the same thread waits in the outermost's backlog (abandon).
// A drain whose rescheduling its target refused finishes the queue in its own frame and
// disarms the refused call by running it with tls_disarmed_drain naming its executor.
namespace {
struct DrainFrame {
  SerialExecutor* executor;
  int ran;  // tasks of this batch run so far
};
constinit thread_local const SerialExecutor* tls_disarmed_drain = nullptr;
// The innermost drain loop on this thread, and the executor whose task it is running
// now (a drain call run as that task pushes a frame instead of nesting a drain).
constinit thread_local std::vector<DrainFrame>* tls_drain_frames = nullptr;
constinit thread_local const Executor* tls_drain_running_for = nullptr;
constinit thread_local std::vector<SerialExecutor*>* tls_abandon_backlog = nullptr;
}  // namespace

struct SerialExecutor::DrainCall {
  SerialExecutor* owner;
  explicit DrainCall(SerialExecutor* s) : owner(s) {}
  DrainCall(DrainCall&& o) noexcept : owner(std::exchange(o.owner, nullptr)) {}
  DrainCall& operator=(DrainCall&&) = delete;
  void operator()() {
    SerialExecutor* s = std::exchange(owner, nullptr);
    if (s == tls_disarmed_drain) return;
    if (tls_drain_frames != nullptr && tls_drain_running_for == s->target_) {
      tls_drain_frames->push_back({s, 0});  // (the loop running this call goes on with s)
      return;
    }
    s->drain();
  }
  // The drain of `s` as a task for its target, keyed for the waiters that may run it.
  static Task task_for(SerialExecutor* s) {
    Task t = DrainCall(s);
    t.set_help_key(s);  // what a waiter for this executor's tasks may run
    return t;
  }
  ~DrainCall() {
    if (owner) owner->abandon();
  }
};

SerialExecutor::SerialExecutor(Executor& target)
    : Executor(target.heap()), target_(&target), token_(target.token().child()) {}

SerialExecutor::~SerialExecutor() {
  if (is_current()) abort_with("a SerialExecutor destroyed by one of its own tasks");
  try {
    stop(false);
  } catch (const DeadlockError&) {
    abort_with("a SerialExecutor destroyed from a task of its own target executor, which must run its queue");
  }
}

void SerialExecutor::execute(Task task) {
  if (!try_execute(task)) throw ExecutorShutdownError("SerialExecutor: shut down, the task was not queued");
}

SerialExecutor::Enqueued SerialExecutor::enqueue(Task& task) {
  internal::MutexLock lock(mu_);
  if (!accepting_) return Enqueued::kRefused;
  queue_.push_back(std::move(task));
  if (scheduled_) return Enqueued::kQueued;
  scheduled_ = true;
  return Enqueued::kFirst;
}

bool SerialExecutor::try_execute(Task& task) {
  switch (enqueue(task)) {
    case Enqueued::kRefused:
      return false;
    case Enqueued::kQueued:
      return true;
    case Enqueued::kFirst:
      break;
  }
  schedule_drains();
  return true;
}

void SerialExecutor::schedule_drains() {
  for (SerialExecutor* s = this;;) {
    Task drain_call = DrainCall::task_for(s);
    auto* next = dynamic_cast<SerialExecutor*>(s->target_);
    if (next == nullptr) {
      if (s->target_->try_execute(drain_call)) return;
    } else {
      const Enqueued e = next->enqueue(drain_call);
      if (e == Enqueued::kQueued) return;
      if (e == Enqueued::kFirst) {
        s = next;  // idle too: its drain goes on its own target
        continue;
      }
    }
    // The target refused: dropping the drain call abandons `s`, and with it every
    // executor up the chain to this one - the task just queued fails with
    // CancelledError, and the caller learns it from the exception.
    drain_call = Task();
    throw ExecutorShutdownError("SerialExecutor: its target executor has shut down, the task was not queued");
  }
}

void SerialExecutor::abandon() {
  if (tls_abandon_backlog != nullptr) {
    tls_abandon_backlog->push_back(this);  // (the outermost abandon on this thread runs it next)
    return;
  }
  std::vector<SerialExecutor*> backlog{this};
  tls_abandon_backlog = &backlog;
  for (size_t i = 0; i < backlog.size(); ++i) backlog[i]->abandon_now();  // (may append)
  tls_abandon_backlog = nullptr;
}

void SerialExecutor::abandon_now() {
  std::deque<Task> dropped;
  {
    internal::MutexLock lock(mu_);
    accepting_ = false;
    dropped.swap(queue_);
  }
  dropped.clear();  // outside mu_: the promises' continuations may run here
  internal::MutexLock lock(mu_);
  scheduled_ = false;
  internal::bump_and_unpark(idle_wake_, INT32_MAX);
}

bool SerialExecutor::is_current() const { return tls_serial == this; }

void SerialExecutor::drain() {
  std::vector<DrainFrame> frames{{this, 0}};
  std::vector<DrainFrame>* const outer_frames = std::exchange(tls_drain_frames, &frames);
  const Executor* const outer_running_for = tls_drain_running_for;
  const SerialExecutor* const outer_serial = tls_serial;
  while (!frames.empty()) {
    DrainFrame& frame = frames.back();
    SerialExecutor* s = frame.executor;
    Task task;
    {
      internal::MutexLock lock(s->mu_);
      if (s->queue_.empty()) {
        s->scheduled_ = false;
        internal::bump_and_unpark(s->idle_wake_, INT32_MAX);  // under mu_: see the file comment
        frames.pop_back();  // (s may be destroyed once mu_ is released)
        continue;
      }
      if (frame.ran < kBatch) {
        task = std::move(s->queue_.front());
        s->queue_.pop_front();
        ++frame.ran;
      }
    }
    if (!task) {
      // A batch done: the rest waits behind the target's other tasks, so that one busy
      // queue cannot hold a pool worker (or the executor below) for ever.
      Task drain_call = DrainCall::task_for(s);
      if (s->target_->try_execute(drain_call)) {
        frames.pop_back();
        continue;
      }
      // The target is shutting down: finish the queue here, batch after batch.
      tls_disarmed_drain = s;
      drain_call();
      tls_disarmed_drain = nullptr;
      frame.ran = 0;
      continue;
    }
    tls_serial = s;
    tls_drain_running_for = s;
    CancellationScope scope(s->token_);
    s->run_task(task);  // (a drain call of an executor on s pushes a frame: `frame` is stale)
  }
  tls_serial = outer_serial;
  tls_drain_running_for = outer_running_for;
  tls_drain_frames = outer_frames;
}

void SerialExecutor::shutdown() {
  if (is_current()) throw DeadlockError("SerialExecutor::shutdown from one of its own tasks (it would wait for itself)");
  stop(false);
}

void SerialExecutor::shutdown_now() {
  if (is_current()) throw DeadlockError("SerialExecutor::shutdown_now from one of its own tasks");
  stop(true);
}

void SerialExecutor::stop(bool drop_queued) {
  std::deque<Task> dropped;
  {
    internal::MutexLock lock(mu_);
    accepting_ = false;
    if (drop_queued) dropped.swap(queue_);
  }
  if (drop_queued) token_.cancel();
  dropped.clear();
  for (;;) {
    uint32_t seen;
    {
      internal::MutexLock lock(mu_);
      if (!scheduled_ && queue_.empty()) return;
      seen = idle_wake_.load(std::memory_order_relaxed);
    }
    if (target_->is_current()) {
      // Waiting on a thread of the target, where the drain may be queued behind us:
      // run the target's queued tasks meanwhile, or give up if it cannot be helped.
      if (target_->help_one(this)) continue;  // our own drain, queued behind us
      if (!target_->helps())
        throw DeadlockError("SerialExecutor: shut down from a task of its own target executor, which must run its queue");
    }
    internal::park(idle_wake_, seen, internal::Clock::time_point::max(), /*cancellable=*/false);
  }
}

}  // namespace shoal
