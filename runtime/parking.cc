// Parking on futex words (include/shoal/internal/parking.h has the protocol).
#include "shoal/internal/parking.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <thread>

#include "gc/thread_registry.h"
#include "runtime/cancel_state.h"
#include "shoal/heap.h"

namespace shoal::internal {

namespace {
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

uint32_t* futex_address(std::atomic<uint32_t>& word) { return reinterpret_cast<uint32_t*>(&word); }

// FUTEX_WAIT with a relative timeout (null: none). Returns false on timeout.
bool futex_wait(std::atomic<uint32_t>& word, uint32_t expected, const timespec* timeout) {
  long r = syscall(SYS_futex, futex_address(word), FUTEX_WAIT_PRIVATE, expected, timeout, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

timespec to_timespec(std::chrono::nanoseconds d) {
  if (d < std::chrono::nanoseconds::zero()) d = std::chrono::nanoseconds::zero();
  timespec ts;
  ts.tv_sec = static_cast<time_t>(d.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(d.count() % 1000000000);
  return ts;
}

void register_wait(CancelState* s, std::atomic<uint32_t>* w) {
  MutexLock lock(s->mu);
  s->waits.push_back(w);
}

void unregister_wait(CancelState* s, std::atomic<uint32_t>* w) {
  MutexLock lock(s->mu);
  auto it = std::find(s->waits.begin(), s->waits.end(), w);
  if (it != s->waits.end()) {
    *it = s->waits.back();
    s->waits.pop_back();
  }
}

std::atomic<uint64_t> next_holder_id{1};
}  // namespace

void run_blocking(void (*fn)(void*), void* arg) {
  // Attached: shoal::run_native (which just runs fn when the thread is already off the
  // heap). Unattached: nothing to be safe from.
  if (!current_thread()) {
    fn(arg);
    return;
  }
  run_native([&] { fn(arg); });  // a futex wait: it does not throw
}

bool park(std::atomic<uint32_t>& word, uint32_t expected, Clock::time_point deadline, bool cancellable) {
  CancelState* token = cancellable ? tls_cancel_state : nullptr;
  if (token) {
    register_wait(token, &word);
    // Registered first, then checked: a cancel() after this check bumps the word, so
    // the futex call below returns at once.
    if (token->cancelled.load(std::memory_order_acquire)) {
      unregister_wait(token, &word);
      return true;
    }
  }
  bool in_time = true;
  block_gc_safe([&] {
    if (deadline == Clock::time_point::max()) {
      futex_wait(word, expected, nullptr);
      return;
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      in_time = false;
      return;
    }
    timespec ts = to_timespec(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    in_time = futex_wait(word, expected, &ts);
  });
  if (token) unregister_wait(token, &word);
  return in_time;
}

void unpark(std::atomic<uint32_t>& word, int count) {
  syscall(SYS_futex, futex_address(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

bool spinning_allowed() {
  static const bool allowed = std::thread::hardware_concurrency() > 1;
  return allowed;
}

constinit thread_local uint64_t tls_holder_id = 0;

uint64_t new_holder_id() { return next_holder_id.fetch_add(1, std::memory_order_relaxed); }

}  // namespace shoal::internal
