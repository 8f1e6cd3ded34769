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
#include "shoal/internal/allocate.h"
#include "shoal/object.h"
#include "shoal/value.h"
#include "shoal/write_barrier.h"

namespace shoal {

template <class T>
class Ref;

// A typed reference field inside a managed struct.
template <class T>
class Member {
 public:
  Member() = default;
  Ref<T> get() const { return Ref<T>::from_value(slot_.load()); }
  Value value() const { return slot_.load(); }
  Slot& slot() { return slot_; }
  const Slot& slot() const { return slot_; }

 private:
  Slot slot_;
};

// A typed reference to a managed object whose payload is a T. Plain value (one word).
template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}
  static Ref from_value(Value v) { return Ref(v.is_object() ? v.as_object() : nullptr); }
  static Ref from_object(Object* o) { return Ref(o); }

  T* operator->() const { return static_cast<T*>(object_->payload()); }
  T& operator*() const { return *operator->(); }
  explicit operator bool() const { return object_ != nullptr; }
  Object* object() const { return object_; }
  Value value() const { return object_ ? Value::from_object(object_) : Value::null(); }
  friend bool operator==(Ref a, Ref b) { return a.object_ == b.object_; }

  template <class U>
  void set(Member<U> T::*field, Ref<U> target) const {
    write(object_, (operator->()->*field).slot(), target.value());
  }
  void set(Slot T::*field, Value value) const { write(object_, operator->()->*field, value); }

 private:
  explicit Ref(Object* o) : object_(o) {}
  Object* object_ = nullptr;
};

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
