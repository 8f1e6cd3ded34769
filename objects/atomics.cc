// Heap atomics (include/shoal/atomics.h). Trivially shareable classes whose instances
// carry no owner: every thread may operate on them, so their operations skip the
// mutation checks (nothing about them is ever frozen: freeze leaves trivially
// shareable objects as they are, objects/freeze.cc). AtomicRef's stores keep the one
// rule that matters for isolation - no isolate's mutable object gets into a cell every
// isolate can read - and obey the write barrier like any reference store.
#include "shoal/atomics.h"

#include <string>

#include "objects/builtin_class.h"
#include "shoal/class_table.h"
#include "shoal/errors.h"

namespace shoal {

template <class I>
ClassId AtomicInteger<I>::class_id() {
  static const ClassId id =
      internal::define_fixed_builtin(sizeof(I) == 4 ? "AtomicInt32" : "AtomicInt64", sizeof(AtomicInteger), {},
                                     header::kTriviallyShareable);
  return id;
}

template <class I>
Ref<AtomicInteger<I>> AtomicInteger<I>::create(I initial) {
  Object* o = internal::allocate_unowned(class_id());
  auto* a = new (o->payload()) AtomicInteger();
  a->value_.store(initial, std::memory_order_relaxed);
  return Ref<AtomicInteger>::from_object(o);  // published by the caller's release of the reference
}

template class AtomicInteger<int32_t>;
template class AtomicInteger<int64_t>;

ClassId AtomicRef::class_id() {
  static const ClassId id =
      internal::define_fixed_builtin("AtomicRef", sizeof(AtomicRef), {static_cast<uint32_t>(offsetof(AtomicRef, value_))},
                                     header::kTriviallyShareable);
  return id;
}

Ref<AtomicRef> AtomicRef::create(Value initial) {
  internal::check_shareable_for_cell(initial, "AtomicRef::create");
  Object* o = internal::allocate_unowned(class_id());
  auto* a = new (o->payload()) AtomicRef();
  internal::write_unchecked(o, a->value_, initial);  // a fresh object's field
  return Ref<AtomicRef>::from_object(o);
}

namespace internal {
constinit thread_local bool tls_cells_need_shareable = false;

void throw_not_shareable_in_cell(Value v, const char* what) {
  const ClassInfo* c = find_class(v.as_object()->class_id());
  throw NotShareableError(std::string(what) + ": an object of class " + (c ? c->name : std::string("?")) +
                          " is not shareable, and a trivially shareable cell is readable by every isolate; "
                          "freeze it, make its class deeply immutable, or create the group with share_everything");
}
}  // namespace internal

}  // namespace shoal
