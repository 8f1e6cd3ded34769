// Cancellation tokens (docs/concurrency.md, "Cancellation").
//
//   shoal::CancellationToken token;                    // a root token
//   shoal::CancellationToken child = token.child();    // cancelled with its parent
//   { shoal::CancellationScope scope(child);           // the current token on this thread
//     ...; shoal::check_cancelled(); ... }             // throws CancelledError once cancelled
//   token.cancel();                                    // any thread, idempotent
//
// Every task an executor runs (ThreadPool, SerialExecutor, TaskGroup, Actor, Worker,
// Thread) runs with a current token. Cancellation is cooperative and observable: a task
// polls check_cancelled() or is_cancelled(), and the library's blocking waits - Lock::
// acquire, Condition::wait, Future::get, Thread::join - wake up and throw CancelledError
// when the current token is cancelled while they wait (or already was). A cancelled
// token cancels its children (created before or after); a child never cancels its
// parent. Tokens are small shared handles: copy them freely, from any thread, attached
// or not.
#pragma once

#include <memory>

namespace shoal {

namespace internal {
struct CancelState;
}

class CancellationToken {
 public:
  // A new root token, not cancelled. (A moved-from token - that of a moved-from Thread -
  // is never cancelled and cancelling it does nothing.)
  CancellationToken();
  // A token cancelled when this one is (at once if this one already is).
  CancellationToken child() const;
  // Cancels this token and all its descendants and wakes every blocking wait under them.
  void cancel() const;
  bool is_cancelled() const;
  // Throws CancelledError if cancelled.
  void throw_if_cancelled() const;
  // The calling thread's current token (a fresh, never-cancelled token outside any task
  // or CancellationScope).
  static CancellationToken current();

  friend bool operator==(const CancellationToken& a, const CancellationToken& b) { return a.state_ == b.state_; }
  internal::CancelState* state() const { return state_.get(); }

 private:
  explicit CancellationToken(std::shared_ptr<internal::CancelState> s) : state_(std::move(s)) {}
  std::shared_ptr<internal::CancelState> state_;
};

// Makes `token` the calling thread's current token for the scope's lifetime (scopes
// nest; the previous token is current again afterwards).
class CancellationScope {
 public:
  explicit CancellationScope(CancellationToken token);
  ~CancellationScope();
  CancellationScope(const CancellationScope&) = delete;
  CancellationScope& operator=(const CancellationScope&) = delete;

 private:
  CancellationToken token_;
  internal::CancelState* previous_;
};

// Throws CancelledError when the calling thread's current token is cancelled.
void check_cancelled();
// True when the calling thread's current token is cancelled.
bool is_cancelled();

}  // namespace shoal
