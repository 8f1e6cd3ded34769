// Mutator threads, safepoints, stop-the-world and handshakes.
//
// States (MutatorThread::state):
//   kRunning  the thread may touch the heap; the collector must wait for it to poll.
//   kNative   "in native / blocked": the thread promised not to touch the heap; its
//             context (registers, scan start) was captured on entry. The collector does
//             not wait for it.
//   kParked   stopped at a safepoint for a pause; context captured.
//   kPreempted stopped for a pause by asynchronous preemption, at an arbitrary
//             instruction of its own code (gc/async_preemption.h); context captured in
//             the signal handler. A pause treats it as kParked; a handshake that needs a
//             genuine poll waits until it has polled.
//
// Poll word: each thread has its own (MutatorState::poll_word). kPollStop asks it to park,
// kPollHandshake asks it to run a handshake operation. Running threads poll it with a
// relaxed load at every safepoint (allocation slow path, shoal::safepoint()).
//
// The Dekker pair that makes stopping safe (all four accesses seq_cst):
//   collector: poll_word |= kPollStop;  then read state
//   mutator:   state = kRunning;        then read poll_word
// At least one side sees the other. If the collector read a safe state, the mutator's
// later read sees kPollStop and it goes straight back to a safe state without touching
// the heap; otherwise the collector sees kRunning and waits for the mutator to park.
// A thread only ever flips to kRunning briefly inside the slow path (below its captured
// scan start), so its scanned stack never changes while the collector looks at it.
//
// Handshakes (Doligez-Gonthier style): per thread, the requester posts an operation under
// the thread's hs_mu and sets kPollHandshake. A running thread runs it at its next poll;
// for a thread that is safe the requester runs it itself, holding hs_mu, which the
// thread must take before it may leave the safe state with kPollHandshake set. The
// collector's own operations (thread-safe, "runs anywhere") are posted to every thread
// before the requester waits for any, so the threads serve them in parallel; a user's
// handshake_all goes one thread after another.
//
// Lock order: Collector::gc_mu_ < registry_mu_ < MutatorThread::hs_mu < park_mu_ <
// the root lock (RootSet::mu_, held through every pause) < the collector's work and
// stats locks, the finalizer table's, page-list and large-object locks. Nothing that
// holds one of the latter may run code that takes the root lock (a handle's destructor:
// see FinalizerTable::cancel).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include "gc/resume_latency.h"
#include "gc/stack_scanner.h"
#include "shoal/internal/mutation_checks.h"
#include "shoal/internal/preemption.h"
#include "shoal/internal/mutator.h"
#include "shoal/internal/mutex.h"
#include "shoal/object.h"

