// The typed C++ layer: managed structs with typed reference fields, no hand-written
// offsets.
//
//   struct Node {
//     shoal::Member<Node> left, right;     // reference fields
//     int64_t value = 0;                   // plain data
//     static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
//     static constexpr const char* kName = "Node";
//   };
//   shoal::Ref<Node> n = shoal::make<Node>();
//   n.set(&Node::left, shoal::make<Node>());   // through the write barrier
//   shoal::Ref<Node> l = n->left.get();
//
// The payload struct T lives right after the object header. T must be trivially
// destructible (the collector runs no destructors), at most 8-byte aligned, and list
// every Member/Slot field in kRefs; the class is defined in the class table on first
// use. A Member is readable directly and writable only through Ref<T>::set, which knows
// the holder object the write barrier needs.
#pragma once

#include <cstddef>
#include <new>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/internal/allocate.h"
#include "shoal/internal/check.h"
#include "shoal/object.h"
#include "shoal/value.h"
#include "shoal/write_barrier.h"

namespace shoal {

template <class T>
class Ref;
template <class T>
ClassId class_id_of();

namespace internal {
// The class id a Ref<T> expects: a builtin's own (T::class_id()) or the typed struct's.
template <class T>
ClassId expected_class_id() {
  if constexpr (requires { T::class_id(); })
    return T::class_id();
  else
    return class_id_of<T>();
}
[[noreturn]] void throw_bad_cast(ClassId actual, ClassId expected);
}  // namespace internal

// A typed reference field inside a managed struct.
template <class T>
class Member {
 public:
  Member() = default;
  Ref<T> get() const { return Ref<T>::from_value(slot_.load()); }
  Value value() const { return slot_.load(); }
  // Reads the field and dereferences it (as get()->): also what lets a Member<Lock> name
  // a lock in SHOAL_GUARDED_BY (Clang treats it as a smart pointer to the capability).
  T* operator->() const { return get().operator->(); }
  T& operator*() const { return *get(); }
  Slot& slot() { return slot_; }
  const Slot& slot() const { return slot_; }

 private:
  Slot slot_;
};

// A typed reference to a managed object whose payload is a T. Plain value (one word).
//
// A Ref is a root only while it is on the stack (or in a register) of a running thread
// attached to its heap: a Ref stored in C++ heap memory - std::vector<Ref<T>>, a map, a
// member of a heap-allocated C++ object - or in a static is NOT a root, and the object
// may be freed under it. Keep such references in a Persistent<T> (std::vector of them for
// a few), or in a RefArray held by one Persistent (for many); docs/roots.md.
//
// from_value/from_object do not convert: in builds with assertions they check that the
// object is of T's class (a wrong class is a bug that would read garbage). For values
// of unknown class use try_cast<T> (null if not a T) or cast<T> (InvalidArgument).
template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}
  static Ref from_value(Value v) { return from_object(v.is_object() ? v.as_object() : nullptr); }
  static Ref from_object(Object* o) {
    SHOAL_DCHECK(!o || o->class_id() == internal::expected_class_id<T>());
    return Ref(o);
  }

  // Dereferences. With checked reads on (IsolateGroupOptions::checked_reads) this is
  // where a read of another isolate's mutable object is refused.
  T* operator->() const {
    internal::check_read(object_);
    return static_cast<T*>(object_->payload());
  }
  T& operator*() const { return *operator->(); }
  explicit operator bool() const { return object_ != nullptr; }
  Object* object() const { return object_; }
  Value value() const { return object_ ? Value::from_object(object_) : Value::null(); }
  friend bool operator==(Ref a, Ref b) { return a.object_ == b.object_; }

  // (The store check in write() covers ownership: no read check on the way.)
  template <class U>
  void set(Member<U> T::*field, Ref<U> target) const {
    write(object_, (payload()->*field).slot(), target.value());
  }
  void set(Slot T::*field, Value value) const { write(object_, payload()->*field, value); }

  // Atomic compare-and-swap of a reference field by identity; returns the witness (the
  // field's value before, == expected exactly when it swapped). Same checks and barrier
  // as set (shoal::compare_and_swap in write_barrier.h).
  template <class U>
  Ref<U> compare_and_swap(Member<U> T::*field, Ref<U> expected, Ref<U> desired) const {
    return Ref<U>::from_value(
        shoal::compare_and_swap(object_, (payload()->*field).slot(), expected.value(), desired.value()));
  }
  Value compare_and_swap(Slot T::*field, Value expected, Value desired) const {
    return shoal::compare_and_swap(object_, payload()->*field, expected, desired);
  }
  // Atomic exchange of a reference field: stores the new value, returns the old one.
  template <class U>
  Ref<U> exchange(Member<U> T::*field, Ref<U> desired) const {
    return Ref<U>::from_value(shoal::exchange(object_, (payload()->*field).slot(), desired.value()));
  }

 private:
  explicit Ref(Object* o) : object_(o) {}
  T* payload() const { return static_cast<T*>(object_->payload()); }
  Object* object_ = nullptr;
};

