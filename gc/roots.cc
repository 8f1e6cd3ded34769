// Persistent-handle region and global root slots. See roots.h for the root lock and why
// it makes every handle operation safe from every thread state.
#include "gc/roots.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "gc/preempt_safe_lock.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"
#include "shoal/persistent.h"

namespace shoal::internal {

namespace {
// Node chunks of destroyed heaps that still had live handles, each with its count of
// them: kept while those handles exist, so they stay valid (and null), and freed with
// the last one.
struct OrphanedChunk {
  std::unique_ptr<PersistentNode[]> nodes;
  size_t live;
};
std::mutex g_orphans_mu;
std::vector<OrphanedChunk>& orphaned_chunks() {
  static auto* chunks = new std::vector<OrphanedChunk>();
  return *chunks;
}

void release_orphan(PersistentNode* node) {
  constexpr size_t chunk_size = RootSet::kChunkSize;
  internal::PreemptSafeLock orphans(g_orphans_mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  std::vector<OrphanedChunk>& chunks = orphaned_chunks();
  const auto holds = [&](const OrphanedChunk& c) {
    return !std::less<PersistentNode*>()(node, c.nodes.get()) && std::less<PersistentNode*>()(node, c.nodes.get() + chunk_size);
  };
  const auto it = std::find_if(chunks.begin(), chunks.end(), holds);
  if (it == chunks.end() || !node->in_use) return;
  node->in_use = false;
  if (--it->live == 0) chunks.erase(it);
}
}  // namespace

size_t orphaned_handle_chunks() {
  internal::PreemptSafeLock orphans(g_orphans_mu);
  return orphaned_chunks().size();
}

void require_running(const HeapImpl& heap, const char* what) {
  const MutatorThread* t = current_thread();
  const char* why = nullptr;
  if (!t)
    why = "the calling thread is not attached";
  else if (t->heap != &heap)
    why = "the calling thread is attached to another heap";
  else if (t->no_heap_depth > 0)
    why = "the calling thread is inside run_native or a handshake operation";
  if (!why) return;
  throw ThreadStateError(std::string(what) + ": " + why +
                         ", so a raw reference on its stack is not a root. Operations that take or "
                         "return a raw reference need a running thread of the handle's heap; from "
                         "anywhere, copy or set a handle from another handle, or upgrade a WeakRef "
                         "with lock() (docs/roots.md)");
}

// A handle may outlive its heap (a misuse, but not one that may crash): its node is
// orphaned - it reads as null from then on, and its chunk's memory is kept until the
// chunk's last such handle is destroyed. Chunks with no live handle are freed at once.
RootSet::~RootSet() {
  MutexLock lock(mu_);
  if (in_use_ == 0) return;
  internal::PreemptSafeLock orphans(g_orphans_mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  for (auto& chunk : chunks_) {
    size_t live = 0;
    for (size_t i = 0; i < kChunkSize; ++i) {
      chunk[i].heap = nullptr;
      SlotAccess::store(chunk[i].slot, Value::null());
      live += chunk[i].in_use ? 1 : 0;
    }
    if (live != 0) orphaned_chunks().push_back({std::move(chunk), live});
  }
}

void RootSet::shade(Value v) {
  if (v.is_object()) heap_->impl().collector.shade_root(v.as_object());
}

PersistentNode* RootSet::take_node(Value initial, bool weak) {
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
  n->weak = weak;
  store(n, initial);
  n->in_use = true;
  ++in_use_;
  return n;
}

PersistentNode* RootSet::acquire(Value initial, bool weak) {
  MutexLock lock(mu_);
  return take_node(initial, weak);
}

Value RootSet::read_source(const PersistentNode* from) {
  const Value v = from->slot.load();
  if (copy_hook_) copy_hook_();
  return v;
}

void RootSet::store(PersistentNode* node, Value v) {
  if (!node->weak) shade(v);
  SlotAccess::store(node->slot, v);
}

PersistentNode* RootSet::copy(const PersistentNode* from, bool weak) {
  MutexLock lock(mu_);
  return take_node(read_source(from), weak);
}

void RootSet::set(PersistentNode* node, Value v) {
  MutexLock lock(mu_);
  store(node, v);
}

void RootSet::set_from(PersistentNode* node, const PersistentNode* from) {
  MutexLock lock(mu_);
  store(node, read_source(from));
}

void RootSet::release(PersistentNode* node) {
  MutexLock lock(mu_);
  SlotAccess::store(node->slot, Value::null());
  node->in_use = false;
  node->next_free = free_;
  free_ = node;
  --in_use_;
}

void RootSet::add_global(Slot* slot) {
  if (!slot) throw InvalidArgument("add_root: null slot");
  MutexLock lock(mu_);
  globals_.push_back(slot);
  // The slot may already hold a reference (store_root works on unregistered slots),
  // which a cycle marking now did not see at its root scan: its only other path may be
  // a stack not scanned yet, which the caller is free to drop. Registering is a store
  // into the roots, so it shades as store_global does (the invariant above).
  shade(slot->load());
}

void RootSet::remove_global(Slot* slot) {
  MutexLock lock(mu_);
  auto it = std::find(globals_.begin(), globals_.end(), slot);
  if (it == globals_.end()) throw InvalidArgument("remove_root: slot was never added");
  globals_.erase(it);
}

void RootSet::add_scratch(const std::vector<Object*>* list) {
  MutexLock lock(mu_);
  scratch_.push_back({current_thread(), list});
}

void RootSet::remove_scratch(const std::vector<Object*>* list) {
  MutexLock lock(mu_);
  auto it = std::find_if(scratch_.begin(), scratch_.end(), [&](const Scratch& s) { return s.list == list; });
  SHOAL_CHECK(it != scratch_.end());
  scratch_.erase(it);
}

void RootSet::store_global(Slot* slot, Value v) {
  if (!slot) throw InvalidArgument("store_root: null slot");
  MutexLock lock(mu_);
  // A slot inside a heap object is a field: its stores need the write barrier (the
  // overwritten value must be shaded), which this store does not apply.
  HeapImpl& heap = heap_->impl();
  const uintptr_t a = reinterpret_cast<uintptr_t>(slot);
  if (heap.pages.contains(a) || heap.large.find_containing_any(a))
    throw InvalidArgument("Heap::store_root: the slot is a field of a heap object; write fields with "
                          "Ref<T>::set or shoal::write");
  shade(v);
  SlotAccess::store(*slot, v);
}

size_t RootSet::persistent_count() {
  MutexLock lock(mu_);
  return in_use_;
}

void RootSet::switch_stacks(const SuspendedStack* leaving, uintptr_t entering_base) {
  MutexLock lock(mu_);
  // Insert first: if it throws (bad_alloc), nothing has changed.
  if (leaving) suspended_[leaving->base] = *leaving;
  suspended_.erase(entering_base);
}

bool RootSet::forget_stack(uintptr_t base) {
  MutexLock lock(mu_);
  return suspended_.erase(base) != 0;
}

size_t RootSet::suspended_stack_count() {
  MutexLock lock(mu_);
  return suspended_.size();
}

void RootSet::set_scan_hook_for_testing(std::function<void(size_t)> hook) {
  MutexLock lock(mu_);
  scan_hook_ = std::move(hook);
}

void RootSet::set_copy_hook_for_testing(std::function<void()> hook) {
  MutexLock lock(mu_);
  copy_hook_ = std::move(hook);
}

// ---- The handle layer (include/shoal/persistent.h, weak_ref.h) ----------------------

namespace {
Heap& heap_of(const PersistentNode* node, const char* what) {
  if (!node->heap) throw InvalidArgument(std::string(what) + ": the handle's heap has been destroyed");
  return *node->heap;
}
}  // namespace

PersistentNode* handle_create(Heap& heap, Value v, bool weak, const char* what) {
  if (v.is_object()) require_running(heap.impl(), what);
  return heap.impl().roots.acquire(v, weak);
}

PersistentNode* handle_copy(const PersistentNode* from, bool weak, const char* what) {
  return heap_of(from, what).impl().roots.copy(from, weak);
}

void handle_set(PersistentNode* node, Value v, const char* what) {
  if (!node->heap) {
    if (v.is_object()) throw InvalidArgument(std::string(what) + ": the handle's heap has been destroyed");
    return;
  }
  if (v.is_object()) require_running(node->heap->impl(), what);
  node->heap->impl().roots.set(node, v);
}

void handle_set_from(PersistentNode* node, const PersistentNode* from, const char* what) {
  if (!node->heap && !from->heap) return;  // both orphaned: both null
  Heap& heap = heap_of(node, what);
  if (from->heap != &heap) throw InvalidArgument(std::string(what) + ": the two handles belong to different heaps");
  heap.impl().roots.set_from(node, from);
}

void handle_release(PersistentNode* node) {
  if (node->heap) node->heap->impl().roots.release(node);
  else release_orphan(node);  // see ~RootSet
}

Value handle_get(const PersistentNode* node, const char* what) {
  NoPreemptScope no_preempt;  // (see below: the load and the shade are not split by a pause)
  const Value v = node->slot.load();
  if (!v.is_object() || !node->heap) return v;
  HeapImpl& heap = node->heap->impl();
  require_running(heap, what);
  // A running thread (no safepoint between the load and here, so no pause in between)
  // upgrading a weak handle during concurrent marking shades the target: it may store
  // it into an already-scanned object, and the snapshot did not include it.
  if (node->weak) heap.collector.shade(current_thread(), v.as_object());
  return v;
}

bool handle_holds_object(const PersistentNode* node) { return node->slot.load().is_object(); }
bool handle_orphaned(const PersistentNode* node) { return node->heap == nullptr; }

void throw_empty_handle(const char* what) {
  throw InvalidArgument(std::string(what) + " on an empty handle; construct it with a heap first");
}

}  // namespace shoal::internal