namespace shoal::internal {

enum class ThreadState : uint32_t { kRunning, kNative, kParked, kPreempted };
inline constexpr uint32_t kPollStop = 1;
inline constexpr uint32_t kPollHandshake = 2;
// Not a request: "reach this stop at a genuine poll" - preempted threads leave their
// handler and no handler parks (set while a stop backs off preemption; see
// ThreadRegistry::stop_the_world). Cleared with kPollStop.
inline constexpr uint32_t kPollNoPreempt = 4;
inline constexpr uint32_t kPollRequests = kPollStop | kPollHandshake;

struct MutatorThread;
using HandshakeOp = std::function<void(MutatorThread&)>;

struct MutatorThread : MutatorState {
  std::atomic<ThreadState> state{ThreadState::kRunning};
  CapturedContext context;  // valid while state != kRunning
  uintptr_t stack_base = 0;      // the stack it runs on now (a fiber's: switch_stack)
  uintptr_t own_stack_base = 0;  // its own thread stack
  bool switched_stacks = false;   // switch_stack was called (fibers)
  size_t index = 0;
  int attach_depth = 0;
  // native_depth and no_heap_depth live in MutatorState (inline checks read them).
  uint64_t torture_polls = 0;
  // TLAB bytes taken but not yet added to the heap's shared counters: added a batch at a
  // time (HeapImpl::count_allocated), and whenever the TLABs are retired (pauses, detach).
  size_t allocated_unreported = 0;
  // SATB buffer: objects this thread's write barrier shaded grey during concurrent
  // marking, handed to the marker in batches of Collector::kSatbBatch, and taken by the
  // marker thread directly (no handshake) in its termination rounds and in the final
  // pause. The lock is uncontended but for those takes; the owner holds it only inside a
  // no-preempt region, so it is never parked holding it.
  Mutex satb_mu;
  std::vector<Object*> satb SHOAL_GUARDED_BY(satb_mu);
  // Remembered-set buffer: old objects this thread's write barrier saw store a young
  // reference (gc/generations.cc); taken in the initial pause, handed over at detach.
  std::vector<Object*> remembered;
  // Set in a concurrent cycle's initial pause for each thread whose stack it leaves for
  // later; cleared when that stack has been scanned (gc/thread_stack_scan.cc) - by the
  // thread itself at a safepoint or in switch_stack, or by the collector's scanner thread
  // while it is safe. Only the thread itself changes it while it runs.
  std::atomic<bool> stack_scan_pending{false};
  Mutex hs_mu;
  const HandshakeOp* hs_op SHOAL_GUARDED_BY(hs_mu) = nullptr;
  // The pending operation may run on the thread while it is preempted (the collector's
  // SATB handshake); otherwise only at a genuine poll.
  bool hs_op_runs_anywhere SHOAL_GUARDED_BY(hs_mu) = false;
  // Asynchronous preemption (gc/async_preemption.h): the thread to signal.
  pthread_t native_thread{};
  // A thread stopping the world sleeps on `state` (a futex) while this thread runs;
  // entering a safe state then wakes it (enter_safe_state).
  std::atomic<bool> stopper_waiting{false};
};

// Stores a safe state (kNative, kParked, kPreempted) into t->state - seq_cst: one side
// of the Dekker pair - and wakes a stopper sleeping on it.
void enter_safe_state(MutatorThread* t, ThreadState s);

MutatorThread* current_thread();  // null when unattached
// True while the calling thread runs a handshake operation - its own, at a poll or on
// its way out of a safe state, or another thread's as the requester. Every requester
// holds the collector's lock until each operation has run, so an operation must not
// wait for anything that may itself wait for that lock (another thread holding an
// isolate may be waiting for a collection): such waits are refused meanwhile.
bool in_handshake_op();
// Sets `bit` in t's poll word and zeroes its TLAB limits, so t reaches the slow path
// (and so a safepoint) at its next allocation or poll.
void request_poll(MutatorThread* t, uint32_t bit);

// Marks `t` as not allowed to touch the heap for the scope's lifetime; zeroes its TLAB
// limits so even a fast-path allocation reaches the check in the slow path.
class NoHeapAccessScope {
 public:
  // (t may be null: a collector thread that is not a mutator.)
  // t is the calling thread (or null). Its stores take the slow path and throw meanwhile
  // (kNotRunningKey, include/shoal/internal/mutation_checks.h).
  explicit NoHeapAccessScope(MutatorThread* t) : t_(t) {
    if (!t_) return;
    if (t_->no_heap_depth++ == 0) set_store_key_running(false);
    for (Tlab& tlab : t_->tlabs) tlab.limit.store(0, std::memory_order_relaxed);
  }
  ~NoHeapAccessScope() {
    if (t_ && --t_->no_heap_depth == 0) set_store_key_running(true);
  }
  NoHeapAccessScope(const NoHeapAccessScope&) = delete;
  NoHeapAccessScope& operator=(const NoHeapAccessScope&) = delete;

