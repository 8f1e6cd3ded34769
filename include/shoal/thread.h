// Threads that belong to the heap (docs/concurrency.md, "Threads").
//
//   shoal::Thread t = shoal::Thread::start(heap, [](shoal::Value list) { ... }, list.value());
//   t.join();                    // GC-safe; rethrows what the function threw
//
// Thread::start runs fn(args...) on a new std::thread that is attached to the heap
// before fn runs (start_in: that has entered an isolate) and detached after it returns.
// Heap arguments (Value, Ref<T>) are rooted from the call until they are on the new
// thread's stack - a lambda capture would not be (see executor.h). The new thread runs
// with a child of the caller's current cancellation token, which cancel() cancels.
//
// join() waits in the GC-safe state, rethrows fn's exception, and ends with
// CancelledError if the joining task is cancelled meanwhile (the thread is still
// joinable then). A thread joining itself gets DeadlockError. The destructor of a
// joinable Thread joins it (GC-safe) and drops fn's exception - without cancelling it
// first (std::jthread requests a stop): call cancel() before dropping a thread that may
// be blocked in a cancellable wait, or the destructor waits as long as it does.
#pragma once

#include <thread>
#include <tuple>
#include <utility>

#include "shoal/cancellation.h"
#include "shoal/executor.h"
#include "shoal/future.h"
#include "shoal/heap.h"
#include "shoal/isolate.h"

namespace shoal {

// What Thread::current() reports about the calling thread (any thread may ask).
struct ThreadInfo {
  std::thread::id id;
  Heap* heap = nullptr;           // the heap it is attached to, or null
  Isolate* isolate = nullptr;     // the isolate it has entered, or null
  bool in_shared_isolate = false;
  CancellationToken token;        // its current cancellation token
};

class Thread {
 public:
  Thread() = default;
  Thread(Thread&&) noexcept = default;
  Thread& operator=(Thread&& other) noexcept;
  ~Thread();

  template <class F, class... Args>
  static Thread start(Heap& heap, F fn, Args&&... args) {
    return launch(heap, nullptr, std::move(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  static Thread start_in(Isolate& isolate, F fn, Args&&... args) {
    return launch(isolate.group().heap(), &isolate, std::move(fn), std::forward<Args>(args)...);
  }

  void join();
  bool joinable() const { return thread_.joinable(); }
  // Cancels the thread's token.
  void cancel() const { token_.cancel(); }
  const CancellationToken& token() const { return token_; }
  // True once fn has returned or thrown.
  bool is_done() const { return done_.valid() && done_.is_ready(); }
  std::thread::id id() const { return thread_.get_id(); }
  // The calling thread: its id, heap, isolate and current cancellation token.
  static ThreadInfo current();

 private:
  template <class F, class... Args>
  static Thread launch(Heap& heap, Isolate* isolate, F fn, Args&&... args) {
    Promise<void> done;
    Thread t;
    t.done_ = done.future();
    t.token_ = CancellationToken::current().child();
    auto rooted = std::make_tuple(internal::root_arg(heap, std::forward<Args>(args))...);
    t.thread_ = std::thread([&heap, isolate, token = t.token_, done = std::move(done), fn = std::move(fn),
                             rooted = std::move(rooted)]() mutable {
      run_body(heap, isolate, token, [&] {
        internal::fulfil(done, [&] { std::apply([&](auto&... a) { std::invoke(fn, a.get()...); }, rooted); });
        [[maybe_unused]] auto release_handles = std::move(rooted);  // while still attached
      });
    });
    return t;
  }
  // Attaches (or enters `isolate`), installs the token, runs body.
  static void run_body(Heap& heap, Isolate* isolate, const CancellationToken& token, const std::function<void()>& body);

  std::thread thread_;
  Future<void> done_;
  CancellationToken token_;
};

}  // namespace shoal
