// Deeply immutable instances: initialisation checks (include/shoal/sharing.h).
//
// A deeply immutable class's instances carry kDeeplyImmutable | kTriviallyShareable |
// kFrozen from birth (the class table adds the last two), so write() refuses every store
// into them. make_immutable and allocate_immutable_instance write the fields once,
// through write_unchecked, after checking that each value is shareable: an instance can
// only ever refer to shareable objects, which is what makes it shareable itself. A value
// that fails the check throws NotShareableError before the instance is returned, so the
// half-built object is unreachable garbage.
#include <string>

#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/sharing.h"
#include "shoal/write_barrier.h"

namespace shoal {
namespace internal {

std::string describe_value(Value value) {
  if (value.is_null()) return "null";
  if (value.is_int()) return "a small integer";
  const ClassInfo* c = find_class(value.as_object()->class_id());
  return "an object of class " + (c ? c->name : std::string("#") + std::to_string(value.as_object()->class_id()));
}

void throw_not_deeply_immutable(ClassId cls) {
  throw InvalidArgument("make_immutable: class " + class_info(cls).name +
                        " is not deeply immutable (declare kTags = shoal::header::kDeeplyImmutable)");
}

void throw_field_not_shareable(const std::string& class_name, const std::string& field, Value value) {
  throw NotShareableError("deeply immutable " + class_name + "." + field + ": " + describe_value(value) +
                          " is not trivially shareable (freeze it first, or make its class deeply immutable)");
}

void init_immutable_slot(Object* object, Slot& slot, Value value, const char* field) {
  if (!is_shareable(value)) throw_field_not_shareable(class_info(object->class_id()).name, field, value);
  write_unchecked(object, slot, value);
}

}  // namespace internal
}  // namespace shoal
