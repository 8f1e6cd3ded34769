// The referrer scan. See referrer_scan.h.
#include "gc/referrer_scan.h"

#include <vector>

#include "gc/stack_scanner.h"
#include "heap/heap_impl.h"

namespace shoal::internal {

namespace {
class ReferrerScan {
 public:
  ReferrerScan(HeapImpl& heap, const ObjectIndex& subgraph) : heap_(heap), subgraph_(subgraph) {}

  std::optional<std::string> run() {
    auto scan_stack = [&](uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers) {
      scan_words(sp, base, [](void* self, uintptr_t w) { static_cast<ReferrerScan*>(self)->root_word(w); }, this);
      for (uintptr_t r : registers) root_word(r);
    };
    for (MutatorThread* t : heap_.threads.threads_in_pause()) scan_stack(t->context.sp, t->stack_base, t->context.registers);
    heap_.roots.for_each_suspended_range(scan_stack);
    heap_.roots.for_each_scratch_object([&](Object* o) { push(o); });
    heap_.roots.for_each_handle_root([&](Value v) {
      if (!v.is_object()) return;
      if (!found_ && subgraph_.contains(v.as_object()))
        found_ = "a persistent handle or registered global refers to an object of class " + name_of(v.as_object());
      push(v.as_object());
    });

    struct Edges final : SlotVisitor {
      ReferrerScan* scan;
      Object* holder;
      bool holder_inside;
      void visit(const Slot* slots, size_t n) override {
        for (size_t i = 0; i < n; ++i) {
          const Value v = slots[i].load();
          if (!v.is_object()) continue;
          if (!holder_inside && !scan->found_ && scan->subgraph_.contains(v.as_object()))
            scan->found_ = "an object of class " + scan->name_of(holder) + " outside the subgraph refers to an object of class " +
                           scan->name_of(v.as_object()) + " in it";
          scan->push(v.as_object());
        }
      }
    } edges;
    edges.scan = this;
    while (!work_.empty() && !found_) {
      Object* o = work_.back();
      work_.pop_back();
      edges.holder = o;
      edges.holder_inside = subgraph_.contains(o);
      heap_.model.trace(o, edges);
    }
    return found_;
  }

 private:
  std::string name_of(const Object* o) const { return heap_.model.class_name(o); }
  void root_word(uintptr_t w) {
    if (Object* o = heap_.object_containing(w)) push(o);
  }
  void push(Object* o) {
    if (visited_.insert(o).second) work_.push_back(o);
  }

  HeapImpl& heap_;
  const ObjectIndex& subgraph_;
  ObjectIndex visited_;
  std::vector<Object*> work_;
  std::optional<std::string> found_;
};
}  // namespace

std::optional<std::string> find_referrer_in_pause(HeapImpl& heap, const ObjectIndex& subgraph) {
  return ReferrerScan(heap, subgraph).run();
}

}  // namespace shoal::internal
