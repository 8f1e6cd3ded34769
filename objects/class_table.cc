// The process-wide class table. See include/shoal/class_table.h.
//
// Storage: fixed segments of 1024 ClassInfo pointers, allocated on demand and never
// freed or moved, so a reader indexes without a lock: segments_[id >> 10][id & 1023].
// count_ is published with release after the entry is written; readers load it with
// acquire before trusting an id.
#include "shoal/class_table.h"


#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "gc/preempt_safe_lock.h"
#include "shoal/errors.h"
#include "shoal/sharing.h"
#include "shoal/internal/allocate.h"
#include "shoal/internal/size_classes.h"
#include "shoal/write_barrier.h"

namespace shoal {

namespace {

constexpr size_t kSegmentBits = 10;
constexpr size_t kSegmentSize = size_t{1} << kSegmentBits;
constexpr size_t kMaxClasses = size_t{1} << header::kClassIdBits;
constexpr size_t kMaxSegments = kMaxClasses / kSegmentSize;

class ClassTable {
 public:
  ClassTable() {
    count_.store(1, std::memory_order_relaxed);  // id 0 is never valid
    define_builtin("RefArray", Layout::kRefArray, kRefArrayClassId, 0);
    define_builtin("ByteArray", Layout::kByteArray, kByteArrayClassId, 0);
    define_builtin("String", Layout::kString, kStringClassId,
                   header::kDeeplyImmutable | header::kTriviallyShareable | header::kFrozen);
  }

  ClassId define(const ClassDescriptor& d) {
    validate(d);
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    const size_t id = count_.load(std::memory_order_relaxed);
    if (id >= kMaxClasses) throw InvalidArgument("define_class: class table is full (2^24 classes)");
    store(id, d);
    count_.store(id + 1, std::memory_order_release);
    return static_cast<ClassId>(id);
  }

  const ClassInfo* find(ClassId id) const {
    if (id == 0 || id >= count_.load(std::memory_order_acquire)) return nullptr;
    return segments_[id >> kSegmentBits].load(std::memory_order_acquire)[id & (kSegmentSize - 1)].get();
  }

  size_t count() const { return count_.load(std::memory_order_acquire); }

 private:
  using Segment = std::unique_ptr<ClassInfo>*;

  void define_builtin(const char* name, Layout layout, ClassId expected, uint64_t tags) {
    ClassDescriptor d;
    d.name = name;
    d.layout = layout;
    d.tags = tags;
    const ClassId id = define(d);
    if (id != expected) std::abort();
  }

  static void validate(const ClassDescriptor& d) {
    const std::string who = "define_class(\"" + d.name + "\"): ";
    if (d.tags & ~header::kTagMask) throw InvalidArgument(who + "tags outside the sharing-tag bits");
    if (d.tags & (header::kFreezing | header::kShared))
      throw InvalidArgument(who + "kFreezing and kShared are set by the runtime, not by a class");
    if (d.tags & ~(header::kDeeplyImmutable | header::kTriviallyShareable | header::kFrozen))
      throw InvalidArgument(who + "tags other than kDeeplyImmutable, kTriviallyShareable and kFrozen are reserved");
    if ((d.tags & header::kFrozen) && !(d.tags & header::kDeeplyImmutable))
      throw InvalidArgument(who + "kFrozen at birth needs kDeeplyImmutable (freeze instances with shoal::freeze)");
    switch (d.layout) {
      case Layout::kFixed: {
        if (d.instance_size > (uint32_t{1} << 30)) throw InvalidArgument(who + "instance_size too large");
        std::vector<uint32_t> offsets = d.ref_offsets;
        std::sort(offsets.begin(), offsets.end());
        for (size_t i = 0; i < offsets.size(); ++i) {
          if (offsets[i] % 8 != 0) throw InvalidArgument(who + "reference offset " + std::to_string(offsets[i]) + " is not 8-byte aligned");
          if (uint64_t{offsets[i]} + 8 > d.instance_size)  // (64 bits: 0xfffffff8 + 8 wraps to 0)
            throw InvalidArgument(who + "reference offset " + std::to_string(offsets[i]) + " is outside the instance");
          if (i > 0 && offsets[i] == offsets[i - 1]) throw InvalidArgument(who + "duplicate reference offset");
        }
        break;
      }
      case Layout::kCustom:
        if (!d.size || !d.trace) throw InvalidArgument(who + "a kCustom class needs size and trace functions");
        break;
      default:
        break;
    }
  }

