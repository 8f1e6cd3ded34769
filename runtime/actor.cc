// Run loops, actors, global actors and workers (include/shoal/actor.h).
//
// An Actor is an isolate + a SerialExecutor (on a shared target executor, a thread of
// its own, or - for a GlobalActor - a RunLoop driven by one named thread) + a state
// handle. Each call enters the isolate for its duration, so the isolate's ownership
// checks keep every other thread out of the state; the serial executor orders the calls
// (each one happens after the previous one: its mutex hand-off). The Sendable rule is
// the sharing model's is_shareable, checked on every reference argument before the call
// is queued and on a reference result before the future gets it.
//
// A Worker is an isolate + a one-thread pool + a ReceivePort owned by the isolate. The
// producer's value goes through the port (so every send mode and check of the sharing
// model applies unchanged), and the job task receives it: sends and job submissions are
// made under one mutex, so the n-th job receives the n-th value.
#include "shoal/actor.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "gc/preempt_safe_lock.h"
#include "gc/thread_registry.h"
#include "runtime/isolate_context.h"
#include "shoal/class_table.h"

namespace shoal {

namespace {
constinit thread_local const RunLoop* tls_loop = nullptr;

std::mutex& global_actors_mu() {
  static std::mutex mu;
  return mu;
}
// Global actors by name. A name is reserved (ready false) before the actor's isolate
// and executor exist, so a duplicate name is refused before anything is created;
// find() sees the actor once its constructor finished.
struct GlobalActorEntry {
  GlobalActor* actor;
  bool ready;
};
std::map<std::string, GlobalActorEntry>& global_actors() {
  static std::map<std::string, GlobalActorEntry> m;
  return m;
}
}  // namespace

namespace internal {
void check_sendable(IsolateGroup& group, Value v, const char* who, const std::string& name, const char* what) {
  if (group.options().share_everything || is_shareable(v)) return;
  const ClassInfo* c = find_class(v.as_object()->class_id());
  throw NotShareableError(std::string(who) + " '" + name + "': " + what + " is an object of class " +
                          (c ? c->name : std::string("?")) +
                          ", which is not shareable (only shareable values cross into or out of an actor: freeze "
                          "it, make its class deeply immutable, or copy it in as plain data)");
}
}  // namespace internal

// --- RunLoop ---

RunLoop::RunLoop(Heap& heap) : Executor(heap) {}

RunLoop::~RunLoop() {
  if (is_current()) {
    std::fprintf(stderr, "shoal: a RunLoop destroyed by one of its own tasks\n");
    std::abort();
  }
  shutdown();
  // shutdown() made a running run() return; wait (GC-safe) until it has.
  for (;;) {
    uint32_t seen;
    {
      internal::MutexLock lock(mu_);
      if (!running_) return;
      seen = wake_.load(std::memory_order_relaxed);
    }
    internal::park(wake_, seen, internal::Clock::time_point::max(), /*cancellable=*/false);
  }
}

void RunLoop::execute(Task task) {
  if (!try_execute(task)) throw ExecutorShutdownError("RunLoop: shut down, the task was not queued");
}

bool RunLoop::try_execute(Task& task) {
  {
    internal::MutexLock lock(mu_);
    if (!accepting_) return false;
    queue_.push_back(std::move(task));
  }
  internal::bump_and_unpark(wake_, 1);
  return true;
}

bool RunLoop::is_current() const { return tls_loop == this; }

bool RunLoop::pop(Task& out, bool wait) {
  for (;;) {
    uint32_t seen;
    {
      internal::MutexLock lock(mu_);
      if (!accepting_) return false;  // shut down
      if (stop_ && wait) {  // (run_pending leaves a stop for the run() it is meant for)
        stop_ = false;
        return false;
      }
      if (!queue_.empty()) {
        out = std::move(queue_.front());
        queue_.pop_front();
        return true;
      }
      if (!wait) return false;
      seen = wake_.load(std::memory_order_relaxed);
    }
    internal::park(wake_, seen, internal::Clock::time_point::max(), /*cancellable=*/false);
  }
}

class RunLoop::Claim {
 public:
  Claim(RunLoop& loop, const char* what) : loop_(loop) {
    {
      internal::MutexLock lock(loop_.mu_);
      if (loop_.running_) throw InvalidArgument(std::string(what) + ": another thread runs this loop");
      loop_.running_ = true;
    }
    outer_ = tls_loop;
    tls_loop = &loop_;
  }
  ~Claim() {
    tls_loop = outer_;
    internal::MutexLock lock(loop_.mu_);
    loop_.running_ = false;
    internal::bump_and_unpark(loop_.wake_, INT32_MAX);  // under mu_: ~RunLoop may be waiting
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;

 private:
  RunLoop& loop_;
  const RunLoop* outer_ = nullptr;
};

void RunLoop::run() {
  Claim claim(*this, "RunLoop::run");
  MutatorScope attach(heap());  // (may throw: the claim is given back)
  CancellationScope scope(token_);
  Task task;
  while (pop(task, true)) {
    run_task(task);
    task = Task();
  }
}

size_t RunLoop::run_pending() {
  Claim claim(*this, "RunLoop::run_pending");
  size_t n = 0;
  MutatorScope attach(heap());  // (may throw: the claim is given back)
  CancellationScope scope(token_);
  size_t budget;
  {
    internal::MutexLock lock(mu_);
    budget = queue_.size();
  }
  Task task;
  while (n < budget && pop(task, false)) {
    run_task(task);
    task = Task();
    ++n;
  }
  return n;
}

void RunLoop::stop() {
  {
    internal::MutexLock lock(mu_);
    stop_ = true;
  }
  internal::bump_and_unpark(wake_, 1);
}

void RunLoop::shutdown() {
  std::deque<Task> dropped;
  {
    internal::MutexLock lock(mu_);
    accepting_ = false;
    dropped.swap(queue_);
  }
  token_.cancel();
  dropped.clear();
  internal::bump_and_unpark(wake_, INT32_MAX);  // a parked run() returns
}

// --- Actor ---

Actor::Actor(IsolateGroup& group, std::string name, std::function<Value()> init, Executor* target)
    : group_(&group), name_(std::move(name)), isolate_(&group.create_isolate(name_)) {
  if (!target) {
    own_thread_ = std::make_unique<ThreadPool>(group.heap(), 1, "actor:" + name_);
    target = own_thread_.get();
  }
  serial_ = std::make_unique<SerialExecutor>(*target);
  start(std::move(init));
}

Actor::Actor(IsolateGroup& group, std::string name, std::function<Value()> init, std::unique_ptr<RunLoop> loop)
    : group_(&group), name_(std::move(name)), isolate_(&group.create_isolate(name_)), loop_(std::move(loop)) {
  serial_ = std::make_unique<SerialExecutor>(*loop_);
  start(std::move(init));
}

void Actor::start(std::function<Value()> init) {
  serial_->execute([this, init = std::move(init)] {
    IsolateScope in(*isolate_);
    Value v = init ? init() : Value::null();
    state_ = PersistentValue(group_->heap(), v);
  });
}

Actor::~Actor() {
  if (is_current()) {
    std::fprintf(stderr, "shoal: actor '%s' destroyed by one of its own calls\n", name_.c_str());
    std::abort();
  }
  shutdown();
  isolate_->impl().retire();  // its isolated globals' copies go now, not with the group
}

void Actor::shutdown() {
  if (is_current()) throw DeadlockError("Actor '" + name_ + "'::shutdown from one of its own calls");
  if (loop_) {
    // A global actor's calls need its thread: what is queued is dropped, and a running
    // run() returns. shutdown_now: the calls queued behind a running one are in the
    // serial executor's queue, which its drain - running on run()'s thread - would
    // otherwise go on through.
    loop_->shutdown();
    serial_->shutdown_now();
  } else {
    serial_->shutdown();
    if (own_thread_) own_thread_->shutdown();
  }
}

// --- GlobalActor ---

namespace {
std::unique_ptr<RunLoop> make_loop(IsolateGroup& group) { return std::make_unique<RunLoop>(group.heap()); }
}  // namespace

namespace {
std::string reserve_global_actor_name(const std::string& name, GlobalActor* actor) {
  internal::PreemptSafeLock lock(global_actors_mu());  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (!global_actors().emplace(name, GlobalActorEntry{actor, false}).second)
    throw InvalidArgument("GlobalActor: a global actor named '" + name + "' exists already");
  return name;
}
void release_global_actor_name(const std::string& name, const GlobalActor* actor) {
  internal::PreemptSafeLock lock(global_actors_mu());  // (a no-preempt region: gc/preempt_safe_lock.h)
  auto it = global_actors().find(name);
  if (it != global_actors().end() && it->second.actor == actor) global_actors().erase(it);
}
}  // namespace

GlobalActor::GlobalActor(IsolateGroup& group, std::string name, std::function<Value()> init) try
    : Actor(group, reserve_global_actor_name(name, this), std::move(init), make_loop(group)) {
  run_loop_ = static_cast<RunLoop*>(&static_cast<SerialExecutor&>(executor()).target());
  internal::PreemptSafeLock lock(global_actors_mu());  // (a no-preempt region: gc/preempt_safe_lock.h)
  global_actors().at(this->name()).ready = true;
} catch (...) {
  // (Only the parameters may be used here: the name goes if this construction took it.)
  release_global_actor_name(name, this);
}

GlobalActor::~GlobalActor() { release_global_actor_name(name(), this); }

void GlobalActor::run() { run_loop_->run(); }
size_t GlobalActor::run_pending() { return run_loop_->run_pending(); }
void GlobalActor::stop() { run_loop_->stop(); }

GlobalActor* GlobalActor::find(const std::string& name) {
  internal::PreemptSafeLock lock(global_actors_mu());  // (a no-preempt region: gc/preempt_safe_lock.h)
  auto it = global_actors().find(name);
  return it == global_actors().end() || !it->second.ready ? nullptr : it->second.actor;
}

// --- Worker ---

Worker::Worker(IsolateGroup& group, std::string name)
    : group_(&group), name_(std::move(name)), isolate_(&group.create_isolate(name_)) {
  inbox_ = std::make_unique<ReceivePort>(*isolate_);
  to_worker_ = inbox_->send_port();
  pool_ = std::make_unique<ThreadPool>(group.heap(), 1, "worker:" + name_);
}

Worker::~Worker() {
  if (pool_->is_current()) {
    std::fprintf(stderr, "shoal: worker '%s' destroyed by one of its own jobs\n", name_.c_str());
    std::abort();
  }
  shutdown();
  isolate_->impl().retire();  // its isolated globals' copies go now, not with the group
}

void Worker::shutdown() {
  {
    internal::block_gc_safe([&] { mu_.native().lock(); });
    internal::PreemptSafeLock hold(mu_.native(), std::adopt_lock);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (pool_->is_current()) throw DeadlockError("Worker '" + name_ + "'::shutdown from one of its own jobs");
    closed_ = true;  // (after the refusal: a refused shutdown leaves the worker open)
  }
  pool_->shutdown();
}

}  // namespace shoal
