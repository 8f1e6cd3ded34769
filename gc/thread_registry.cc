// Thread registry, safepoint protocol and handshakes. See thread_registry.h for the
// states, the Dekker argument and the lock order.
#include "gc/thread_registry.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "gc/async_preemption.h"
#include "gc/clock.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"

namespace shoal::internal {

constinit thread_local MutatorState* tls_mutator = nullptr;
constinit thread_local uint32_t tls_no_preempt = 0;

MutatorThread* current_thread() { return static_cast<MutatorThread*>(tls_mutator); }

namespace {

constexpr int kCollectorNice = 5;  // CFS weight ~1/3 of a nice-0 mutator's

// Spin briefly, then yield, then sleep: time-to-safepoint is usually microseconds, but
// on an oversubscribed machine the thread we wait for may need our core.
class Backoff {
 public:
  void pause() {
    if (++n_ < 64) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else if (n_ < 256) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

 private:
  unsigned n_ = 0;
};
}  // namespace

ThreadRegistry::~ThreadRegistry() {
  MutexLock lock(registry_mu_);
  if (!threads_.empty()) {
    std::fprintf(stderr, "shoal: heap destroyed while %zu thread(s) are still attached\n", threads_.size());
    std::abort();
  }
}

MutatorThread* ThreadRegistry::attach(HeapImpl* heap) {
  // Attached on a fiber's stack, the thread's scanned range would run from the fiber's
  // stack pointer to its own stack's base.
  const StackBounds stack = current_stack_bounds();
  if (!stack.holds_stack_pointer())
    throw ThreadStateError(
        "MutatorScope: the thread runs on a fiber stack; attach on the thread's own stack, then "
        "switch_stack before switching to the fiber (docs/roots.md, \"Fibers\")");
  auto* t = new MutatorThread();
  t->heap = heap;
  t->page_base = heap->pages.base();
  t->page_bytes = heap->pages.reserved_bytes();
  t->native_thread = pthread_self();
  t->stack_base = t->own_stack_base = stack.hi;
  MutexLock lock(registry_mu_);
  t->alloc_tags = heap->collector.allocation_tags();  // (pauses change them under this lock)
  t->marking_remember_skip = heap->collector.marking_remember_skip();
  t->card_record_set = heap->collector.card_record_set();
  t->index = next_index_++;
  threads_.push_back(t);
  count_.store(threads_.size(), std::memory_order_release);
  return t;
}

void ThreadRegistry::detach(MutatorThread* self) {
  NoPreemptScope no_preempt;
  with_captured_context(self->context, [&] {
    enter_safe_state(self, ThreadState::kNative);
    MutexLock lock(registry_mu_);
    threads_.erase(std::find(threads_.begin(), threads_.end(), self));
    count_.store(threads_.size(), std::memory_order_release);
  });
  delete self;
}

MutatorThread* require_running_thread(const char* what) {
  MutatorThread* t = current_thread();
  if (!t)
    throw NotAttached(std::string(what) +
                      " on a thread that is not attached to a heap; create a shoal::MutatorScope first");
  check_heap_access(t, what);
  return t;
}

void check_heap_access(const MutatorThread* t, const char* what) {
  if (t->no_heap_depth > 0)
    throw ThreadStateError(std::string(what) +
                           ": the heap may not be touched inside run_native or a handshake operation");
}

void check_object_heap(const MutatorThread* t, const Object* o, const char* what) {
  if (t->heap->pages.contains(o) || t->heap->large.is_object_start(o)) return;
  throw NotAttached(std::string(what) +
                    ": the object belongs to another heap than the one this thread is attached to (its "
                    "stack is not scanned by that heap's collector); use it from a thread attached to its heap");
}

namespace {
constinit thread_local int tls_handshake_op_depth = 0;

// Marks the calling thread as running a handshake operation (in_handshake_op).
struct HandshakeOpScope {
  HandshakeOpScope() { ++tls_handshake_op_depth; }
  ~HandshakeOpScope() { --tls_handshake_op_depth; }
  HandshakeOpScope(const HandshakeOpScope&) = delete;
  HandshakeOpScope& operator=(const HandshakeOpScope&) = delete;
};
}  // namespace

bool in_handshake_op() { return tls_handshake_op_depth > 0; }

bool ThreadRegistry::run_own_handshake(MutatorThread* self, bool preempted) {
  MutexLock lock(self->hs_mu);
  if (!self->hs_op || (preempted && !self->hs_op_runs_anywhere)) return false;
  NoHeapAccessScope no_heap(self);
  {
    HandshakeOpScope in_op;
    (*self->hs_op)(*self);
  }
  self->hs_op = nullptr;
  self->poll_word.fetch_and(~kPollHandshake, std::memory_order_seq_cst);
  return true;
}

void ThreadRegistry::wait_until_stop_cleared(MutatorThread* self) {
  if (futex_waits_available()) {
    // On the resume word, as the preemption handlers wait (serve_preemption): one
    // wake-up call releases every parked thread (resume_the_world).
    for (;;) {
      const uint32_t seq = resume_seq_.load(std::memory_order_seq_cst);
      if ((self->poll_word.load(std::memory_order_seq_cst) & kPollStop) == 0) return;
      wait_for_resume(seq);
    }
  }
  std::unique_lock<std::mutex> lock(park_mu_);
  park_cv_.wait(lock, [&] { return (self->poll_word.load(std::memory_order_acquire) & kPollStop) == 0; });
}

void ThreadRegistry::poll_slow(MutatorThread* self) {
  NoPreemptScope no_preempt;
  with_captured_context(self->context, [&] {
    for (;;) {
      const uint32_t pw = self->poll_word.load(std::memory_order_seq_cst);
      if ((pw & kPollRequests) == 0) return;
      if (pw & kPollHandshake) run_own_handshake(self);
      if (pw & kPollStop) {
        enter_safe_state(self, ThreadState::kParked);
        wait_until_stop_cleared(self);
        resume_latency_.record_resumed(now_ns());
        self->state.store(ThreadState::kRunning, std::memory_order_seq_cst);
      }
    }
  });
}

void ThreadRegistry::serve_preemption(MutatorThread* self) {
  // The handler may have interrupted code between two transitions that rely on the
  // context captured on entry to a safe state; keep that one.
  const CapturedContext outer = self->context;
  NoPreemptScope no_preempt;
  with_captured_context(self->context, [&] {
    for (;;) {
      const uint32_t pw = self->poll_word.load(std::memory_order_seq_cst);
      if (pw & kPollNoPreempt) return;  // this stop waits for a genuine poll
      bool served = (pw & kPollHandshake) != 0 && run_own_handshake(self, /*preempted=*/true);
      if (pw & kPollStop) {
        // The same Dekker pair as poll_slow's, with kPreempted for kParked.
        enter_safe_state(self, ThreadState::kPreempted);
        // Until the stop ends - or the stopper backs off and sets kPollNoPreempt. Every
        // handler sleeps on the registry's one resume word, so the thread that clears
        // the bits wakes them all with a single call (resume_the_world). (seq_cst: the
        // word is read before the poll word, and bumped after the bits change, so a
        // change between the two reads makes the wait return at once. The timeout is
        // only a safety net: the loop looks again.)
        for (;;) {
          const uint32_t seq = resume_seq_.load(std::memory_order_seq_cst);
          const uint32_t now = self->poll_word.load(std::memory_order_seq_cst);
          if ((now & kPollNoPreempt) != 0) break;  // (still stopped: parks at its poll)
          if ((now & kPollStop) == 0) {
            resume_latency_.record_resumed(now_ns());
            break;
          }
          wait_for_resume(seq);
        }
        self->state.store(ThreadState::kRunning, std::memory_order_seq_cst);
        served = true;
      }
      if (!served) return;  // nothing pending, or an operation that waits for a poll
    }
  });
  self->context = outer;
}

void ThreadRegistry::return_to_running(MutatorThread* self) {
  for (;;) {
    self->state.store(ThreadState::kRunning, std::memory_order_seq_cst);
    const uint32_t pw = self->poll_word.load(std::memory_order_seq_cst);
    if ((pw & kPollRequests) == 0) return;
    // Back to the safe state with the context captured on entry, then serve the request.
    enter_safe_state(self, ThreadState::kNative);
    if (pw & kPollHandshake) run_own_handshake(self);
    if (pw & kPollStop) wait_until_stop_cleared(self);
  }
}

void enter_safe_state(MutatorThread* t, ThreadState s) {
  t->state.store(s, std::memory_order_seq_cst);
  // (seq_cst both sides: the stopper sets the flag, then reads the state before it
  // sleeps; the futex compares the state again.)
  if (t->stopper_waiting.load(std::memory_order_seq_cst))
    wake_all_waiters(reinterpret_cast<const uint32_t*>(&t->state));
}

// Posts a poll request and makes the target's next allocation take the slow path.
void request_poll(MutatorThread* t, uint32_t bit) {
  t->poll_word.fetch_or(bit, std::memory_order_seq_cst);
  for (Tlab& tlab : t->tlabs) tlab.limit.store(0, std::memory_order_relaxed);
}

void lower_collector_thread_priority() {
#if defined(__linux__)
  // On Linux, PRIO_PROCESS with a thread id changes that thread only. Raising one's own
  // nice value needs no privilege; failure is harmless (the thread keeps priority 0).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kCollectorNice);
#endif
}

void name_thread(std::thread& t, const std::string& name) {
#if defined(__linux__)
  (void)pthread_setname_np(t.native_handle(), name.substr(0, 15).c_str());
#else
  (void)t, (void)name;
#endif
}

void name_thread(std::thread& t, const std::string& base, size_t index) {
  const std::string suffix = std::to_string(index);
  std::string name = base.substr(0, 15 - std::min<size_t>(14, suffix.size()) - 1);
  name += '-';
  name += suffix;
  name_thread(t, name);
}

void step_aside_while_stopping(const ThreadRegistry& registry) {
  for (int i = 0; registry.stopping(); ++i) {
    if (i < 16)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void ThreadRegistry::signal_preemption(MutatorThread* t) {
  if (send_preemption_signal(t)) preemption_signals_.fetch_add(1, std::memory_order_relaxed);
}

bool ThreadRegistry::set_no_preempt_if_any_preempted(MutatorThread* self) {
  bool any = false;
  for (MutatorThread* t : threads_)
    if (t != self && t->state.load(std::memory_order_seq_cst) == ThreadState::kPreempted) any = true;
  if (!any) return false;
  for (MutatorThread* t : threads_)
    if (t != self) t->poll_word.fetch_or(kPollNoPreempt, std::memory_order_seq_cst);
  wake_handlers();
  return true;
}

void ThreadRegistry::stop_the_world(MutatorThread* self) {
  registry_mu_.lock();
  stopping_.store(true, std::memory_order_relaxed);
  const uint64_t requested = now_ns();
  {
    std::lock_guard<std::mutex> lock(park_mu_);
    for (MutatorThread* t : threads_)
      if (t != self) request_poll(t, kPollStop);
  }
  // Spin briefly; then sleep on a running thread's state word, which it wakes when it
  // reaches a safe state - a stopper that keeps waking up to look would take the core
  // that a preempted mutator needs to get there. Every thread still running once the
  // delay has passed is signalled at once (not one after another as each stops: on a
  // busy machine each of those waits can be a time slice).
  constexpr uint64_t kSpinNs = 10'000;
  constexpr uint64_t kMaxSleepNs = 200'000;
  const bool preempt = preempt_delay_ns_ != kPreemptionOff;
  uint64_t next_signal = preempt ? requested + preempt_delay_ns_ : kPreemptionOff;
  // Backing off: a running thread may be blocked on a lock (a user's std::mutex) that a
  // preempted thread holds - it cannot reach a poll, and the holder cannot run. So when
  // the world has not stopped kBackOffAfterNs after preemption began and some thread is
  // preempted, the preempted threads are let go (kPollNoPreempt: they return to their
  // code and stop at a genuine poll, and no handler parks) for kBackOffForNs, and then
  // preemption resumes. A deadlock becomes a delay.
  constexpr uint64_t kBackOffAfterNs = 1'000'000, kBackOffForNs = 1'000'000;
  uint64_t preempting_since = next_signal, backed_off_until = 0;
  for (;;) {
    MutatorThread* running = nullptr;
    for (MutatorThread* t : threads_)
      if (t != self && t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) {
        running = t;
        break;
      }
    // A preempted thread may be about to leave its handler because of kPollNoPreempt
    // (woken, not yet kRunning): "all stopped" counts only once the bits are cleared
    // and the states read again - a thread leaving stores kRunning and then rereads
    // its poll word (the Dekker pair again), so it either shows up as running in the
    // next round or sees the bit cleared and stays parked.
    if (!running && backed_off_until == 0) break;
    const uint64_t now = now_ns();
    if (backed_off_until != 0 && (!running || now >= backed_off_until)) {
      for (MutatorThread* t : threads_)
        if (t != self) t->poll_word.fetch_and(~kPollNoPreempt, std::memory_order_seq_cst);
      backed_off_until = 0;
      preempting_since = next_signal = now;
      if (!running) continue;  // read the states again
    } else if (preempt && backed_off_until == 0 && now >= preempting_since + kBackOffAfterNs &&
               set_no_preempt_if_any_preempted(self)) {
      backed_off_until = now + kBackOffForNs;
      next_signal = kPreemptionOff;
    }
    if (now >= next_signal) {
      for (MutatorThread* t : threads_) {
        if (t != self && t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) signal_preemption(t);
      }
      next_signal = now + kPreemptionResendNs;
    }
    if (now < requested + kSpinNs) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    const uint64_t sleep_ns = std::min(kMaxSleepNs, next_signal > now ? next_signal - now : uint64_t{1000});
    running->stopper_waiting.store(true, std::memory_order_seq_cst);
    if (running->state.load(std::memory_order_seq_cst) == ThreadState::kRunning)
      wait_while_equal(reinterpret_cast<const uint32_t*>(&running->state), static_cast<uint32_t>(ThreadState::kRunning),
                       sleep_ns);
    running->stopper_waiting.store(false, std::memory_order_relaxed);
  }
  stopping_.store(false, std::memory_order_relaxed);
}

void ThreadRegistry::wake_handlers() {
  resume_seq_.fetch_add(1, std::memory_order_seq_cst);
  wake_all_waiters(reinterpret_cast<const uint32_t*>(&resume_seq_));
}

void ThreadRegistry::wait_for_resume(uint32_t seq) {
  wait_while_equal(reinterpret_cast<const uint32_t*>(&resume_seq_), seq, resume_wait_ns_.load(std::memory_order_relaxed));
}

uint64_t ThreadRegistry::resume_the_world() {
  // Every stop bit is cleared first, and then all sleepers are woken with one call:
  // threads parked in a preemption handler or at a poll all sleep on resume_seq_ (the
  // condition variable serves builds without futex waits). Woken one by one - or with
  // one call per kind - a wake-up could hand this thread's core to the woken thread on
  // a busy machine, and every thread not yet woken waited a time slice: pauses of
  // 1-5 ms at the end of an otherwise short pause, with two mutators on two cores.
  //
  // The pause ends here, when the bits clear; how long each thread then waited for a
  // core is its resume latency (GcStats::resume_latency), recorded by the thread.
  const uint64_t released = now_ns();
  resume_latency_.pause_ends_at(released);
  {
    std::lock_guard<std::mutex> lock(park_mu_);
    for (MutatorThread* t : threads_) t->poll_word.fetch_and(~(kPollStop | kPollNoPreempt), std::memory_order_seq_cst);
  }
  wake_handlers();
  park_cv_.notify_all();
  registry_mu_.unlock();
  return released;
}

void ThreadRegistry::for_each_thread(const std::function<void(MutatorThread&)>& fn) {
  MutexLock lock(registry_mu_);
  for (MutatorThread* t : threads_) fn(*t);
}

void ThreadRegistry::handshake_all(MutatorThread* self, const HandshakeOp& user_op, bool runs_anywhere,
                                   bool (*wanted)(const MutatorThread&)) {
  // An operation that throws must not leave a thread's request pending: the first
  // exception is kept and rethrown to the requester once every thread is done.
  std::mutex error_mu;
  std::exception_ptr first_error;
  const HandshakeOp op = [&](MutatorThread& t) {
    try {
      user_op(t);
    } catch (...) {
      std::lock_guard<std::mutex> guard(error_mu);
      if (!first_error) first_error = std::current_exception();
    }
  };
  run_handshakes(self, op, runs_anywhere, wanted);
  if (first_error) std::rethrow_exception(first_error);
}

void ThreadRegistry::run_handshakes(MutatorThread* self, const HandshakeOp& op, bool runs_anywhere,
                                    bool (*wanted)(const MutatorThread&)) {
  MutexLock lock(registry_mu_);
  const uint64_t requested = now_ns();
  auto post = [&](MutatorThread* t) {
    MutexLock hs(t->hs_mu);
    t->hs_op = &op;
    t->hs_op_runs_anywhere = runs_anywhere;
    request_poll(t, kPollHandshake);
  };
  // The collector's operations (those that run anywhere) are thread-safe: they are
  // posted to every thread first, so the threads serve them in parallel and the wait is
  // the slowest thread's, not the sum - on an oversubscribed machine each wait can be a
  // scheduling delay. Others (a user's handshake_all) run one thread after another.
  std::vector<MutatorThread*> targets;
  for (MutatorThread* t : threads_)
    if (!wanted || wanted(*t)) targets.push_back(t);
  if (runs_anywhere)
    for (MutatorThread* t : targets)
      if (t != self) post(t);
  for (MutatorThread* t : targets) {
    if (t == self) {
      NoHeapAccessScope no_heap(self);
      HandshakeOpScope in_op;
      op(*t);
      continue;
    }
    if (!runs_anywhere) post(t);
    Backoff backoff;
    const bool signal = runs_anywhere && preempt_delay_ns_ != kPreemptionOff;
    uint64_t next_signal = signal ? requested + preempt_delay_ns_ : kPreemptionOff;
    for (;;) {
      {
        MutexLock hs(t->hs_mu);
        if (t->hs_op == nullptr) break;  // the thread ran it at its poll
        const ThreadState st = t->state.load(std::memory_order_seq_cst);
        // A preempted thread may be anywhere in its own code: safe only for an
        // operation that runs anywhere.
        if (st == ThreadState::kNative || st == ThreadState::kParked ||
            (st == ThreadState::kPreempted && runs_anywhere)) {
          NoHeapAccessScope no_heap(self);
          HandshakeOpScope in_op;
          op(*t);  // safe thread: it cannot leave the safe state while we hold hs_mu
          t->hs_op = nullptr;
          t->poll_word.fetch_and(~kPollHandshake, std::memory_order_seq_cst);
          break;
        }
      }
      // (Only a thread still running: a signal to a thread in native code could interrupt
      // a blocking call there with EINTR.)
      const uint64_t now = now_ns();
      if (now >= next_signal && t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) {
        signal_preemption(t);
        next_signal = now + kPreemptionResendNs;
      }
      backoff.pause();
    }
  }
}

}  // namespace shoal::internal
