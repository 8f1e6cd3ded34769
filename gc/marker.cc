// Marking over side bitmaps. See marker.h for the colours and the invariant.
#include "gc/marker.h"

#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

void Marker::mark_conservative(uintptr_t word) {
  if (Object* o = heap_.object_containing(word)) mark_object(o);
}

void Marker::mark_object(Object* o) {
  bool newly = false;
  if (heap_.pages.contains(o)) {
    PageInfo& page = heap_.pages.page_of(o);
    SHOAL_DCHECK(page.alloc_bits.test(page.granule_of(o)));
    newly = page.mark_bits.test_and_set(page.granule_of(o));
  } else {
    LargeObject* l = LargeObject::of(o);
    SHOAL_DCHECK(l->magic == LargeObject::kMagic);
    newly = l->mark.load(std::memory_order_relaxed) == 0 && l->mark.exchange(1, std::memory_order_relaxed) == 0;
  }
  if (newly) {
    ++marked_;
    stack_.push_back(o);
  }
}

void Marker::drain() {
  class Visitor final : public SlotVisitor {
   public:
    explicit Visitor(Marker& m) : m_(m) {}
    void visit(const Slot* slots, size_t count) override {
      for (size_t i = 0; i < count; ++i) m_.mark_value(slots[i].load());
    }

   private:
    Marker& m_;
  } visitor(*this);

  const ObjectModel& model = heap_.model;
  while (!stack_.empty()) {
    Object* o = stack_.back();
    stack_.pop_back();
    bytes_traced_ += model.size_of(o);
    model.trace(o, visitor);
  }
}

}  // namespace shoal::internal
