// Isolated globals and shared fields (internal side; include/shoal/isolate.h).
//
// IsolatedGlobalDecl: a declaration the group numbers (index); each isolate keeps its
// own GlobalCell per index (runtime/isolate_context.h), created on first use, touched
// only by the isolate's holder thread - so no lock on the read path. Destroying the
// handle gives the index back and drops every isolate's cell (GroupImpl::unregister_global);
// a cell carries its declaration's serial, so a cell left over from an earlier holder
// of a reused index is never mistaken for the new global's.
//
// SharedFieldState: the value lives in a Slot registered as a heap root; reads are an
// acquire load, writes Heap::store_root (the root lock: atomic with respect to pauses
// and shaded while marking). Initialisation (phase, initializer thread, error,
// generation) is guarded by mu; waiters block in run_native on cv. `generation` counts
// failed initialisations, so every waiter of the failed attempt - and only those - gets
// its exception.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "shoal/internal/mutex.h"
#include "shoal/value.h"

namespace shoal::internal {

class GroupImpl;

struct IsolatedGlobalDecl {
  std::string name;
  std::function<Value()> initializer;
  uint64_t group_serial = 0;
  uint64_t serial = 0;                     // unique per process (GlobalCell::serial)
  std::mutex mu;                           // orders the handle's and the group's destruction
  std::atomic<GroupImpl*> group{nullptr};  // null once the group is destroyed (set under mu)
  size_t index = 0;
};

struct SharedFieldState {
  enum Phase : int { kUninitialized, kInitializing, kDone };

  std::string name;
  std::function<Value()> initializer;
  uint64_t group_serial = 0;
  Slot slot;
  std::atomic<int> phase{kUninitialized};
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<GroupImpl*> group{nullptr};  // null once the group is destroyed (set under mu)
  bool rooted = false;            // guarded by mu: slot is a root of group->heap
  std::thread::id initializer_thread;
  std::exception_ptr error;       // of the last failed initialisation
  uint64_t generation = 0;        // failed initialisations so far

  // Called by the group's destructor: the slot stops being a root.
  void detach_from_group();
};

}  // namespace shoal::internal
