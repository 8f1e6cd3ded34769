// Typed data (include/shoal/typed_data.h): fixed-length number lists as views on
// ByteArrays. The view triple (buffer, offset, length) is written once, before the list
// is published, and never changes, so there is nothing to race on but the elements,
// which are accessed through std::atomic_ref (aligned: ByteArray data starts at offset
// 16 of an 8-byte-aligned object, and view offsets are multiples of the element size,
// at most 8).
#include "shoal/typed_data.h"

#include <string>

#include "objects/builtin_class.h"
#include "shoal/errors.h"

namespace shoal {

namespace internal {
void typed_range_error(const char* what, size_t index, size_t length) {
  throw RangeError(std::string("typed data ") + what + ": index " + std::to_string(index) + " out of range for length " +
                   std::to_string(length));
}
}  // namespace internal

template <class E>
const char* TypedList<E>::name() {
  if constexpr (std::is_same_v<E, uint8_t>) return "Uint8List";
  else if constexpr (std::is_same_v<E, int32_t>) return "Int32List";
  else if constexpr (std::is_same_v<E, int64_t>) return "Int64List";
  else return "Float64List";
}

template <class E>
ClassId TypedList<E>::class_id() {
  static const ClassId id = internal::define_fixed_builtin(name(), sizeof(TypedList),
                                                           {static_cast<uint32_t>(offsetof(TypedList, buffer_))});
  return id;
}

template <class E>
Ref<TypedList<E>> TypedList<E>::create(size_t length) {
  if (length > (uint64_t{1} << 40) / sizeof(E))
    throw InvalidArgument(std::string(name()) + "::create: length " + std::to_string(length) + " too large");
  return view(ByteArray::create(length * sizeof(E)), 0, length);
}

template <class E>
Ref<TypedList<E>> TypedList<E>::view(Ref<ByteArray> buffer, size_t byte_offset, size_t length) {
  if (!buffer) throw InvalidArgument(std::string(name()) + "::view: null buffer");
  if (byte_offset % sizeof(E) != 0)
    throw InvalidArgument(std::string(name()) + "::view: byte offset " + std::to_string(byte_offset) +
                          " is not a multiple of the element size " + std::to_string(sizeof(E)));
  const size_t bytes = buffer->length();
  if (byte_offset > bytes || length > (bytes - byte_offset) / sizeof(E))
    throw RangeError(std::string(name()) + "::view: " + std::to_string(length) + " elements at byte offset " +
                     std::to_string(byte_offset) + " do not fit in a buffer of " + std::to_string(bytes) + " bytes");
  Object* o = allocate_instance(class_id());  // a safepoint: buffer is held by this frame
  auto* list = new (o->payload()) TypedList();
  list->offset_ = byte_offset;
  list->length_ = length;
  internal::write_unchecked(o, list->buffer_, buffer.value());  // a fresh object's field
  return Ref<TypedList>::from_object(o);
}

template class TypedList<uint8_t>;
template class TypedList<int32_t>;
template class TypedList<int64_t>;
template class TypedList<double>;

}  // namespace shoal
