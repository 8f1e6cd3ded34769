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

#include "shoal/errors.h"

namespace shoal::internal {

constinit thread_local MutatorState* tls_mutator = nullptr;

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
  t->stack_base = t->own_stack_base = stack.hi;
  MutexLock lock(registry_mu_);
  t->index = next_index_++;
  threads_.push_back(t);
  return t;
}

void ThreadRegistry::detach(MutatorThread* self) {
  with_captured_context(self->context, [&] {
    self->state.store(ThreadState::kNative, std::memory_order_seq_cst);
    MutexLock lock(registry_mu_);
    threads_.erase(std::find(threads_.begin(), threads_.end(), self));
  });
  delete self;
}

size_t ThreadRegistry::count() {
  MutexLock lock(registry_mu_);
  return threads_.size();
}

void check_heap_access(const MutatorThread* t, const char* what) {
  if (t->no_heap_depth > 0)
    throw ThreadStateError(std::string(what) +
                           ": the heap may not be touched inside run_native or a handshake operation");
}

void ThreadRegistry::run_own_handshake(MutatorThread* self) {
  MutexLock lock(self->hs_mu);
  if (self->hs_op) {
    NoHeapAccessScope no_heap(self);
    (*self->hs_op)(*self);
    self->hs_op = nullptr;
    self->poll_word.fetch_and(~kPollHandshake, std::memory_order_seq_cst);
  }
}

void ThreadRegistry::wait_until_stop_cleared(MutatorThread* self) {
  std::unique_lock<std::mutex> lock(park_mu_);
  park_cv_.wait(lock, [&] { return (self->poll_word.load(std::memory_order_acquire) & kPollStop) == 0; });
}

void ThreadRegistry::poll_slow(MutatorThread* self) {
  with_captured_context(self->context, [&] {
    for (;;) {
      const uint32_t pw = self->poll_word.load(std::memory_order_seq_cst);
      if (pw == 0) return;
      if (pw & kPollHandshake) run_own_handshake(self);
      if (pw & kPollStop) {
        self->state.store(ThreadState::kParked, std::memory_order_seq_cst);
        wait_until_stop_cleared(self);
        self->state.store(ThreadState::kRunning, std::memory_order_seq_cst);
      }
    }
  });
}

void ThreadRegistry::return_to_running(MutatorThread* self) {
  for (;;) {
    self->state.store(ThreadState::kRunning, std::memory_order_seq_cst);
    const uint32_t pw = self->poll_word.load(std::memory_order_seq_cst);
    if (pw == 0) return;
    // Back to the safe state with the context captured on entry, then serve the request.
    self->state.store(ThreadState::kNative, std::memory_order_seq_cst);
    if (pw & kPollHandshake) run_own_handshake(self);
    if (pw & kPollStop) wait_until_stop_cleared(self);
  }
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

void step_aside_while_stopping(const ThreadRegistry& registry) {
  for (int i = 0; registry.stopping(); ++i) {
    if (i < 16)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void ThreadRegistry::stop_the_world(MutatorThread* self) {
  registry_mu_.lock();
  stopping_.store(true, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(park_mu_);
    for (MutatorThread* t : threads_)
      if (t != self) request_poll(t, kPollStop);
  }
  for (MutatorThread* t : threads_) {
    if (t == self) continue;
    Backoff backoff;
    while (t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) backoff.pause();
  }
  stopping_.store(false, std::memory_order_relaxed);
}

uint64_t ThreadRegistry::resume_the_world() {
  {
    std::lock_guard<std::mutex> lock(park_mu_);
    for (MutatorThread* t : threads_) t->poll_word.fetch_and(~kPollStop, std::memory_order_seq_cst);
  }
  const auto released = std::chrono::steady_clock::now().time_since_epoch();
  registry_mu_.unlock();
  park_cv_.notify_all();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(released).count());
}

void ThreadRegistry::handshake_all(MutatorThread* self, const HandshakeOp& user_op) {
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
  run_handshakes(self, op);
  if (first_error) std::rethrow_exception(first_error);
}

void ThreadRegistry::run_handshakes(MutatorThread* self, const HandshakeOp& op) {
  MutexLock lock(registry_mu_);
  for (MutatorThread* t : threads_) {
    if (t == self) {
      NoHeapAccessScope no_heap(self);
      op(*t);
      continue;
    }
    {
      MutexLock hs(t->hs_mu);
      t->hs_op = &op;
      request_poll(t, kPollHandshake);
    }
    Backoff backoff;
    for (;;) {
      {
        MutexLock hs(t->hs_mu);
        if (t->hs_op == nullptr) break;  // the thread ran it at its poll
        if (t->state.load(std::memory_order_seq_cst) != ThreadState::kRunning) {
          NoHeapAccessScope no_heap(self);
          op(*t);  // safe thread: it cannot leave the safe state while we hold hs_mu
          t->hs_op = nullptr;
          t->poll_word.fetch_and(~kPollHandshake, std::memory_order_seq_cst);
          break;
        }
      }
      backoff.pause();
    }
  }
}

}  // namespace shoal::internal
