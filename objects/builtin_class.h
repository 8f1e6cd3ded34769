// Helpers shared by the builtin collections' implementations (internal).
#pragma once

#include <cstdint>
#include <vector>

#include "shoal/class_table.h"
#include "shoal/object.h"

namespace shoal::internal {

// Defines a builtin kFixed class: `size` payload bytes, reference slots at `refs`.
inline ClassId define_fixed_builtin(const char* name, uint32_t size, std::vector<uint32_t> refs,
                                    uint64_t tags = 0) {
  ClassDescriptor d;
  d.name = name;
  d.layout = Layout::kFixed;
  d.instance_size = size;
  d.ref_offsets = std::move(refs);
  d.tags = tags;
  return define_class(d);
}

// Allocates an instance of a trivially shareable builtin with no owner (the allocator
// stamps the allocating thread's isolate; these objects belong to nobody).
inline Object* allocate_unowned(ClassId id) {
  Object* o = allocate_instance(id);
  if (o->owner() != 0) o->set_owner(0);
  return o;
}

// Gives a collection's internal part (storage array, map table or entry) the owner of
// the collection: the collection may be unowned while the thread that grows it runs in
// an isolate, and freeze, copy and transfer must see one owner across the whole.
inline void adopt_owner(Object* part, const Object* whole) {
  if (part->owner() != whole->owner()) part->set_owner(whole->owner());
}

}  // namespace shoal::internal
