// Deep copy into another isolate (runtime/subgraph.h), for SendMode::kCopy.
//
//   1. Plan: the copy set - every non-shareable object reachable from the root (no
//      recursion; an ObjectIndex maps each to its position) - and, per object, the copy-
//      set index of each strong slot's target. Shareable objects are the boundary: copies
//      refer to them, as the originals did. Nothing is allocated yet, so a foreign object
//      found here (an owner-check error) leaves no trace.
//   2. Allocate one copy per object - same class, size and tags, owned by the receiver
//      (the calling thread's TLAB stamps the receiver's owner bits meanwhile) - copy the
//      payload word by word with relaxed atomic loads (racing writers of unowned
//      originals give a snapshot, never a torn word), and null the copy's reference
//      slots before the next allocation: no copy holds a reference that did not go
//      through the barrier at any safepoint. (Plain-copied references broke the
//      generational invariant: a large copy allocated while a cycle marked is old after
//      its sweep, and its slots' young targets - the sender's newborns - were in no
//      remembered set nor card: a young cycle freed them under the copy once the sender
//      dropped them.)
//   3. Patch, with no safepoint in the pass: every reference slot of every copy is written
//      with the barrier (write_unchecked, write_weak: the copies are fresh and the
//      receiver's, the sender may not pass the owner check for them), from the
//      original's slot at the same offset, read just before (the original is traced): a strong slot that refers to an original from
//      the set gets its copy (found through the plan's edges, without a hash lookup per
//      slot), any other value as it is; a weak slot gets the copy of its target if the
//      target was copied, keeps a shareable target, and is cleared otherwise (the copy
//      must not reach the sender's mutable objects) - an ephemeron's key so cleared
//      clears its value too, as a collection would.
//   4. While a cycle marks, shade the originals (and a weak slot's kept target).
// Sharing and cycles are preserved: each original has exactly one copy.
#include <atomic>
#include <cstring>

#include "gc/roots.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "runtime/subgraph.h"
#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/internal/allocate.h"
#include "shoal/write_barrier.h"

namespace shoal::internal {

namespace {
// Makes the thread's TLABs stamp `owner` into the headers they allocate, for the scope.
class AllocateAs {
 public:
  AllocateAs(MutatorThread* t, uint32_t owner) : t_(t), saved_(t->owner_bits) {
    t_->owner_bits = uint64_t{owner} << header::kOwnerShift;
  }
  ~AllocateAs() { t_->owner_bits = saved_; }
  AllocateAs(const AllocateAs&) = delete;
  AllocateAs& operator=(const AllocateAs&) = delete;

 private:
  MutatorThread* t_;
  uint64_t saved_;
};

void copy_payload(const Object* from, Object* to, size_t bytes) {
  // Whole words after the header, then the tail bytes.
  const size_t words = (bytes - kHeaderSize) / 8;
  auto* src = reinterpret_cast<uint64_t*>(const_cast<void*>(from->payload()));
  auto* dst = static_cast<uint64_t*>(to->payload());
  for (size_t i = 0; i < words; ++i) dst[i] = std::atomic_ref<uint64_t>(src[i]).load(std::memory_order_relaxed);
  auto* src_tail = reinterpret_cast<uint8_t*>(src + words);
  auto* dst_tail = reinterpret_cast<uint8_t*>(dst + words);
  for (size_t i = 0; i < (bytes - kHeaderSize) % 8; ++i)
    dst_tail[i] = std::atomic_ref<uint8_t>(src_tail[i]).load(std::memory_order_relaxed);
}

// A fresh copy's reference slots, nulled (plain stores: nothing has seen the copy yet).
class SlotNuller final : public SlotVisitor {
 public:
  void visit(const Slot* slots, size_t n) override {
    for (size_t i = 0; i < n; ++i) SlotAccess::store(const_cast<Slot&>(slots[i]), Value::null());
  }
  void visit_weak(const Slot& slot) override { SlotAccess::store(const_cast<Slot&>(slot), Value::null()); }
  // (An ephemeron: SlotVisitor's default, the key as a weak slot and the value.)
};

// Step 1 with the edges recorded: for every object in the copy set (by index), the
// copy-set index of each strong slot's target in trace order (kNone for a target that is
// not copied). The patch pass then walks the copies' slots in the same order without a
// hash lookup per slot.
constexpr size_t kNone = SIZE_MAX;

struct CopyPlan {
  std::vector<Object*> originals;   // by index; the root is 0
  ObjectIndex index;
  std::vector<size_t> edges;        // concatenated per object, trace order
  std::vector<size_t> edge_begin;   // by index: where its edges start in `edges`
};

class PlanBuilder final : public SlotVisitor {
 public:
  explicit PlanBuilder(CopyPlan& plan) : plan_(plan) {}
  void visit(const Slot* slots, size_t n) override {
    for (size_t i = 0; i < n; ++i) plan_.edges.push_back(add(slots[i].load()));
  }
  // The copy-set index of v's object, adding it (and checking its owner) when new.
  size_t add(Value v) {
    if (!v.is_object()) return kNone;
    Object* o = v.as_object();
    const uint64_t h = o->header_word();
    if (h & (header::kShareableMask | header::kFreezing)) return kNone;
    auto [idx, fresh] = plan_.index.insert(o);
    if (fresh) {
      check_owner(o, h, "copy");  // unowned and kShared objects pass
      plan_.originals.push_back(o);
    }
    return idx;
  }

