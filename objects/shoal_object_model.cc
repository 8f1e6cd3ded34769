// Shoal's object model over the class table: the ObjectModel the collector uses unless a
// heap is given another. Size and reference slots follow from the header's class id and
// the class's layout (include/shoal/class_table.h).
#include <string>
#include <vector>

#include "shoal/builtins.h"
#include "shoal/class_table.h"
#include "shoal/object_model.h"
#include "shoal/internal/allocate.h"

namespace shoal {

namespace {

uint64_t length_of(const Object* o) { return *static_cast<const uint64_t*>(o->payload()); }

class ShoalObjectModel final : public ObjectModel {
 public:
  size_t size_of(const Object* o) const override {
    const ClassInfo& c = *find_class(o->class_id());
    switch (c.layout) {
      case Layout::kFixed: return kHeaderSize + c.instance_size;
      case Layout::kRefArray: return kHeaderSize + 8 + 8 * length_of(o);
      case Layout::kByteArray: return kHeaderSize + 8 + length_of(o);
      case Layout::kString: return kHeaderSize + 8 + length_of(o) + 1;
      case Layout::kCustom: return c.size(o);
    }
    return 0;
  }

  void trace(const Object* o, SlotVisitor& v) const override {
    const ClassInfo& c = *find_class(o->class_id());
    const char* payload = static_cast<const char*>(o->payload());
    switch (c.layout) {
      case Layout::kFixed: {
        // One visit per run of adjacent slots (a VM's classes mostly have one run).
        const std::vector<uint32_t>& offs = c.ref_offsets;
        for (size_t i = 0; i < offs.size();) {
          size_t j = i + 1;
          while (j < offs.size() && offs[j] == offs[j - 1] + 8) ++j;
          v.visit(reinterpret_cast<const Slot*>(payload + offs[i]), j - i);
          i = j;
        }
        break;
      }
      case Layout::kRefArray: v.visit(reinterpret_cast<const Slot*>(payload + 8), length_of(o)); break;
      case Layout::kByteArray:
      case Layout::kString: break;
      case Layout::kCustom: c.trace(o, v); break;
    }
  }

  bool is_well_formed(const Object* o, std::string* why) const override {
    const ClassInfo* c = find_class(o->class_id());
    if (!c) {
      *why = "unknown class id " + std::to_string(o->class_id()) + " (header " + std::to_string(o->header_word()) + ")";
      return false;
    }
    if ((o->header_word() & c->tags) != c->tags) {
      *why = "class " + c->name + ": instance lacks the class's sharing tags";
      return false;
    }
    if (c->layout == Layout::kRefArray || c->layout == Layout::kByteArray || c->layout == Layout::kString) {
      if (length_of(o) > (uint64_t{1} << 40)) {
        *why = "class " + c->name + ": implausible length " + std::to_string(length_of(o));
        return false;
      }
    }
    if (c->layout == Layout::kString && static_cast<const String*>(o->payload())->c_str()[length_of(o)] != '\0') {
      *why = "string is not NUL-terminated";
      return false;
    }
    return true;
  }

  // The class id is the key: a class's layout and offsets never change once defined.
  uint64_t layout_key_mask() const override { return header::kClassIdMask; }
  SlotLayout slot_layout(const Object* o) const override {
    SlotLayout l;
    const ClassInfo* c = find_class(o->class_id());
    if (!c) return l;  // (trace() reports it)
    switch (c->layout) {
      case Layout::kFixed: {
        // The runs trace() visits, in the same order.
        const std::vector<uint32_t>& offs = c->ref_offsets;
        size_t n = 0;
        for (size_t i = 0; i < offs.size();) {
          size_t j = i + 1;
          while (j < offs.size() && offs[j] == offs[j - 1] + 8) ++j;
          if (n == SlotLayout::kMaxRuns) return SlotLayout{};  // too many runs: trace()
          l.runs[n++] = {static_cast<uint32_t>(kHeaderSize + offs[i]), static_cast<uint32_t>(j - i)};
          i = j;
        }
        l.kind = SlotLayout::Kind::kRuns;
        l.run_count = static_cast<uint8_t>(n);
        return l;
      }
      case Layout::kRefArray:
        l.kind = SlotLayout::Kind::kArray;
        l.length_offset = kHeaderSize;
        l.runs[0] = {kHeaderSize + 8, 0};
        return l;
      case Layout::kByteArray:
      case Layout::kString:
        l.kind = SlotLayout::Kind::kRuns;  // no references
        return l;
      case Layout::kCustom:
        return l;  // kTrace: the class's own function (it may report weak slots)
    }
    return l;
  }

  std::string class_name(const Object* o) const override {
    const ClassInfo* c = find_class(o->class_id());
    return c ? c->name : "unknown class id " + std::to_string(o->class_id());
  }
};

}  // namespace

// (The collector's bits 32..39 of a custom header word are dropped: the only entry that
// takes an arbitrary header - class-table headers carry sharing tags only, define_class.)
Object* allocate_raw(size_t bytes, uint64_t header_word) {
  return internal::allocate(bytes, header_word & ~header::kGcMask);
}

const ObjectModel& default_object_model() {
  static const ShoalObjectModel model;
  return model;
}

}  // namespace shoal
