// Finalizers: callbacks that run after their target object has been found unreachable.
//
// Model (JavaScript's FinalizationRegistry, Java's Cleaner): the callback is a plain
// std::function that does not receive the object. The collector never resurrects
// anything: when a cycle's marking finds the target white, the callback moves to the
// pending queue (in the pause, before the sweep frees the target) and the target is
// freed like any dead object. So a finalizer cannot observe or revive a half-dead
// object; it cleans up what the object stood for (native memory, a file descriptor,
// a count) from data it captured itself. If the callback captures a strong handle
// (Persistent) to its own target, the target never dies: a leak, not a corruption.
//
// Where callbacks run: never in a pause and never on a collector thread. The embedder
// calls Heap::run_finalizers() on a thread of its choice (attached or not; an attached
// one may allocate in the callback). HeapOptions::on_finalizers_pending, if set, is
// called after a cycle that queued some, outside the pause, on the thread that ended
// the cycle (a mutator or the marker thread): it should only post a wake-up.
//
// Invariants: an entry is in exactly one of `live_` (target not yet found dead) or
// `pending_` (callback not yet run), or gone (run, or dropped with the heap); each
// callback runs at most once. Cost: the pause walks `live_` once per cycle (one mark
// bit test per registered finalizer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "shoal/internal/mutex.h"
#include "shoal/object.h"

namespace shoal::internal {

class HeapImpl;

class FinalizerTable {
 public:
  // Returns the registration's id (never 0), for cancel().
  uint64_t add(Object* target, std::function<void()> callback) SHOAL_EXCLUDES(mu_);
  // Removes the registration if its callback has not started yet (its target alive, or
  // dead and the callback still pending); true if it did. O(registrations).
  bool cancel(uint64_t id) SHOAL_EXCLUDES(mu_);
  // In a pause, once marking has terminated: queues the callbacks of white targets.
  // Returns how many it queued.
  size_t queue_dead_in_pause(HeapImpl& heap) SHOAL_EXCLUDES(mu_);
  // Runs up to `max` pending callbacks on the calling thread; returns how many ran. An
  // exception from a callback propagates; the callbacks after it stay queued.
  size_t run_pending(size_t max) SHOAL_EXCLUDES(mu_);
  size_t pending() const SHOAL_EXCLUDES(mu_);

 private:
  struct Entry {
    Object* target;
    uint64_t id;
    std::function<void()> callback;
  };
  struct Pending {
    uint64_t id;
    std::function<void()> callback;
  };
  mutable Mutex mu_;
  uint64_t next_id_ SHOAL_GUARDED_BY(mu_) = 1;
  std::vector<Entry> live_ SHOAL_GUARDED_BY(mu_);
  std::deque<Pending> pending_ SHOAL_GUARDED_BY(mu_);
};

}  // namespace shoal::internal
