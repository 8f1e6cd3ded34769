// The root set: what the collector starts marking from.
//
//   1. Every attached thread's stack and saved registers, scanned conservatively
//      (gc/stack_scanner.h): any word that points into an allocated object keeps it.
//   2. Persistent handles (shoal::Persistent<T>): precise root slots in a per-heap
//      region of nodes, usable from any thread, attached or not.
//   3. Registered global slots (Heap::add_root): precise.
// Weak handles (shoal::WeakRef<T>) live in the same node region but are not roots:
// after marking, the collector clears every weak slot whose target is unmarked, in the
// pause, before the sweep frees the target - so a weak handle reads either its live
// target or null, never freed memory.
//
// Roots of kinds 2 and 3 are read in the pause under their own locks; a thread changes
// them under the same lock (node acquire/release, add/remove) or with an atomic store
// (Persistent::set), so the pause sees either the old or the new value. Both are safe
// when the storing thread is attached: it holds the new value on its stack or got it
// from a slot that keeps it. An unattached thread must not carry a reference from one
// handle to another across a collection (its stack is not scanned); see persistent.h.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "shoal/internal/mutex.h"
#include "shoal/value.h"

namespace shoal {
class Heap;
}

namespace shoal::internal {

struct PersistentNode {
  Slot slot;
  PersistentNode* next_free = nullptr;
  Heap* heap = nullptr;
  bool in_use = false;
  bool weak = false;  // a WeakRef: not a root; cleared when its target dies
};

class RootSet {
 public:
  explicit RootSet(Heap* heap) : heap_(heap) {}
  ~RootSet();

  PersistentNode* acquire(Value initial, bool weak = false) SHOAL_EXCLUDES(mu_);
  void release(PersistentNode* node) SHOAL_EXCLUDES(mu_);
  void add_global(Slot* slot) SHOAL_EXCLUDES(mu_);
  void remove_global(Slot* slot) SHOAL_EXCLUDES(mu_);
  size_t persistent_count() SHOAL_EXCLUDES(mu_);

  // Calls f(value) for every persistent and global root value (under the lock).
  template <class F>
  void for_each_root(F&& f) SHOAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (const auto& chunk : chunks_)
      for (size_t i = 0; i < kChunkSize; ++i)
        if (chunk[i].in_use && !chunk[i].weak) f(chunk[i].slot.load());
    for (Slot* s : globals_) f(s->load());
  }

  // Pause only, after marking: calls f(slot) for every weak handle's slot.
  template <class F>
  void for_each_weak(F&& f) SHOAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (const auto& chunk : chunks_)
      for (size_t i = 0; i < kChunkSize; ++i)
        if (chunk[i].in_use && chunk[i].weak) f(chunk[i].slot);
  }

 private:
  static constexpr size_t kChunkSize = 256;
  Heap* heap_;
  Mutex mu_;
  std::vector<std::unique_ptr<PersistentNode[]>> chunks_ SHOAL_GUARDED_BY(mu_);
  PersistentNode* free_ SHOAL_GUARDED_BY(mu_) = nullptr;
  size_t in_use_ SHOAL_GUARDED_BY(mu_) = 0;
  std::vector<Slot*> globals_ SHOAL_GUARDED_BY(mu_);
};

}  // namespace shoal::internal
