// Built-in classes: fixed-length reference arrays, byte arrays and immutable strings.
// Each is the payload type of a Ref: Ref<RefArray> a = RefArray::create(10);
// Accessors check bounds and throw RangeError; they never read outside the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shoal/managed.h"

namespace shoal {

class RefArray {
 public:
  static Ref<RefArray> create(size_t length);
  static ClassId class_id() { return kRefArrayClassId; }
  size_t length() const { return length_; }
  Value get(size_t index) const;
  void set(size_t index, Value value);  // through the write barrier
  // Atomic element operations (get is already an acquire load, set a release store):
  // compare-and-swap by identity returning the witness, and exchange. Same checks and
  // barrier as set (shoal::compare_and_swap).
  Value compare_and_swap(size_t index, Value expected, Value desired);
  Value exchange(size_t index, Value desired);
  const Slot* slots() const { return reinterpret_cast<const Slot*>(this + 1); }
  Slot* slots() { return reinterpret_cast<Slot*>(this + 1); }

 private:
  uint64_t length_;
};

class ByteArray {
 public:
  static Ref<ByteArray> create(size_t length);
  static ClassId class_id() { return kByteArrayClassId; }
  size_t length() const { return length_; }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  uint8_t get(size_t index) const;
  // Stores a byte; refused like a reference store (frozen: InvalidMutabilityError;
  // another isolate's: IncorrectDereferenceError). Writing through data() skips those
  // checks: use it only on arrays the caller knows to be its own and mutable.
  void set(size_t index, uint8_t value);

 private:
  uint64_t length_;
};

// Immutable UTF-8 (or any bytes) string: deeply immutable, trivially shareable and
// frozen from birth.
class String {
 public:
  static Ref<String> create(std::string_view text);
  static ClassId class_id() { return kStringClassId; }
  size_t length() const { return length_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(this + 1), length_}; }
  const char* c_str() const { return reinterpret_cast<const char*>(this + 1); }

 private:
  uint64_t length_;
};

// A heap object holding one weak reference (a weak slot): get() returns the target
// while it is alive and null once a collection has found it unreachable. Every weak
// slot and WeakRef to a dying object is cleared in the same pause, before the target's
// memory can be reused, so no thread ever sees one cleared and another not. Unlike
// WeakRef (a handle outside the heap), a WeakCell can be stored in heap objects and
// shared like any object; weak maps and caches are built from it. Custom classes get
// weak fields the same way: report them with SlotVisitor::visit_weak and access them
// with shoal::read_weak / shoal::write_weak.
class WeakCell {
 public:
  static Ref<WeakCell> create(Value target);
  // The target, or null once it is dead. During marking, shades the target.
  Value get() const { return read_weak(slot_); }
  void set(Value target);
  bool expired() const { return slot_.load().is_null(); }
  static ClassId class_id();

 private:
  Slot slot_;
};

// An ephemeron: a (key, value) pair in which the key is weak and the value is kept alive
// only while the key is alive through other paths - the building block of weak maps
// (JavaScript's WeakMap, Java's WeakHashMap without its leak): a value that refers back
// to its own key does not keep the key. When a collection finds the key dead it clears
// both slots, in the same pause as the weak references to the key. key() and value()
// shade what they return while marking runs, like WeakCell::get().
class Ephemeron {
 public:
  static Ref<Ephemeron> create(Value key, Value value);
  Value key() const { return read_weak(key_); }
  Value value() const { return read_weak(value_); }
  // Replaces the value (through the write barrier).
  void set_value(Value value);
  bool expired() const { return key_.load().is_null(); }
  static ClassId class_id();

 private:
  Slot key_;
  Slot value_;
};

}  // namespace shoal
