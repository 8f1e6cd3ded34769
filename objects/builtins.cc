// Built-in classes: RefArray, ByteArray, String. Every accessor checks its index, so a
// racing or buggy caller gets RangeError, never a read outside the object.
#include "shoal/builtins.h"

#include <atomic>
#include <cstring>
#include <string>

#include "shoal/errors.h"

namespace shoal {

namespace {
[[noreturn]] void out_of_range(const char* what, size_t index, size_t length) {
  throw RangeError(std::string(what) + ": index " + std::to_string(index) + " out of range for length " +
                   std::to_string(length));
}

Object* allocate_variable(ClassId cls, size_t payload_bytes, size_t length) {
  if (length > (uint64_t{1} << 40)) throw InvalidArgument("array length " + std::to_string(length) + " too large");
  Object* o = internal::allocate(kHeaderSize + 8 + payload_bytes, header::make(cls, class_info(cls).tags));
  *static_cast<uint64_t*>(o->payload()) = length;
  return o;
}
}  // namespace

Ref<RefArray> RefArray::create(size_t length) {
  if (length > (uint64_t{1} << 37)) throw InvalidArgument("RefArray::create: length too large");
  return Ref<RefArray>::from_object(allocate_variable(kRefArrayClassId, length * sizeof(Slot), length));
}

Value RefArray::get(size_t index) const {
  if (index >= length_) out_of_range("RefArray::get", index, length_);
  return slots()[index].load();
}

void RefArray::set(size_t index, Value value) {
  if (index >= length_) out_of_range("RefArray::set", index, length_);
  write(Object::from_payload(this), slots()[index], value);
}

Value RefArray::compare_and_swap(size_t index, Value expected, Value desired) {
  if (index >= length_) out_of_range("RefArray::compare_and_swap", index, length_);
  return shoal::compare_and_swap(Object::from_payload(this), slots()[index], expected, desired);
}

Value RefArray::exchange(size_t index, Value desired) {
  if (index >= length_) out_of_range("RefArray::exchange", index, length_);
  return shoal::exchange(Object::from_payload(this), slots()[index], desired);
}

Ref<ByteArray> ByteArray::create(size_t length) {
  return Ref<ByteArray>::from_object(allocate_variable(kByteArrayClassId, length, length));
}

uint8_t ByteArray::get(size_t index) const {
  if (index >= length_) out_of_range("ByteArray::get", index, length_);
  return std::atomic_ref<uint8_t>(const_cast<uint8_t&>(data()[index])).load(std::memory_order_relaxed);
}

void ByteArray::set(size_t index, uint8_t value) {
  if (index >= length_) out_of_range("ByteArray::set", index, length_);
  internal::check_store(Object::from_payload(this), "ByteArray::set");
  // Relaxed atomic: a racing reader (or a racing freeze's copy) sees the old or the new
  // byte, and TSan sees no data race.
  std::atomic_ref<uint8_t>(data()[index]).store(value, std::memory_order_relaxed);
}

Ref<String> String::create(std::string_view text) {
  Object* o = allocate_variable(kStringClassId, text.size() + 1, text.size());
  char* chars = static_cast<char*>(o->payload()) + 8;
  if (!text.empty()) std::memcpy(chars, text.data(), text.size());
  chars[text.size()] = '\0';
  return Ref<String>::from_object(o);
}

namespace {
// Builtins with weak slots are kCustom classes (the only layout whose trace function can
// report weak slots) of one fixed size: payload type T after the header.
template <class T>
ClassId define_fixed_custom(const char* name, TraceFn trace) {
  ClassDescriptor d;
  d.name = name;
  d.layout = Layout::kCustom;
  d.size = [](const Object*) -> size_t { return kHeaderSize + sizeof(T); };
  d.trace = trace;
  return define_class(d);
}

template <class T>
Ref<T> allocate_fixed_custom(ClassId id) {
  return Ref<T>::from_object(allocate_custom(id, kHeaderSize + sizeof(T)));
}
}  // namespace

ClassId WeakCell::class_id() {
  static const ClassId id = define_fixed_custom<WeakCell>("WeakCell", [](const Object* o, SlotVisitor& v) {
    v.visit_weak(static_cast<const WeakCell*>(o->payload())->slot_);
  });
  return id;
}

Ref<WeakCell> WeakCell::create(Value target) {
  Ref<WeakCell> cell = allocate_fixed_custom<WeakCell>(class_id());
  cell->set(target);
  return cell;
}

ClassId Ephemeron::class_id() {
  static const ClassId id = define_fixed_custom<Ephemeron>("Ephemeron", [](const Object* o, SlotVisitor& v) {
    const auto* e = static_cast<const Ephemeron*>(o->payload());
    v.visit_ephemeron(e->key_, e->value_);
  });
  return id;
}

Ref<Ephemeron> Ephemeron::create(Value key, Value value) {
  Ref<Ephemeron> e = allocate_fixed_custom<Ephemeron>(class_id());
  write_weak(e->key_, key);
  write(e.object(), e->value_, value);
  return e;
}

void WeakCell::set(Value target) {
  internal::check_store(Object::from_payload(this), "WeakCell::set");
  write_weak(slot_, target);
}

void Ephemeron::set_value(Value value) { write(Object::from_payload(this), value_, value); }

}  // namespace shoal
