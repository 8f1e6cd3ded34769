// Marking over side bitmaps. See marker.h for the colours and the invariant.
#include "gc/marker.h"

#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

void Marker::mark_conservative(uintptr_t word) {
  if (Object* o = heap_->object_containing(word)) mark_object(o);
}

bool Marker::try_mark(HeapImpl& heap, Object* o) {
  if (heap.pages.contains(o)) {
    PageInfo& page = heap.pages.page_of(o);
    // (An object allocated during concurrent marking may not have its start bit yet.)
    SHOAL_DCHECK(page.alloc_bits.test(page.granule_of(o)) || heap.collector.marking_concurrently());
    return page.mark_bits.test_and_set(page.granule_of(o));
  }
  LargeObject* l = LargeObject::of(o);
  SHOAL_DCHECK(l->magic == LargeObject::kMagic);
  return l->mark.load(std::memory_order_relaxed) == 0 && l->mark.exchange(1, std::memory_order_relaxed) == 0;
}

bool Marker::is_marked(HeapImpl& heap, const Object* o) {
  if (heap.pages.contains(o)) {
    const PageInfo& page = heap.pages.page_of(o);
    return page.mark_bits.test(page.granule_of(o));
  }
  return LargeObject::of(o)->mark.load(std::memory_order_relaxed) != 0;
}

size_t Marker::cell_bytes(HeapImpl& heap, const Object* o) {
  if (heap.pages.contains(o)) return heap.pages.page_of(o).cell_size;
  return LargeObject::of(o)->object_bytes;
}

std::vector<Object*> Marker::split_off(size_t n) {
  n = std::min(n, stack_.size());
  std::vector<Object*> out(stack_.begin(), stack_.begin() + static_cast<std::ptrdiff_t>(n));
  stack_.erase(stack_.begin(), stack_.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

// Marks every reference in the visited slots (pushing newly grey objects); records weak
// slots without following them.
class MarkingVisitor final : public SlotVisitor {
 public:
  explicit MarkingVisitor(Marker& m) : m_(m) {}
  void visit(const Slot* slots, size_t count) override {
    for (size_t i = 0; i < count; ++i) m_.mark_value(slots[i].load());
  }
  void visit_weak(const Slot& slot) override { m_.weak_slots_.push_back(const_cast<Slot*>(&slot)); }

 private:
  Marker& m_;
};

size_t Marker::drain_some(size_t max_objects, const std::function<void(Object*)>* after_each) {
  MarkingVisitor visitor(*this);
  const ObjectModel& model = heap_->model;
  size_t traced = 0;
  while (!stack_.empty() && traced < max_objects) {
    Object* o = stack_.back();
    stack_.pop_back();
    bytes_traced_ += cell_bytes(*heap_, o);
    model.trace(o, visitor);
    ++traced;
    if (after_each && *after_each) (*after_each)(o);
  }
  return traced;
}

}  // namespace shoal::internal
