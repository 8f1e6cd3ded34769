// Persistent-handle region and global root slots. See roots.h.
#include "gc/roots.h"

#include <algorithm>
#include <mutex>

#include "heap/heap_impl.h"
#include "shoal/errors.h"
#include "shoal/persistent.h"

namespace shoal::internal {

namespace {
// Node chunks of destroyed heaps that still had live Persistents; kept for the process's
// lifetime so those handles stay valid (and null).
std::mutex g_orphans_mu;
std::vector<std::unique_ptr<PersistentNode[]>>& orphaned_chunks() {
  static auto* chunks = new std::vector<std::unique_ptr<PersistentNode[]>>();
  return *chunks;
}
}  // namespace

// A Persistent may outlive its heap (a misuse, but not one that may crash): its node is
// orphaned - it reads as null from then on and its memory is kept.
RootSet::~RootSet() {
  MutexLock lock(mu_);
  if (in_use_ == 0) return;
  std::lock_guard<std::mutex> orphans(g_orphans_mu);
  for (auto& chunk : chunks_) {
    for (size_t i = 0; i < kChunkSize; ++i) {
      chunk[i].heap = nullptr;
      chunk[i].slot.store_root(Value::null());
    }
    orphaned_chunks().push_back(std::move(chunk));
  }
}

PersistentNode* RootSet::acquire(Value initial, bool weak) {
  MutexLock lock(mu_);
  if (!free_) {
    chunks_.push_back(std::make_unique<PersistentNode[]>(kChunkSize));
    PersistentNode* chunk = chunks_.back().get();
    for (size_t i = kChunkSize; i-- > 0;) {
      chunk[i].heap = heap_;
      chunk[i].next_free = free_;
      free_ = &chunk[i];
    }
  }
  PersistentNode* n = free_;
  free_ = n->next_free;
  n->next_free = nullptr;
  n->slot.store_root(initial);
  n->weak = weak;
  n->in_use = true;
  ++in_use_;
  return n;
}

void RootSet::release(PersistentNode* node) {
  MutexLock lock(mu_);
  node->slot.store_root(Value::null());
  node->in_use = false;
  node->next_free = free_;
  free_ = node;
  --in_use_;
}

void RootSet::add_global(Slot* slot) {
  if (!slot) throw InvalidArgument("add_root: null slot");
  MutexLock lock(mu_);
  globals_.push_back(slot);
}

void RootSet::remove_global(Slot* slot) {
  MutexLock lock(mu_);
  auto it = std::find(globals_.begin(), globals_.end(), slot);
  if (it == globals_.end()) throw InvalidArgument("remove_root: slot was never added");
  globals_.erase(it);
}

size_t RootSet::persistent_count() {
  MutexLock lock(mu_);
  return in_use_;
}

PersistentNode* persistent_acquire(Heap& heap, Value initial) { return heap.impl().roots.acquire(initial); }
void persistent_release(PersistentNode* node) {
  if (node->heap) node->heap->impl().roots.release(node);  // else orphaned: see ~RootSet
}
Slot& persistent_slot(PersistentNode* node) { return node->slot; }
PersistentNode* weak_acquire(Heap& heap, Value initial) { return heap.impl().roots.acquire(initial, /*weak=*/true); }

Value weak_get(PersistentNode* node) {
  const Value v = node->slot.load();
  if (!v.is_object() || !node->heap) return v;
  // During concurrent marking, upgrading a weak reference to a strong one must shade the
  // target: the caller may store it into an already-scanned object (no barrier fires on
  // insertion), and the snapshot did not include it. No safepoint lies between the load
  // and the shade, so the final pause cannot clear the slot in between.
  MutatorThread* t = current_thread();
  if (t && t->heap == &node->heap->impl()) t->heap->collector.shade(t, v.as_object());
  return v;
}

void throw_empty_persistent() {
  throw InvalidArgument("Persistent::set on an empty handle; construct it with Persistent(heap, target)");
}

Heap& persistent_heap(PersistentNode* node) {
  if (!node->heap) throw InvalidArgument("Persistent: its heap has been destroyed");
  return *node->heap;
}

}  // namespace shoal::internal
