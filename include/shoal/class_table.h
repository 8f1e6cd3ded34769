// The class table: what the collector and the runtime know about each class.
//
// Classes are defined at run time - a VM prototype defines its classes while loading
// code - and never removed. Class ids are small integers stored in every object header.
// The table is append-only and lock-free to read; definitions take a lock.
//
// Layouts:
//   kFixed      instance_size payload bytes; reference slots at ref_offsets
//   kRefArray   [length][Slot x length]
//   kByteArray  [length][bytes]
//   kString     [length][bytes, NUL-terminated]; deeply immutable
//   kCustom     size and trace given as functions (for a VM's own variable layouts)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/object.h"
#include "shoal/object_model.h"

namespace shoal {

enum class Layout : uint8_t { kFixed, kRefArray, kByteArray, kString, kCustom };

using SizeFn = size_t (*)(const Object*);
using TraceFn = void (*)(const Object*, SlotVisitor&);
// Runs on a fresh deep copy (runtime/deep_copy.cc) once every reference in the copied
// graph points to its copy, before the copy is handed out: for classes whose payload
// depends on the addresses their references hold (a map's identity hashes). Must not
// allocate.
using AfterCopyFn = void (*)(Object* copy);

struct ClassDescriptor {
  std::string name;
  Layout layout = Layout::kFixed;
  uint32_t instance_size = 0;          // kFixed: payload bytes (after the header)
  std::vector<uint32_t> ref_offsets;   // kFixed: payload offsets of Slot fields
  SizeFn size = nullptr;               // kCustom
  TraceFn trace = nullptr;             // kCustom
  uint64_t tags = 0;                   // header tags every instance is born with
  AfterCopyFn after_copy = nullptr;    // optional, any layout
};

struct ClassInfo {
  ClassId id;
  std::string name;
  Layout layout;
  uint32_t instance_size;
  std::vector<uint32_t> ref_offsets;
  SizeFn size;
  TraceFn trace;
  uint64_t tags;
  AfterCopyFn after_copy;
};

// Well-known classes, defined before anything else.
inline constexpr ClassId kRefArrayClassId = 1;
inline constexpr ClassId kByteArrayClassId = 2;
inline constexpr ClassId kStringClassId = 3;

// Defines a class; throws InvalidArgument for a malformed descriptor (misaligned or
// out-of-range offsets, duplicate offsets, missing functions for kCustom, ...).
ClassId define_class(const ClassDescriptor& descriptor);
// The class with this id, or null when no such class exists.
const ClassInfo* find_class(ClassId id);
const ClassInfo& class_info(ClassId id);  // throws InvalidArgument when unknown
size_t class_count();

// Allocates an instance of a kFixed class in the current thread's heap (zeroed).
Object* allocate_instance(ClassId id);
// Allocates a zeroed instance of a kCustom class, `bytes` long (header included); the
// caller then writes the fields its size function reads, before any safepoint.
Object* allocate_custom(ClassId id, size_t bytes);
// Reads and writes a reference field of a kFixed instance by payload offset.
// Writes go through the write barrier.
Value load_field(const Object* object, uint32_t offset);
void store_field(Object* object, uint32_t offset, Value value);
// Compare-and-swap of a reference field of a kFixed instance by payload offset
// (shoal::compare_and_swap: checks, barrier, returns the witness).
Value compare_and_swap_field(Object* object, uint32_t offset, Value expected, Value desired);

}  // namespace shoal
