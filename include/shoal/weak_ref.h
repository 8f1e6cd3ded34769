// WeakRef<T>: a handle that refers to an object without keeping it alive.
//
// get() returns the target while it is alive and null once a collection has found it
// unreachable: the collector clears the handle in the pause, before the sweep frees the
// target, so a WeakRef never yields freed memory. While a concurrent cycle marks, get()
// on an attached thread shades the target, so the strong reference it hands out keeps
// the object for this cycle. Like Persistent, any thread may hold, copy and destroy a
// WeakRef; only an attached thread may dereference what get() returns. A WeakRef that
// outlives its heap reads as null.
#pragma once

#include "shoal/heap.h"
#include "shoal/managed.h"
#include "shoal/persistent.h"

namespace shoal {
namespace internal {
PersistentNode* weak_acquire(Heap& heap, Value initial);
Value weak_get(PersistentNode* node);
}  // namespace internal

template <class T>
class WeakRef {
 public:
  WeakRef() = default;
  WeakRef(Heap& heap, Ref<T> target) : node_(internal::weak_acquire(heap, target.value())) {}
  WeakRef(const WeakRef& other)
      : node_(other.node_ ? internal::weak_acquire(internal::persistent_heap(other.node_),
                                                   internal::weak_get(other.node_))
                          : nullptr) {}
  WeakRef(WeakRef&& other) noexcept : node_(other.node_) { other.node_ = nullptr; }
  WeakRef& operator=(WeakRef other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~WeakRef() {
    if (node_) internal::persistent_release(node_);
  }

  // The target, or null if it has been collected (or the handle is empty).
  Ref<T> get() const { return node_ ? Ref<T>::from_value(internal::weak_get(node_)) : Ref<T>(); }
  bool expired() const { return !node_ || internal::persistent_slot(node_).load().is_null(); }
  void reset() {
    if (node_) internal::persistent_release(node_);
    node_ = nullptr;
  }

 private:
  internal::PersistentNode* node_ = nullptr;
};

}  // namespace shoal
