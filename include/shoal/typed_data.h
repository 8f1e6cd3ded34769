// Typed data: fixed-length lists of machine numbers, and views on byte ranges (Dart's
// dart:typed_data).
//
//   auto xs = shoal::Int32List::create(1000);          // zeroed
//   xs->set(3, 42);
//   xs->fetch_add(3, 1);                                // atomic element operations
//   auto ys = shoal::Int64List::view(xs->buffer(), 8, 4);  // bytes 8..39 of xs
//
// Every list is a view: a (buffer, byte offset, length) triple over a ByteArray, all
// three fixed when the list is created. create() makes a fresh buffer; view() shares an
// existing one, so writes through one list are seen through every other on the same
// bytes. An element list's byte offset is a multiple of its element size (atomic
// operations need aligned elements).
//
// Race safety: the triple never changes, every index is checked against the length, and
// every element access is an atomic one (get/set relaxed, so a racing reader sees the
// old or the new number, never a torn one; the atomic operations as ordered). Writes are
// refused like reference stores, on the buffer: a frozen buffer (freezing any list
// freezes its buffer) gives InvalidMutabilityError; another isolate's,
// IncorrectDereferenceError.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shoal/builtins.h"
#include "shoal/managed.h"

namespace shoal {

namespace internal {
[[noreturn]] void typed_range_error(const char* what, size_t index, size_t length);
}  // namespace internal

template <class E>
class TypedList {
  static_assert(std::is_same_v<E, uint8_t> || std::is_same_v<E, int32_t> || std::is_same_v<E, int64_t> ||
                std::is_same_v<E, double>);

 public:
  using Element = E;
  // A list of `length` zeroed elements on a fresh buffer.
  static Ref<TypedList> create(size_t length);
  // A list over `length` elements of `buffer` starting at `byte_offset`: InvalidArgument
  // when the offset is not a multiple of the element size, RangeError when the range
  // does not fit in the buffer.
  static Ref<TypedList> view(Ref<ByteArray> buffer, size_t byte_offset, size_t length);
  static ClassId class_id();
  static const char* name();

  size_t length() const { return length_; }
  size_t byte_offset() const { return offset_; }
  size_t length_in_bytes() const { return length_ * sizeof(E); }
  Ref<ByteArray> buffer() const { return Ref<ByteArray>::from_value(buffer_.load()); }

  E get(size_t index) const { return ref(index, "get").load(std::memory_order_relaxed); }
  E operator[](size_t index) const { return get(index); }
  void set(size_t index, E value) { writable(index, "set").store(value, std::memory_order_relaxed); }

  // Atomic element operations (integer lists). compare_and_swap returns the witness:
  // the element before, equal to `expected` exactly when it swapped. (Member templates
  // - U is always E - so that they exist only for integer elements.)
  template <class U = E>
    requires std::is_integral_v<U>
  E load(size_t index, std::memory_order order = std::memory_order_seq_cst) const {
    return ref(index, "load").load(order);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  void store(size_t index, E value, std::memory_order order = std::memory_order_seq_cst) {
    writable(index, "store").store(value, order);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E exchange(size_t index, E value) {
    return writable(index, "exchange").exchange(value);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E compare_and_swap(size_t index, E expected, E desired) {
    writable(index, "compare_and_swap").compare_exchange_strong(expected, desired);
    return expected;
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E fetch_add(size_t index, E v) {
    return writable(index, "fetch_add").fetch_add(v);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E fetch_sub(size_t index, E v) {
    return writable(index, "fetch_sub").fetch_sub(v);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E fetch_and(size_t index, E v) {
    return writable(index, "fetch_and").fetch_and(v);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E fetch_or(size_t index, E v) {
    return writable(index, "fetch_or").fetch_or(v);
  }
  template <class U = E>
    requires std::is_integral_v<U>
  E fetch_xor(size_t index, E v) {
    return writable(index, "fetch_xor").fetch_xor(v);
  }

 private:
  // The element's atomic view, after the bounds check.
  std::atomic_ref<E> ref(size_t index, const char* what) const {
    if (index >= length_) [[unlikely]] internal::typed_range_error(what, index, length_);
    auto* bytes = const_cast<uint8_t*>(static_cast<const ByteArray*>(buffer_.load().as_object()->payload())->data());
    return std::atomic_ref<E>(*reinterpret_cast<E*>(bytes + offset_ + index * sizeof(E)));
  }
  // The same, after the store check on the buffer.
  std::atomic_ref<E> writable(size_t index, const char* what) {
    internal::check_store(buffer_.load().as_object(), what);
    return ref(index, what);
  }

  Slot buffer_;      // the ByteArray
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
};

using Uint8List = TypedList<uint8_t>;
using Int32List = TypedList<int32_t>;
using Int64List = TypedList<int64_t>;
using Float64List = TypedList<double>;

extern template class TypedList<uint8_t>;
extern template class TypedList<int32_t>;
extern template class TypedList<int64_t>;
extern template class TypedList<double>;

}  // namespace shoal
