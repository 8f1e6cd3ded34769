// WeakRef<T>: a handle that refers to an object without keeping it alive.
//
// The collector clears the handle in the pause, before the sweep frees the target, so a
// WeakRef never yields freed memory. Two ways to get the target:
//   - get(): a raw Ref<T>, for a running thread of the handle's heap (attached, not
//     inside run_native or a handshake operation; ThreadStateError elsewhere). While a
//     concurrent cycle marks, get() shades the target, so the reference it hands out
//     keeps the object for this cycle.
//   - lock(): a Persistent<T> (null once the target is gone), from ANY thread: the
//     target is read and the strong handle registered in one step under the heap's root
//     lock, and shaded while marking runs, so no collection can free it in between.
//     This is how an unattached thread, code inside run_native, or a finalizer callback
//     upgrades a weak reference.
// Copying, moving, expired(), reset() and destruction are safe from any thread. A
// WeakRef that outlives its heap reads as null. docs/roots.md has the table per state.
#pragma once

#include "shoal/heap.h"
#include "shoal/managed.h"
#include "shoal/persistent.h"

namespace shoal {

template <class T>
class WeakRef {
 public:
  WeakRef() = default;
  // A non-null `target` needs a running thread of `heap`.
  WeakRef(Heap& heap, Ref<T> target) : node_(internal::handle_create(heap, target.value(), true, "WeakRef")) {}
  // A weak handle to what `strong` holds now (any thread).
  explicit WeakRef(const Persistent<T>& strong)
      : node_(strong.core_.node() ? internal::handle_copy(strong.core_.node(), true, "WeakRef") : nullptr) {}

  // The target, or null if it has been collected (or the handle is empty). Running
  // thread of the handle's heap only.
  Ref<T> get() const { return node() ? Ref<T>::from_value(internal::handle_get(node(), "WeakRef::get")) : Ref<T>(); }
  // A strong handle to the target (null if it has been collected), from any thread.
  Persistent<T> lock() const {
    if (!node() || internal::handle_orphaned(node())) return Persistent<T>();  // (heap gone: null)
    return Persistent<T>(PersistentValue(PersistentValue::Adopt{}, internal::handle_copy(node(), false, "WeakRef::lock")));
  }
  bool expired() const { return !node() || !internal::handle_holds_object(node()); }
  void reset() { node_.reset(); }

 private:
  internal::PersistentNode* node() const { return node_.get(); }
  internal::HandleNode<true> node_;
};

}  // namespace shoal