 private:
  MutatorThread* t_;
};

// Throws ThreadStateError when `t` may not touch the heap right now.
void check_heap_access(const MutatorThread* t, const char* what);
// Throws NotAttached when `o` is not an object of the heap `t` is attached to (a
// reference smuggled in from a thread of another heap).
void check_object_heap(const MutatorThread* t, const Object* o, const char* what);
// The calling thread, attached and allowed to touch the heap; else NotAttached (not
// attached) or ThreadStateError (inside run_native or a handshake operation). `what`
// names the operation.
MutatorThread* require_running_thread(const char* what);

// Makes the calling collector thread (marker, marking helper) yield the CPU to mutators
// when they compete for it: a small positive nice value for this thread only (Linux).
void lower_collector_thread_priority();

// Names a thread for debuggers, top and perf (Linux keeps 15 characters; a no-op
// elsewhere): "shoal-marker", "shoal-scanner". Called by the thread that started it, so
// the name is there before the thread first runs.
void name_thread(std::thread& t, const std::string& name);
// The same for one of a pool's threads: "<base>-<index>", base shortened so that the
// index always fits ("shoal-mark-2", a ThreadPool's "loader-0").
void name_thread(std::thread& t, const std::string& base, size_t index);

// Gives up the CPU while `registry` is stopping the world (see ThreadRegistry::stopping).
class ThreadRegistry;
void step_aside_while_stopping(const ThreadRegistry& registry);

class ThreadRegistry {
 public:
  ThreadRegistry() = default;
  ~ThreadRegistry();

  // Registers the current thread as running. Blocks while a pause is in progress.
  // Throws ThreadStateError if the thread runs on a stack other than its own (a fiber).
  MutatorThread* attach(HeapImpl* heap) SHOAL_EXCLUDES(registry_mu_);
  // Unregisters and frees the current thread's record (its TLABs must be retired).
  void detach(MutatorThread* self) SHOAL_EXCLUDES(registry_mu_);

  // Safepoint slow path for a running thread with a non-zero poll word.
  void poll_slow(MutatorThread* self);
  // The preemption signal handler's work on the interrupted thread `self` (conditions
  // checked by the caller, gc/async_preemption.cc): park for a pending stop, run a
  // pending operation that may run anywhere, return.
  void serve_preemption(MutatorThread* self);
  // Threads still running `delay_ns` after a stop (or a collector handshake) was
  // requested get a preemption signal; called once, before any thread attaches.
  void enable_async_preemption(uint64_t delay_ns) { preempt_delay_ns_ = delay_ns; }
  bool async_preemption_enabled() const { return preempt_delay_ns_ != kPreemptionOff; }
  uint64_t preemption_signals() const { return preemption_signals_.load(std::memory_order_relaxed); }
  // Every stopped thread's wait, after a pause ended, until it ran again (GcStats).
  PauseHistogram resume_latency() const { return resume_latency_.snapshot(); }
  // Tests: a long safety-net timeout turns a lost wake-up at the end of a stop into a
  // thread that stays parked long enough for a test to see it (see resume_seq_).
  void set_resume_wait_for_testing(uint64_t ns) { resume_wait_ns_.store(ns, std::memory_order_relaxed); }
  // Runs f() with `self` in the native (safe) state, its context captured for the whole
  // call, and returns with `self` running again (having served any pending stop or
  // handshake on the way out).
  template <class F>
  void run_native(MutatorThread* self, F&& f) {
    NoPreemptScope no_preempt;  // (the transitions; f itself runs in kNative)
    with_captured_context(self->context, [&] {
      enter_safe_state(self, ThreadState::kNative);
      f();
      return_to_running(self);
    });
  }

  // Collector side. The caller is attached and in a safe state (kNative), and holds the
  // collector's lock. stop_the_world returns with every other thread safe and the
  // registry locked; resume_the_world releases both.
  void stop_the_world(MutatorThread* self) SHOAL_ACQUIRE(registry_mu_);
  // Returns the steady_clock time (ns) at which the threads were released, taken before
  // waking them: the end of the pause (waking itself is the kernel's latency).
  uint64_t resume_the_world() SHOAL_RELEASE(registry_mu_);
  // Runs op for every thread at a point where it is safe (see the file comment). `self`
  // is the requesting mutator, or null for a collector thread (the marker thread takes
  // SATB buffers this way). With `runs_anywhere`, op may also run on a thread stopped by
  // asynchronous preemption (and such a thread is signalled if it does not poll): for
  // operations that need nothing but "not inside a no-preempt region".
  // With `wanted`, only the threads it accepts (asked under the registry lock) take part.
  void handshake_all(MutatorThread* self, const HandshakeOp& op, bool runs_anywhere = false,
                     bool (*wanted)(const MutatorThread&) = nullptr) SHOAL_EXCLUDES(registry_mu_);