 private:
  CopyPlan& plan_;
};

class Patcher final : public SlotVisitor {
 public:
  Patcher(const CopyPlan& plan, const std::vector<Object*>& copies, MutatorThread* self)
      : plan_(plan), copies_(copies), self_(self) {}
  // Patches copy i from its original's slots as they are now: traces the original and
  // writes each slot at the same offset in the copy (same class, same payload).
  void patch(size_t i) {
    original_ = reinterpret_cast<const char*>(plan_.originals[i]);
    holder_ = copies_[i];
    copy_bytes_ = self_->heap->model.size_of(holder_);
    next_edge_ = plan_.edge_begin[i];
    edge_end_ = i + 1 < plan_.edge_begin.size() ? plan_.edge_begin[i + 1] : plan_.edges.size();
    self_->heap->model.trace(plan_.originals[i], *this);
  }
  void visit(const Slot* slots, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      const size_t e = next_edge_ < edge_end_ ? plan_.edges[next_edge_++] : kNone;
      Value v = slots[i].load();
      Slot* to = in_copy(slots[i]);
      if (to == nullptr) continue;
      if (v.is_object()) {
        size_t j = e;
        // The plan was made before the payload was copied; a racing writer of an
        // unowned original may have changed the slot since: look that value up instead.
        if (j == kNone || plan_.originals[j] != v.as_object()) j = plan_.index.find(v.as_object());
        if (j != ObjectIndex::kMissing && j != kNone) v = Value::from_object(copies_[j]);
      }
      if (!v.is_null()) write_unchecked(holder_, *to, v);
    }
  }
  void visit_weak(const Slot& slot) override {
    if (Slot* to = in_copy(slot)) (void)patch_weak(*to, slot.load());
  }
  // The key as a weak slot; the value as a strong one (one edge of the plan) if the key
  // survived the copy, else cleared: an ephemeron whose key was not copied (held
  // elsewhere by the sender) has a dead key in the copy, and a null key with a value
  // would keep the value for ever (the marker takes a keyless entry's value as a plain
  // edge). (The value's copy, if it was made, is garbage then.)
  void visit_ephemeron(const Slot& key, const Slot& value) override {
    Slot* to = in_copy(key);
    if (to != nullptr && patch_weak(*to, key.load())) {
      visit(&value, 1);
    } else {
      ++next_edge_;  // (the value slot stays null)
    }
  }

