// Marking over side bitmaps. See marker.h for the colours and the invariant.
#include "gc/marker.h"

#include <algorithm>

#include "heap/heap_impl.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

void Marker::mark_conservative(uintptr_t word) {
  if (Object* o = heap_->object_containing(word)) mark_object(o);
}

void Marker::mark_conservative_batch(std::vector<uintptr_t>& words) {
  PageSpace& pages = heap_->pages;
  size_t n = 0;
  for (uintptr_t w : words) {
    if (pages.is_carved(w)) {
      words[n++] = w;
    } else if (heap_->large.index_may_contain(w)) {
      mark_conservative(w);
    }
  }
  words.resize(n);
  for (uintptr_t w : words) __builtin_prefetch(&pages.page_of(w));
  for (uintptr_t w : words) {
    const PageInfo& page = pages.page_of(w);
    __builtin_prefetch(&page.alloc_bits);  // (the word of w's own granule is close by)
  }
  for (uintptr_t w : words) mark_conservative(w);
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
  void visit_ephemeron(const Slot& key, const Slot& value) override {
    const Value k = key.load();
    if (!k.is_object() || Marker::is_marked(*m_.heap_, k.as_object()))
      m_.mark_value(value.load());  // the key is alive (or there is none): a plain edge
    else
      m_.ephemerons_.push_back({const_cast<Slot*>(&key), const_cast<Slot*>(&value)});
  }

 private:
  Marker& m_;
};

// Objects popped from the stack wait in a small FIFO, prefetched, before they are
// traced (Boehm GC's prefetch-on-pop; Cher, Hosking and Vijaykumar, "Software
// prefetching for mark-sweep garbage collection", ASPLOS 2004): by the time an object
// reaches the head of the FIFO its cache line has arrived, so the marker overlaps
// kPrefetchDepth cache misses instead of stalling on each.
size_t Marker::drain_some(size_t max_objects, const std::function<void(Object*)>* after_each) {
  MarkingVisitor visitor(*this);
  const ObjectModel& model = heap_->model;
  Object* fifo[kPrefetchDepth];
  size_t head = 0, count = 0, traced = 0;
  while (traced < max_objects) {
    while (count < kPrefetchDepth && !stack_.empty()) {
      Object* o = stack_.back();
      stack_.pop_back();
      __builtin_prefetch(o);
      fifo[(head + count) % kPrefetchDepth] = o;
      ++count;
    }
    if (count == 0) break;
    Object* o = fifo[head];
    head = (head + 1) % kPrefetchDepth;
    --count;
    bytes_traced_ += cell_bytes(*heap_, o);
    model.trace(o, visitor);
    ++traced;
    if (after_each && *after_each) (*after_each)(o);
  }
  // Objects still waiting go back on the stack (still grey).
  for (; count > 0; --count, head = (head + 1) % kPrefetchDepth) stack_.push_back(fifo[head]);
  return traced;
}

}  // namespace shoal::internal
