// Persistent<T>: a strong root handle that any thread may hold, copy, set and destroy.
//
// The object a Persistent refers to stays alive as long as the handle does, whichever
// thread owns the handle and whether or not that thread is attached. Reads and writes of
// the handle are atomic. An unattached thread may hold, copy, set and destroy handles, but
// must be attached to dereference what it reads (only attached threads' stacks are
// scanned). A handle that outlives its heap reads as null; copying it throws.
#pragma once

#include "shoal/heap.h"
#include "shoal/managed.h"

namespace shoal {
namespace internal {
// A root slot in the heap's persistent region (gc/roots.h).
struct PersistentNode;
PersistentNode* persistent_acquire(Heap& heap, Value initial);
void persistent_release(PersistentNode* node);
Slot& persistent_slot(PersistentNode* node);
Heap& persistent_heap(PersistentNode* node);
[[noreturn]] void throw_empty_persistent();
}  // namespace internal

template <class T>
class Persistent {
 public:
  Persistent() = default;
  Persistent(Heap& heap, Ref<T> target) : node_(internal::persistent_acquire(heap, target.value())) {}
  Persistent(const Persistent& other)
      : node_(other.node_ ? internal::persistent_acquire(internal::persistent_heap(other.node_),
                                                         other.get().value())
                          : nullptr) {}
  Persistent(Persistent&& other) noexcept : node_(other.node_) { other.node_ = nullptr; }
  Persistent& operator=(Persistent other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~Persistent() {
    if (node_) internal::persistent_release(node_);
  }

  Ref<T> get() const { return node_ ? Ref<T>::from_value(internal::persistent_slot(node_).load()) : Ref<T>(); }
  // Points the handle at another object (or null). The handle must be non-empty.
  void set(Ref<T> target) {
    if (!node_) internal::throw_empty_persistent();
    internal::persistent_slot(node_).store_root(target.value());
  }
  void reset() {
    if (node_) internal::persistent_release(node_);
    node_ = nullptr;
  }
  explicit operator bool() const { return static_cast<bool>(get()); }
  T* operator->() const { return get().operator->(); }

 private:
  internal::PersistentNode* node_ = nullptr;
};

}  // namespace shoal
