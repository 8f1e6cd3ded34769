// Sharing tags, freeze and deeply immutable instances (docs/sharing.md).
//
//   auto config = shoal::make<Config>();  ...fill it...
//   shoal::freeze(config.value());         // deep, one-way: every later mutation of
//                                          // config or anything it reaches throws
//                                          // InvalidMutabilityError
//   shoal::is_shareable(config.value());   // true: may cross isolates by reference
//
//   struct Point { shoal::Member<String> label; int64_t x = 0, y = 0;
//                  static constexpr uint64_t kTags = shoal::header::kDeeplyImmutable; ... };
//   auto p = shoal::make_immutable<Point>([&](shoal::Initializer<Point>& in) {
//     in.set(&Point::label, shoal::String::create("origin"));
//   });
//
// Trivially shareable values - small integers, null, strings, instances of deeply
// immutable classes, frozen objects (and later send ports, atomics, locks) - cross
// isolates without copying; is_shareable is one test of the header's tag bits.
#pragma once

#include <cstdint>
#include <string>

#include "shoal/errors.h"
#include "shoal/managed.h"
#include "shoal/object.h"
#include "shoal/value.h"

namespace shoal {

// True for null, small integers, and objects whose header carries a shareable tag
// (deeply immutable, trivially shareable or frozen). Any thread; never blocks.
inline bool is_shareable(Value v) { return !v.is_object() || v.as_object()->is_shareable(); }

// True once `v` (an object) and everything it reaches is frozen - except trivially
// shareable objects (heap atomics: AtomicRef, AtomicInt64, ...), which freeze leaves
// mutable and is_frozen does not count; small integers and null count as frozen. A
// deeply immutable instance is frozen from birth.
inline bool is_frozen(Value v) { return !v.is_object() || v.as_object()->is_frozen(); }

// Deep, one-way freeze of everything reachable from `root` through strong references
// (weak slots and ephemeron keys are not followed; an ephemeron's value is). Any graph
// size (no recursion), cycles, and shared subgraphs; safe while other threads read the
// graph, write it (their stores are either done before the freeze claims the object, or
// refused with InvalidMutabilityError) or freeze overlapping graphs. Returns once every
// object reached is frozen. The calling thread must be attached and running.
//
// Errors (nothing is frozen when they are thrown): IncorrectDereferenceError if the
// graph reaches a mutable object owned by another isolate, IsolationError for an
// isolate's object reached from the shared isolate.
void freeze(Value root);
template <class T>
Ref<T> freeze(Ref<T> root) {
  freeze(root.value());
  return root;
}

namespace internal {
// Stores `value` into the fresh deeply immutable instance `object` during
// make_immutable: NotShareableError (naming the class and field) unless the value is
// shareable.
void init_immutable_slot(Object* object, Slot& slot, Value value, const char* field);
[[noreturn]] void throw_not_deeply_immutable(ClassId cls);
[[noreturn]] void throw_field_not_shareable(const std::string& class_name, const std::string& field, Value value);
// "an object of class X", "a small integer", "null": for error messages.
std::string describe_value(Value value);
}  // namespace internal

// Writes the reference fields of a deeply immutable instance while make_immutable builds
// it. Each value must be shareable (NotShareableError otherwise; the half-built object
// is dropped and never escapes).
template <class T>
class Initializer {
 public:
  template <class U>
  void set(Member<U> T::*field, Ref<U> value, const char* name = "field") {
    internal::init_immutable_slot(object_, (payload()->*field).slot(), value.value(), name);
  }
  void set(Slot T::*field, Value value, const char* name = "field") {
    internal::init_immutable_slot(object_, payload()->*field, value, name);
  }
  // Plain (non-reference) data, for fields that are not constructor arguments.
  T& data() { return *payload(); }

 private:
  template <class U, class F, class... Args>
  friend Ref<U> make_immutable(F&& init, Args&&... args);
  explicit Initializer(Object* o) : object_(o) {}
  T* payload() { return static_cast<T*>(object_->payload()); }
  Object* object_;
};

// Allocates an instance of a deeply immutable managed struct T (T::kTags includes
// header::kDeeplyImmutable), constructs it from args, and lets `init` write its
// reference fields through an Initializer. The result is frozen and shareable from the
// start: every later store into it throws InvalidMutabilityError.
template <class T, class F, class... Args>
Ref<T> make_immutable(F&& init, Args&&... args) {
  if ((class_info(class_id_of<T>()).tags & header::kDeeplyImmutable) == 0)
    internal::throw_not_deeply_immutable(class_id_of<T>());
  Ref<T> r = make<T>(std::forward<Args>(args)...);
  Initializer<T> in(r.object());
  init(in);
  return r;
}

// The class-table form: an instance of the deeply immutable kFixed class `id` whose
// reference fields (in ref_offsets order, as ClassInfo lists them) get `fields`.
Object* allocate_immutable_instance(ClassId id, const Value* fields, size_t count);

}  // namespace shoal
