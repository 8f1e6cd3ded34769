// Cancellation tokens (include/shoal/cancellation.h; the protocol is in cancel_state.h).
#include "shoal/cancellation.h"

#include <string>

#include "runtime/cancel_state.h"
#include "shoal/errors.h"
#include "shoal/internal/parking.h"

namespace shoal {

namespace internal {
constinit thread_local CancelState* tls_cancel_state = nullptr;

CancelState* current_cancel_state() { return tls_cancel_state; }
bool cancel_state_cancelled(const CancelState* s) { return s && s->cancelled.load(std::memory_order_acquire); }

void throw_cancelled(const char* what) { throw CancelledError(std::string(what) + ": the task was cancelled"); }

void check_cancelled_in(const char* what) {
  if (cancel_state_cancelled(tls_cancel_state)) throw_cancelled(what);
}

namespace {
// The token and its descendants, with a work list rather than recursion: a chain of
// child tokens may be as deep as the program likes.
void cancel_state(const std::shared_ptr<CancelState>& root) {
  std::vector<std::shared_ptr<CancelState>> work{root};
  while (!work.empty()) {
    const std::shared_ptr<CancelState> s = std::move(work.back());
    work.pop_back();
    if (s->cancelled.exchange(true, std::memory_order_acq_rel)) continue;
    MutexLock lock(s->mu);
    for (std::atomic<uint32_t>* w : s->waits) bump_and_unpark(*w, INT32_MAX);
    for (auto& weak : s->children)
      if (auto c = weak.lock()) work.push_back(std::move(c));
    s->children.clear();
  }
}
}  // namespace
}  // namespace internal

using internal::CancelState;

CancellationToken::CancellationToken() : state_(std::make_shared<CancelState>()) {}

// A moved-from token holds no state: it is never cancelled, cancelling it does nothing
// (as std::jthread::request_stop on a moved-from thread), and its child is a new root.
CancellationToken CancellationToken::child() const {
  auto c = std::make_shared<CancelState>();
  if (!state_) return CancellationToken(std::move(c));
  {
    internal::MutexLock lock(state_->mu);
    if (!state_->cancelled.load(std::memory_order_acquire)) {
      auto& kids = state_->children;
      // Drop children nobody holds any more before the list grows (amortised O(1)).
      if (kids.size() >= 16 && (kids.size() & (kids.size() - 1)) == 0)
        std::erase_if(kids, [](const std::weak_ptr<CancelState>& w) { return w.expired(); });
      kids.push_back(c);
      return CancellationToken(std::move(c));
    }
  }
  c->cancelled.store(true, std::memory_order_release);
  return CancellationToken(std::move(c));
}

void CancellationToken::cancel() const {
  if (state_) internal::cancel_state(state_);
}

bool CancellationToken::is_cancelled() const { return state_ && state_->cancelled.load(std::memory_order_acquire); }

void CancellationToken::throw_if_cancelled() const {
  if (is_cancelled()) internal::throw_cancelled("CancellationToken::throw_if_cancelled");
}

CancellationToken CancellationToken::current() {
  CancelState* s = internal::tls_cancel_state;
  if (!s) return CancellationToken();
  // The scope that installed it holds a shared_ptr; hand out another reference.
  return CancellationToken(s->shared_from_this());
}

CancellationScope::CancellationScope(CancellationToken token)
    : token_(std::move(token)), previous_(internal::tls_cancel_state) {
  internal::tls_cancel_state = token_.state();
}

CancellationScope::~CancellationScope() { internal::tls_cancel_state = previous_; }

void check_cancelled() { internal::check_cancelled_in("check_cancelled"); }

bool is_cancelled() { return internal::cancel_state_cancelled(internal::tls_cancel_state); }

}  // namespace shoal
