// Asynchronous preemption: bounded time-to-safepoint for threads that do not poll.
//
// The problem. A running thread reaches a safepoint only at a poll: an allocation slow
// path, shoal::safepoint(), a transition to or from the native state. A loop that does
// neither (a tree walk, a numeric kernel, a spin on a flag) holds every pause hostage:
// the collector waits until the loop ends. Go had the same problem until Go 1.14, which
// interrupts such goroutines with a signal and parks them at the interrupted
// instruction when its compiler's metadata says that instruction is an asynchronous safe
// point. Shoal has no compiler of its own, so "safe" is decided at run time.
//
// The mechanism. When stop_the_world (or a collector handshake) has waited
// HeapOptions::preemption_delay_us for a thread that is still kRunning, it sends that
// thread a signal (SIGURG, as Go; pthread_kill), and again every few hundred
// microseconds while it waits. The handler, on the interrupted thread, parks it in
// place - state kPreempted, which a pause treats exactly like kParked - if all of these
// hold; otherwise it returns at once and the next signal or poll tries again:
//   1. the thread is attached, kRunning, and has a stop or collector handshake pending;
//   2. tls_no_preempt == 0 (include/shoal/internal/preemption.h): it is not inside a
//      region Shoal marks as indivisible;
//   3. the interrupted instruction lies in the code of the executable or of the object
//      that contains Shoal - not in libc, libstdc++, the allocator or the dynamic
//      linker, which may hold locks that a pause needs (malloc's); and
//   4. the thread has never switched to a fiber stack (its scan range is then only
//      known at a poll), and the handler runs on the thread's own stack below the
//      interrupted stack pointer (not on an alternate signal stack, which it would use
//      if it interrupted another handler installed with SA_ONSTACK).
//
// Why parking there is sound. At an arbitrary instruction of user code:
//   - Roots. The kernel saved every register of the interrupted code - general, vector
//     and flags - in the signal frame on the thread's own stack (the handler is
//     installed without SA_ONSTACK), below the interrupted stack pointer and its red
//     zone. The handler captures its context there, so the conservative scan of
//     [handler's sp, stack base) covers the interrupted registers, the red zone and every
//     frame: nothing the code held is missed, whatever register it was in.
//   - Allocation. A TLAB bump and the header store are one no-preempt region (the
//     inline fast path and the whole slow path), so a pause never retires a TLAB whose
//     cursor has moved past an object without a header, nor resumes a thread whose TLAB
//     it retired in the middle of a bump.
//   - Barriers. The marking-flag test and the store it guards are one region (write,
//     compare-and-swap, exchange, write_weak, read_weak; the list's retire), so no store
//     decided "not marking" before an initial pause lands after it, and no weak read
//     decided "not marking" hands out a target a final pause has cleared. The SATB buffer
//     is only changed inside the barrier's region.
//   - Locks. Every internal lock (internal::Mutex) raises the counter while held, and so
//     does every runtime std::mutex a running thread may wait for (ports, shared fields,
//     isolate hand-off, the C API's tables, the class table - all taken through
//     gc/preempt_safe_lock.h, the one lock type that does both): no thread is parked holding
//     a lock that a pause, the marker, or a running thread the pause waits for needs.
//     (A running thread blocked in pthread_mutex_lock is in libc: 3. would never let it
//     park, so its lock's holder must not be parked either.) Code in libc is excluded
//     by 3.
//   - Collector work done by mutators: lazy sweeping (a claimed page), marking assists
//     (grey objects in a private stack), collect/start/wait/verify/idle entry points -
//     a pause waits for a claimed page or would miss the private grey objects.
//   - Runtime invariants. Operations that keep raw references in C++ memory between
//     polls (freeze, deep copy, transfer, a weak handle's upgrade) or manipulate the
//     thread's own record (poll_slow, run_native's transitions, detach) are regions.
//   - Handshakes. A user's handshake_all and freeze's settling handshake rely on the
//     target being at a genuine poll (a mutation check and its store are not split by
//     them); they never run on a preempted thread: the requester waits for it to poll.
//     Only the collector's own handshakes, which need nothing but condition 2, run in
//     the handler: taking a thread's SATB buffer, and scanning its stack after an initial
//     pause (gc/thread_stack_scan.cc: the handler's context covers the interrupted
//     registers, as for a pause; the scan takes the root and work locks - internal
//     Mutexes, which no preemptible code holds - and allocates, which is safe because 3.
//     keeps the handler out of the allocator).
// What a preempted thread sees: nothing, except that any instruction of its own code
// outside those regions may now be a safepoint - exactly what a thread of a concurrent
// collector sees anyway, except for references kept only in memory the collector does
// not scan (a malloc'ed C++ container), which were never roots (docs/roots.md).
//
// Where it is off: on platforms other than Linux; in ThreadSanitizer builds (TSan
// delivers asynchronous signals only at its own interception points, with the
// ucontext of the original interruption); when the process had its own SIGURG handler
// before the first heap was created (Shoal does not take it over); in a statically
// linked executable (libc is then in the executable's own code, so 3. cannot exclude
// it); when malloc, free or the global operator new/delete resolve into the program's
// own code (a static allocator or sanitizer runtime, a replaced operator new: a thread
// parked inside could hold a lock that the pause's own allocations need); with
// HeapOptions::async_preemption = false. Polls still work everywhere.
#pragma once

#include <cstdint>

namespace shoal::internal {

struct MutatorThread;

// Installs the process-wide handler once. False when asynchronous preemption is not
// available in this process (see "Where it is off"); the reason is kept for
// preemption_unavailable_reason().
bool async_preemption_available();
const char* preemption_unavailable_reason();

// Interrupts `t` (attached, registered); returns false if the signal could not be sent.
bool send_preemption_signal(MutatorThread* t);

// The native thread handle of the calling thread, for send_preemption_signal.
uint64_t current_native_thread();

// Wakes every thread sleeping in wait_while_equal on word (async-signal-safe).
void wake_all_waiters(const uint32_t* word);
// True where wait_while_equal sleeps until wake_all_waiters (a futex); elsewhere (a
// ThreadSanitizer build, another platform) it naps and the caller must look again.
bool futex_waits_available();
// Blocks while *word == value, for at most timeout_ns (it may also return early).
void wait_while_equal(const uint32_t* word, uint32_t value, uint64_t timeout_ns);

}  // namespace shoal::internal