  void store(size_t id, const ClassDescriptor& d) {
    auto& seg = segments_[id >> kSegmentBits];
    Segment s = seg.load(std::memory_order_relaxed);
    if (!s) {
      s = new std::unique_ptr<ClassInfo>[kSegmentSize];
      seg.store(s, std::memory_order_release);
    }
    auto info = std::make_unique<ClassInfo>();
    info->id = static_cast<ClassId>(id);
    info->name = d.name;
    info->layout = d.layout;
    info->instance_size = d.instance_size;
    info->ref_offsets = d.ref_offsets;
    std::sort(info->ref_offsets.begin(), info->ref_offsets.end());
    info->size = d.size;
    info->trace = d.trace;
    info->after_copy = d.after_copy;
    // A deeply immutable class's instances are frozen and shareable from birth: one tag
    // test (kImmutableMask, kShareableMask) covers every immutable object.
    info->tags = d.tags & header::kDeeplyImmutable
                     ? d.tags | header::kTriviallyShareable | header::kFrozen
                     : d.tags;
    s[id & (kSegmentSize - 1)] = std::move(info);
  }

  std::mutex mu_;
  std::atomic<size_t> count_{0};
  std::array<std::atomic<Segment>, kMaxSegments> segments_{};
};

ClassTable& table() {
  static ClassTable* t = new ClassTable();  // lives for the whole process
  return *t;
}

}  // namespace

ClassId define_class(const ClassDescriptor& descriptor) { return table().define(descriptor); }
const ClassInfo* find_class(ClassId id) { return table().find(id); }
size_t class_count() { return table().count(); }

const ClassInfo& class_info(ClassId id) {
  const ClassInfo* c = find_class(id);
  if (!c) throw InvalidArgument("unknown class id " + std::to_string(id));
  return *c;
}

Object* allocate_instance(ClassId id) {
  const ClassInfo& c = class_info(id);
  if (c.layout != Layout::kFixed) throw InvalidArgument("allocate_instance: class " + c.name + " is not a fixed-size class");
  return internal::allocate(kHeaderSize + c.instance_size, header::make(id, c.tags));
}

Object* allocate_immutable_instance(ClassId id, const Value* fields, size_t count) {
  const ClassInfo& c = class_info(id);
  if (!(c.tags & header::kDeeplyImmutable)) internal::throw_not_deeply_immutable(id);
  if (count != c.ref_offsets.size())
    throw InvalidArgument("allocate_immutable_instance: class " + c.name + " has " +
                          std::to_string(c.ref_offsets.size()) + " reference fields, " + std::to_string(count) +
                          " values given");
  // Check first, so no half-built instance is ever allocated.
  for (size_t i = 0; i < count; ++i)
    if (!is_shareable(fields[i]))
      internal::throw_field_not_shareable(c.name, "reference field " + std::to_string(i), fields[i]);
  Object* o = allocate_instance(id);
  for (size_t i = 0; i < count; ++i) {
    Slot& slot = *reinterpret_cast<Slot*>(static_cast<char*>(o->payload()) + c.ref_offsets[i]);
    internal::write_unchecked(o, slot, fields[i]);
  }
  return o;
}

Object* allocate_custom(ClassId id, size_t bytes) {
  const ClassInfo& c = class_info(id);
  if (c.layout != Layout::kCustom) throw InvalidArgument("allocate_custom: class " + c.name + " is not a kCustom class");
  if (bytes < kHeaderSize) throw InvalidArgument("allocate_custom: size smaller than the header");
  return internal::allocate(bytes, header::make(id, c.tags));
}

namespace {
Slot& field_slot(const Object* object, uint32_t offset) {
  const ClassInfo& c = class_info(object->class_id());
  if (c.layout != Layout::kFixed || !std::binary_search(c.ref_offsets.begin(), c.ref_offsets.end(), offset))
    throw InvalidArgument("offset " + std::to_string(offset) + " is not a reference field of class " + c.name);
  return *reinterpret_cast<Slot*>(static_cast<char*>(const_cast<Object*>(object)->payload()) + offset);
}
}  // namespace

Value load_field(const Object* object, uint32_t offset) { return field_slot(object, offset).load(); }
void store_field(Object* object, uint32_t offset, Value value) { write(object, field_slot(object, offset), value); }

Value compare_and_swap_field(Object* object, uint32_t offset, Value expected, Value desired) {
  return compare_and_swap(object, field_slot(object, offset), expected, desired);
}

namespace internal {
void throw_bad_cast(ClassId actual, ClassId expected) {
  const std::string want = class_info(expected).name;
  if (actual == 0) throw InvalidArgument("cast: a small integer is not a " + want);
  throw InvalidArgument("cast: an object of class " + class_info(actual).name + " is not a " + want);
}
}  // namespace internal

}  // namespace shoal
