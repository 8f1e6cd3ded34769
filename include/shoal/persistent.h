// Persistent handles: strong roots that any thread may hold, copy, move, set and
// destroy, attached or not.
//
//   PersistentValue   untyped: holds any Value (reference, small integer, null), for
//                     dynamically typed VMs.
//   Persistent<T>     typed: holds a Ref<T> or null.
//
// The object a handle refers to stays alive as long as the handle does. Every operation
// is atomic with respect to collections (the heap's root lock, gc/roots.h). What each
// thread state may do (docs/roots.md has the table):
//   - from any thread (running, in run_native, unattached, in a finalizer or handshake
//     callback): copy, move, assign from another handle, set_from(other), reset, destroy,
//     is_null / operator bool, and WeakRef<T>::lock();
//   - only from a running thread of the handle's heap (attached, not inside run_native or
//     a handshake operation): the operations that take or hand out a raw reference -
//     constructing from a Ref/Value that is a reference, set(Ref), get(), operator->.
//     Elsewhere they throw ThreadStateError, because a raw reference on a stack that is
//     not scanned can be freed by the next collection. (get() of a small integer or of
//     null is fine anywhere: there is nothing to free.)
// A handle that outlives its heap reads as null; copying it throws InvalidArgument.
#pragma once

#include <utility>

#include "shoal/heap.h"
#include "shoal/managed.h"

namespace shoal {
namespace internal {
// A root slot in the heap's persistent region (gc/roots.h).
struct PersistentNode;
PersistentNode* handle_create(Heap& heap, Value v, bool weak, const char* what);
PersistentNode* handle_copy(const PersistentNode* from, bool weak, const char* what);
void handle_set(PersistentNode* node, Value v, const char* what);
void handle_set_from(PersistentNode* node, const PersistentNode* from, const char* what);
void handle_release(PersistentNode* node);
Value handle_get(const PersistentNode* node, const char* what);
bool handle_holds_object(const PersistentNode* node);
bool handle_orphaned(const PersistentNode* node);
[[noreturn]] void throw_empty_handle(const char* what);

// Owns one node of the persistent region, or none: the copy, move and destroy rules of
// every handle type (a copy gets a node of its own; kWeak: a weak node).
template <bool kWeak>
class HandleNode {
 public:
  HandleNode() = default;
  explicit HandleNode(PersistentNode* node) : node_(node) {}
  HandleNode(const HandleNode& other)
      : node_(other.node_ ? handle_copy(other.node_, kWeak, kWeak ? "WeakRef copy" : "Persistent copy") : nullptr) {}
  HandleNode(HandleNode&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  HandleNode& operator=(const HandleNode& other) {
    if (this != &other) {
      HandleNode copy(other);
      std::swap(node_, copy.node_);
    }
    return *this;
  }
  HandleNode& operator=(HandleNode&& other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~HandleNode() { reset(); }
  void reset() {
    if (node_) handle_release(node_);
    node_ = nullptr;
  }
  PersistentNode* get() const { return node_; }

 private:
  PersistentNode* node_ = nullptr;
};
}  // namespace internal

template <class T>
class WeakRef;

// An untyped strong handle.
class PersistentValue {
 public:
  PersistentValue() = default;
  // `v` may be a reference only on a running thread of `heap`.
  PersistentValue(Heap& heap, Value v) : node_(internal::handle_create(heap, v, false, "Persistent")) {}

  // The value. A reference only on a running thread of the handle's heap.
  Value get() const { return node() ? internal::handle_get(node(), "Persistent::get") : Value::null(); }
  // Points the handle at `v`. The handle must be non-empty; a reference needs a running
  // thread of the handle's heap.
  void set(Value v) {
    if (!node()) internal::throw_empty_handle("Persistent::set");
    internal::handle_set(node(), v, "Persistent::set");
  }
  // Makes this handle hold what `other` holds, in one step (safe from any thread). Both
  // must belong to the same heap; this one must be non-empty.
  void set_from(const PersistentValue& other) {
    if (!node()) internal::throw_empty_handle("Persistent::set_from");
    if (!other.node()) {
      internal::handle_set(node(), Value::null(), "Persistent::set_from");
      return;
    }
    internal::handle_set_from(node(), other.node(), "Persistent::set_from");
  }
  void reset() { node_.reset(); }
  // True if the handle holds a reference (any thread).
  bool holds_object() const { return node() && internal::handle_holds_object(node()); }
  // True if the handle has no node (default-constructed, moved from or reset).
  bool empty() const { return node() == nullptr; }

 private:
  template <class U>
  friend class WeakRef;
  template <class U>
  friend class Persistent;
  struct Adopt {};
  PersistentValue(Adopt, internal::PersistentNode* node) : node_(node) {}
  internal::PersistentNode* node() const { return node_.get(); }
  internal::HandleNode<false> node_;
};

// A typed strong handle. The same rules as PersistentValue.
template <class T>
class Persistent {
 public:
  Persistent() = default;
  // `target` may be non-null only on a running thread of `heap`.
  Persistent(Heap& heap, Ref<T> target) : core_(heap, target.value()) {}

  // The target (null if none). Needs a running thread of the handle's heap unless null.
  Ref<T> get() const { return Ref<T>::from_value(core_.get()); }
  // Points the handle at another object (or null). The handle must be non-empty; a
  // non-null target needs a running thread of the handle's heap.
  void set(Ref<T> target) { core_.set(target.value()); }
  // Makes this handle hold what `other` holds, in one step: safe from any thread (how an
  // unattached thread moves a target from one handle to another).
  void set_from(const Persistent& other) { core_.set_from(other.core_); }
  void reset() { core_.reset(); }
  // True if the handle holds an object (any thread).
  explicit operator bool() const { return core_.holds_object(); }
  bool is_null() const { return !core_.holds_object(); }
  // True if the handle has no node (default-constructed, moved from or reset).
  bool empty() const { return core_.empty(); }
  T* operator->() const { return get().operator->(); }
  const PersistentValue& untyped() const { return core_; }

 private:
  template <class U>
  friend class WeakRef;
  explicit Persistent(PersistentValue core) : core_(std::move(core)) {}
  PersistentValue core_;
};

}  // namespace shoal
