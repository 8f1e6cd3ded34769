// Parking: how the concurrency library blocks a thread (internal; runtime/parking.cc).
//
// Every blocking primitive (Lock, Condition, futures, the pools' idle workers) sleeps on
// a 32-bit "wake word" with the futex protocol: read the word, re-check the condition,
// then park(word, value_read) - which returns at once if the word no longer holds that
// value. A waker changes the state the waiter checks, then bumps the word and wakes.
// Because the kernel compares the word atomically with going to sleep, no wake-up is
// lost, and a spurious return is always allowed (callers loop).
//
// park() blocks in the GC-safe state when the thread is attached and running (as
// run_native: collections and handshakes do not wait for it), and, when `cancellable`,
// registers the word with the thread's current cancellation token first: cancel() bumps
// and wakes every registered word, so a parked task wakes up and sees the cancellation.
// The word may live inside a heap object: the caller keeps that object alive (it is on
// the caller's stack, captured when the thread goes native), and the registration is
// withdrawn, under the token's lock, before park() returns.
//
// TSan: the futex system calls are invisible to it, but they only put threads to sleep;
// every happens-before edge the library relies on is an atomic operation on the state
// next to the word, which TSan sees.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shoal/internal/mutator.h"

namespace shoal::internal {

using Clock = std::chrono::steady_clock;

// Sleeps while word == expected, at most until `deadline` (Clock::time_point::max():
// no limit). Returns false when the deadline passed.
bool park(std::atomic<uint32_t>& word, uint32_t expected, Clock::time_point deadline, bool cancellable);
// Wakes up to `count` threads parked on `word` (the caller has bumped it).
void unpark(std::atomic<uint32_t>& word, int count);
inline void bump_and_unpark(std::atomic<uint32_t>& word, int count) {
  word.fetch_add(1, std::memory_order_release);
  unpark(word, count);
}

// Spins (CPU pause) up to `rounds` times while !done(); true once done() holds. A wait
// that is usually short (a task hand-off) spins a few microseconds before it parks, as
// TBB's and most pools' waits do; on a single-CPU machine it does not spin.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}
// A running thread stops spinning as soon as a safepoint or handshake is requested of it
// (it then parks, GC-safe), so spinning does not lengthen time-to-safepoint.
bool spinning_allowed();
template <class Done>
bool spin_until(Done done, int rounds = 256) {
  if (!spinning_allowed()) return done();
  const MutatorState* self = current_mutator();
  for (int i = 0; i < rounds; ++i) {
    if (done()) return true;
    if (self && self->poll_word.load(std::memory_order_relaxed) != 0) break;
    cpu_relax();
  }
  return done();
}

// The current token's state (null when none is set) and whether it is cancelled.
struct CancelState;
CancelState* current_cancel_state();
bool cancel_state_cancelled(const CancelState* s);
[[noreturn]] void throw_cancelled(const char* what);
// Throws CancelledError naming `what` when the current token is cancelled.
void check_cancelled_in(const char* what);

// Runs f() on the calling thread in the GC-safe state if it is attached and running
// (run_native), else directly.
template <class F>
void block_gc_safe(F&& f);
void run_blocking(void (*fn)(void*), void* arg);
template <class F>
void block_gc_safe(F&& f) {
  run_blocking([](void* p) { (*static_cast<F*>(p))(); }, &f);
}

// A process-wide id for "who holds a lock": each thread gets one on first use, and a
// LockTicket gets one of its own (never reused).
// 0 until the thread's first use of current_holder_id().
extern constinit thread_local uint64_t tls_holder_id;
uint64_t new_holder_id();
inline uint64_t current_holder_id() {
  uint64_t id = tls_holder_id;
  if (id == 0) [[unlikely]]
    id = tls_holder_id = new_holder_id();
  return id;
}

// Deadline helpers.
inline Clock::time_point deadline_after(std::chrono::nanoseconds timeout) {
  if (timeout >= std::chrono::hours(24 * 365 * 100)) return Clock::time_point::max();
  return Clock::now() + timeout;
}

}  // namespace shoal::internal
