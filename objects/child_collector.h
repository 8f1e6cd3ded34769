// ChildCollector (internal): a SlotVisitor that appends the objects an object's strong
// slots refer to onto a vector - the explicit work stack of freeze and of the transfer
// walk (no recursion). Weak slots are not followed; an ephemeron's value is (the
// SlotVisitor defaults).
#pragma once

#include <vector>

#include "shoal/object_model.h"

namespace shoal::internal {

class ChildCollector final : public SlotVisitor {
 public:
  explicit ChildCollector(std::vector<Object*>& out) : out_(out) {}
  void visit(const Slot* slots, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      const Value v = slots[i].load();
      if (v.is_object()) out_.push_back(v.as_object());
    }
  }

 private:
  std::vector<Object*>& out_;
};

}  // namespace shoal::internal
