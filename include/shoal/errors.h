// Typed errors. Every misuse of the heap surfaces as one of these exceptions, thrown to
// the caller that misused it; the heap stays consistent after each of them.
// docs/errors.md says when each is thrown and what to do about it.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace shoal {

// Base class of every error Shoal throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The heap limit cannot satisfy an allocation even after a full collection.
class OutOfMemory : public Error {
 public:
  OutOfMemory(std::size_t requested, std::size_t limit, std::size_t footprint);
  // For failures that are not about the heap limit (the address-space reservation).
  OutOfMemory(std::size_t requested, const std::string& reason);
  std::size_t requested() const { return requested_; }
  std::size_t limit() const { return limit_; }

 private:
  std::size_t requested_, limit_;
};

// A heap operation was called from a thread that is not attached to a heap
// (no live shoal::MutatorScope on this thread), or attached to a different heap.
class NotAttached : public Error {
 public:
  using Error::Error;
};

// A heap operation at a moment the thread may not perform it: attaching a thread that is
// attached to another heap, or touching the heap (allocating, safepoint, collect,
// verify, handshake) inside run_native's function or inside a handshake operation.
class ThreadStateError : public Error {
 public:
  using Error::Error;
};

// A bad argument: invalid heap options (a limit smaller than one page), a malformed
// class definition, a small integer out of range.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// An index outside an array's, string's or collection's bounds (the list's length as the
// operation read it), or remove_last on an empty list.
class RangeError : public Error {
 public:
  using Error::Error;
};

// A collection changed under an operation that needed it not to: an iterator whose
// collection was structurally modified (add, insert, remove, clear) since it started,
// or a read that met a position whose element racing unsynchronised writers removed
// (include/shoal/growable_list.h). Only a program that mutates a collection while
// another thread or an iteration uses it without a lock sees it; the collection is
// intact and usable after it.
class ConcurrentModificationError : public Error {
 public:
  using Error::Error;
};

// The heap verifier found a broken invariant (only thrown when HeapOptions::verify_after_gc
// is set; Heap::verify() reports instead of throwing).
class HeapCorruption : public Error {
 public:
  using Error::Error;
};

// --- The sharing model (include/shoal/sharing.h, include/shoal/isolate.h; docs/sharing.md) ---

// A mutation of an object that can no longer change: a reference or byte store into a
// frozen, being-frozen or deeply immutable object (Kotlin/Native's
// InvalidMutabilityException). The object is unchanged.
class InvalidMutabilityError : public Error {
 public:
  using Error::Error;
};

// An isolate touched a mutable, non-shared object that another isolate owns: a store
// into it, or (with IsolateGroupOptions::checked_reads) a read (Kotlin/Native's
// IncorrectDereferenceException). Nothing was written.
class IncorrectDereferenceError : public Error {
 public:
  using Error::Error;
};

// Code in the shared isolate (run_shared, native callbacks) touched isolated state: an
// isolated global, or a mutable object an isolate owns. Nothing was written.
class IsolationError : public Error {
 public:
  using Error::Error;
};

// A value that is not trivially shareable where only shareable values are allowed: a
// shared field (without share-everything), a field of a deeply immutable instance. The
// message names the field and the value's class; the field or object is unchanged.
class NotShareableError : public Error {
 public:
  using Error::Error;
};

// IsolateScope with shoal::try_enter found the isolate entered by another thread.
class IsolateBusyError : public Error {
 public:
  using Error::Error;
};

// A lazily initialised global or shared field whose initializer (directly or
// indirectly) read the same field on the same thread.
class CyclicInitializationError : public Error {
 public:
  using Error::Error;
};

// --- The concurrency library (include/shoal/lock.h, executor.h, future.h, actor.h;
// docs/concurrency.md) ---

// A Lock used against its rules: acquired again by the thread (or ticket) that holds it
// (it is not reentrant: this would deadlock), released by a thread that does not hold it,
// or a Condition waited on without holding its lock. The lock is unchanged.
class LockError : public Error {
 public:
  using Error::Error;
};

// A blocking wait that could never end, refused instead of hanging: Future::get on a
// thread of the executor that has to complete the future (a pool worker, a serial
// executor's or actor's own task), a TaskGroup awaited from inside its own serial
// executor, a thread joining itself, an executor shut down from one of its own tasks.
class DeadlockError : public Error {
 public:
  using Error::Error;
};

// The task's cancellation token was cancelled (a failing sibling in a TaskGroup, a
// cancelled parent, ThreadPool::shutdown_now, Thread::cancel): thrown by
// check_cancelled() and by the blocking waits (Lock::acquire, Condition::wait,
// Future::get, Thread::join) of a task whose token is cancelled, and stored in the
// futures of tasks dropped before they ran.
class CancelledError : public Error {
 public:
  using Error::Error;
};

// A task handed to an executor (ThreadPool, SerialExecutor, Actor, Worker) that has shut
// down or is shutting down. The task was not queued.
class ExecutorShutdownError : public Error {
 public:
  using Error::Error;
};

}  // namespace shoal
