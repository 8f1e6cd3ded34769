// shoal::Thread (include/shoal/thread.h).
#include "shoal/thread.h"

#include <cstdio>
#include <cstdlib>

#include "shoal/internal/parking.h"

namespace shoal {

void Thread::run_body(Heap& heap, Isolate* isolate, const CancellationToken& token,
                      const std::function<void()>& body) {
  if (isolate) {
    IsolateScope enter(*isolate);
    CancellationScope scope(token);
    body();
  } else {
    MutatorScope attach(heap);
    CancellationScope scope(token);
    body();
  }
}

ThreadInfo Thread::current() {
  ThreadInfo info;
  info.id = std::this_thread::get_id();
  info.heap = current_heap();
  info.isolate = current_isolate();
  info.in_shared_isolate = in_shared_isolate();
  info.token = CancellationToken::current();
  return info;
}

void Thread::join() {
  if (!thread_.joinable()) throw InvalidArgument("Thread::join: the thread is not joinable (joined already, or empty)");
  if (thread_.get_id() == std::this_thread::get_id()) throw DeadlockError("Thread::join: a thread cannot join itself");
  done_.wait();  // GC-safe; CancelledError if the joiner's token is cancelled
  internal::block_gc_safe([&] { thread_.join(); });
  std::exception_ptr error = done_.error();
  if (error) std::rethrow_exception(error);
}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    if (thread_.joinable()) {
      std::fprintf(stderr, "shoal: a joinable shoal::Thread was assigned over (join it first)\n");
      std::abort();
    }
    thread_ = std::move(other.thread_);
    done_ = std::move(other.done_);
    token_ = std::move(other.token_);
  }
  return *this;
}

Thread::~Thread() {
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    std::fprintf(stderr, "shoal: a shoal::Thread destroyed on its own thread while joinable\n");
    std::abort();
  }
  internal::block_gc_safe([&] { thread_.join(); });
}

}  // namespace shoal