  // In a pause (registry locked by the caller).
  const std::vector<MutatorThread*>& threads_in_pause() const SHOAL_NO_THREAD_SAFETY_ANALYSIS { return threads_; }
  // Calls fn for every attached thread, under the registry lock (no thread attaches or
  // detaches meanwhile; a pause waits). fn must not take the registry lock or block.
  void for_each_thread(const std::function<void(MutatorThread&)>& fn) SHOAL_EXCLUDES(registry_mu_);
  // Threads attached now. Lock-free: a running thread asks (~Heap, shoal_group_destroy),
  // and the registry lock is held by a pause while it waits for running threads.
  size_t count() const { return count_.load(std::memory_order_acquire); }
  // True while stop_the_world waits for threads to reach a safepoint. Collector threads
  // doing background work (concurrent marking, background sweeping) step aside then, so
  // a mutator that was preempted gets a core to reach its poll (time-to-safepoint on an
  // oversubscribed machine is otherwise the scheduler's time slice).
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

 private:
  void return_to_running(MutatorThread* self);
  void run_handshakes(MutatorThread* self, const HandshakeOp& op, bool runs_anywhere,
                      bool (*wanted)(const MutatorThread&)) SHOAL_EXCLUDES(registry_mu_);
  void wait_until_stop_cleared(MutatorThread* self);
  // Runs this thread's pending operation (only one that runs anywhere when
  // `preempted`); true if it ran one.
  bool run_own_handshake(MutatorThread* self, bool preempted = false);
  // Sends `t` the preemption signal (the callers decide when) and counts it.
  void signal_preemption(MutatorThread* t);
  // stop_the_world's back-off: sets kPollNoPreempt everywhere (waking the handlers) if
  // some thread is preempted; false (and nothing set) if none is.
  bool set_no_preempt_if_any_preempted(MutatorThread* self) SHOAL_REQUIRES(registry_mu_);

  static constexpr uint64_t kPreemptionOff = ~uint64_t{0};
  static constexpr uint64_t kPreemptionResendNs = 200'000;
  uint64_t preempt_delay_ns_ = kPreemptionOff;
  // Threads waiting for their stop to end - in a preemption handler, or parked at a
  // poll where futex waits are available - sleep on this word; wake_handlers bumps it
  // and wakes them all with one call. resume_wait_ns_ bounds one sleep: a safety net
  // only (the waiter looks again), so a lost wake-up costs that much, never a hang.
  std::atomic<uint32_t> resume_seq_{0};
  static constexpr uint64_t kDefaultResumeWaitNs = 2'000'000;
  std::atomic<uint64_t> resume_wait_ns_{kDefaultResumeWaitNs};
  void wake_handlers();
  ResumeLatency resume_latency_;
  // Sleeps while resume_seq_ == seq (woken by wake_handlers; async-signal-safe).
  void wait_for_resume(uint32_t seq);
  std::atomic<uint64_t> preemption_signals_{0};

  Mutex registry_mu_;
  std::vector<MutatorThread*> threads_ SHOAL_GUARDED_BY(registry_mu_);
  size_t next_index_ SHOAL_GUARDED_BY(registry_mu_) = 0;
  std::atomic<size_t> count_{0};  // threads_.size(), written under registry_mu_
  std::atomic<bool> stopping_{false};
  std::mutex park_mu_;
  std::condition_variable park_cv_;
};

}  // namespace shoal::internal