 private:
  // The copy's slot at the original slot's offset; null past the copy's end (a racing
  // writer of an unowned original changed its layout since, e.g. a custom class's count
  // word).
  Slot* in_copy(const Slot& original_slot) const {
    const auto offset = static_cast<size_t>(reinterpret_cast<const char*>(&original_slot) - original_);
    if (offset + sizeof(Slot) > copy_bytes_) return nullptr;
    return reinterpret_cast<Slot*>(reinterpret_cast<char*>(holder_) + offset);
  }
  // Writes a weak slot from the original's value `v`: true if it refers to something
  // (its target's copy, or a shareable target), false if it was cleared or was null.
  bool patch_weak(const Slot& slot, Value v) {
    if (!v.is_object()) {
      if (!v.is_null()) write_weak(const_cast<Slot&>(slot), v);
      return !v.is_null();
    }
    const size_t j = plan_.index.find(v.as_object());
    if (j != ObjectIndex::kMissing) {
      write_weak(const_cast<Slot&>(slot), Value::from_object(copies_[j]));
      return true;
    }
    if (!v.as_object()->is_shareable()) return false;  // (left null)
    // Kept: a copy allocated while marking is never traced, so its weak slot is not
    // cleared this cycle - keep the target alive through it (a no-op unless a cycle
    // marks), as a weak read would.
    self_->heap->collector.shade(self_, v.as_object());
    write_weak(const_cast<Slot&>(slot), v);
    return true;
  }

  const CopyPlan& plan_;
  const std::vector<Object*>& copies_;
  MutatorThread* self_;
  const char* original_ = nullptr;
  Object* holder_ = nullptr;
  size_t copy_bytes_ = 0, next_edge_ = 0, edge_end_ = 0;
};
}  // namespace

Value deep_copy(Value root, uint32_t owner) {
  if (!root.is_object() || root.as_object()->is_shareable()) return root;
  MutatorThread* self = current_thread();
  if (!self) throw NotAttached("copy on a thread that is not attached to a heap");
  check_heap_access(self, "copy");
  HeapImpl& heap = *self->heap;
  // Originals and copies sit in C++ vectors between polls (they become scratch roots
  // only around the allocations): no asynchronous preemption in between.
  NoPreemptScope no_preempt;
  CopyPlan plan;
  {
    // Breadth first, in index order: originals[k] is traced k-th (no work stack; a graph
    // laid out in allocation order is walked in address order).
    PlanBuilder builder(plan);
    builder.add(root);
    for (size_t k = 0; k < plan.originals.size(); ++k) {
      plan.edge_begin.push_back(plan.edges.size());
      heap.model.trace(plan.originals[k], builder);
    }
  }
  std::vector<Object*>& originals = plan.originals;
  if (originals.empty()) return root;  // being frozen by another thread: immutable already

  std::vector<Object*> copies;
  copies.reserve(originals.size());
  ScratchRoots keep_originals(heap.roots, &originals);
  ScratchRoots keep_copies(heap.roots, &copies);
  {
    AllocateAs as(self, owner);
    SlotNuller nuller;
    for (Object* o : originals) {
      const size_t bytes = heap.model.size_of(o);
      // Class and tags; no owner (AllocateAs adds it), no kShared, no GC bits.
      const uint64_t h = o->header_word() & (header::kClassIdMask | header::kTagMask) & ~header::kShared;
      Object* c = allocate(bytes, h);
      copy_payload(o, c, bytes);
      heap.model.trace(c, nuller);  // (before the next allocation's safepoint)
      copies.push_back(c);
    }
  }
  // (No safepoint from here to the return: write_unchecked and write_weak do not poll.)
  Patcher patcher(plan, copies, self);
  for (size_t i = 0; i < copies.size(); ++i) patcher.patch(i);
  // Classes whose payload depends on their references' addresses fix themselves now
  // that every reference in the copy is final (a map rehashes its identity keys).
  if (&heap.model == &default_object_model()) {
    for (Object* c : copies) {
      const ClassInfo* info = find_class(c->class_id());
      if (info && info->after_copy) info->after_copy(c);
    }
  }
  // A copy allocated while a cycle marks is black, never traced: what keeps its
  // references' targets is the barrier of the patch pass and the originals. If the
  // originals are reachable only from this thread's stack and it is not scanned yet
  // (gc/thread_stack_scan.cc), the caller may drop them before it is: so shade them (a
  // no-op unless a cycle marks; under a snapshot they are marked anyway).
  for (Object* o : originals) heap.collector.shade(self, o);
  return Value::from_object(copies[0]);
}

}  // namespace shoal::internal