// Checked casts for values of unknown class (a dynamically typed VM's values), in every
// build. try_cast: the object as a Ref<T>, or null if v is null, a small integer or an
// object of another class. cast: the same, but a non-null value that is not a T throws
// InvalidArgument naming both classes.
template <class T>
Ref<T> try_cast(Value v) {
  if (!v.is_object() || v.as_object()->class_id() != internal::expected_class_id<T>()) return Ref<T>();
  return Ref<T>::from_object(v.as_object());
}
template <class T>
Ref<T> cast(Value v) {
  if (v.is_null()) return Ref<T>();
  const ClassId expected = internal::expected_class_id<T>();
  if (!v.is_object()) internal::throw_bad_cast(0, expected);
  if (v.as_object()->class_id() != expected) internal::throw_bad_cast(v.as_object()->class_id(), expected);
  return Ref<T>::from_object(v.as_object());
}

// Keeps `r`'s object alive until this point of the program (Go's runtime.KeepAlive): the
// value is kept in a register or on the stack up to here, where the conservative scan
// sees it. Use it when the last use of a Ref is earlier than the last use of something
// that depends on the object staying alive (a raw pointer into it, a native resource
// a finalizer releases).
template <class T>
inline void keep_alive(const Ref<T>& r) {
  asm volatile("" : : "r"(r.object()) : "memory");
}
inline void keep_alive(Value v) { asm volatile("" : : "r"(v.raw()) : "memory"); }

template <class... Fields>
constexpr std::tuple<Fields...> refs(Fields... fields) {
  return std::tuple<Fields...>(fields...);
}

namespace internal {

template <class T>
uint32_t field_offset(const T& prototype, const Slot& slot) {
  return static_cast<uint32_t>(reinterpret_cast<const char*>(&slot) -
                               reinterpret_cast<const char*>(&prototype));
}
template <class T, class U>
uint32_t offset_of(const T& prototype, Member<U> T::*field) {
  return field_offset(prototype, (prototype.*field).slot());
}
template <class T>
uint32_t offset_of(const T& prototype, Slot T::*field) {
  return field_offset(prototype, prototype.*field);
}

template <class T>
ClassId define_typed_class() {
  static_assert(std::is_trivially_destructible_v<T>, "managed structs run no destructors");
  static_assert(alignof(T) <= 8, "managed structs are at most 8-byte aligned");
  static_assert(std::is_default_constructible_v<T>);
  ClassDescriptor d;
  if constexpr (requires { T::kName; }) d.name = T::kName;
  else d.name = typeid(T).name();
  d.layout = Layout::kFixed;
  d.instance_size = static_cast<uint32_t>(sizeof(T));
  if constexpr (requires { T::kRefs; }) {
    alignas(T) unsigned char buffer[sizeof(T)];
    const T* prototype = new (buffer) T();
    std::apply([&](auto... f) { (d.ref_offsets.push_back(offset_of(*prototype, f)), ...); },
               T::kRefs);
  }
  if constexpr (requires { T::kTags; }) d.tags = T::kTags;
  return define_class(d);
}

}  // namespace internal

// The class id of managed struct T, defined on first use (thread-safe).
template <class T>
ClassId class_id_of() {
  static const ClassId id = internal::define_typed_class<T>();
  return id;
}

// Allocates a zeroed T in the current thread's heap and constructs it from args.
// Throws NotAttached on an unattached thread and OutOfMemory at the heap limit.
template <class T, class... Args>
Ref<T> make(Args&&... args) {
  static const uint64_t header_word = header::make(class_id_of<T>(), class_info(class_id_of<T>()).tags);
  Object* o = internal::allocate(kHeaderSize + sizeof(T), header_word);
  new (o->payload()) T(std::forward<Args>(args)...);
  return Ref<T>::from_object(o);
}

}  // namespace shoal
