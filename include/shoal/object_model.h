// The narrow interface through which the collector sees objects.
//
// gc/ never reads an object header itself: it asks the ObjectModel for an object's size
// and for its reference slots. objects/ implements it for Shoal's class table
// (objects/shoal_object_model.cc); tests implement small mock models to exercise the
// collector on its own (tests/gc/mock_object_model.h). The MMTk idea of a VM binding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "shoal/object.h"
#include "shoal/value.h"

namespace shoal {

// Receives an object's reference slots. One virtual call per contiguous range.
class SlotVisitor {
 public:
  virtual void visit(const Slot* slots, size_t count) = 0;
  void visit(const Slot& slot) { visit(&slot, 1); }
  // A weak slot: does not keep its target alive. When a collection finds the target
  // unreachable it clears the slot to null, in the same pause as every other weak slot
  // and WeakRef to that target, before the target's memory is reused. Only kCustom
  // classes' trace functions (and WeakCell) report weak slots.
  virtual void visit_weak(const Slot& slot) { (void)slot; }
  // An ephemeron (a weak-map entry): `value` is kept alive only while `key`'s target
  // is alive through other paths - a value that refers back to its own key does not
  // keep the key. When the key dies, both slots are cleared in the same pause as the
  // weak references. Visitors that do not care treat it as a weak key and a strong value.
  virtual void visit_ephemeron(const Slot& key, const Slot& value) {
    visit_weak(key);
    visit(value);
  }

 protected:
  ~SlotVisitor() = default;
};

// Where an object's strong reference slots lie, when that is simple enough for the marker
// to read them itself (ObjectModel::slot_layout).
struct SlotLayout {
  enum class Kind : uint8_t {
    kTrace,  // irregular, or weak slots or ephemerons: the marker calls trace()
    kRuns,   // runs[0, run_count) at fixed offsets; run_count 0: no references at all
    kArray,  // runs[0].offset is the first slot; the count is the word at length_offset
  };
  struct Run {
    uint32_t offset;  // bytes from the start of the object (the header), a multiple of 8
    uint32_t count;   // adjacent slots
  };
  static constexpr size_t kMaxRuns = 4;
  Kind kind = Kind::kTrace;
  uint8_t run_count = 0;
  uint32_t length_offset = 0;
  Run runs[kMaxRuns] = {};
};

class ObjectModel {
 public:
  virtual ~ObjectModel() = default;
  // Total size of the object in bytes, header included.
  virtual size_t size_of(const Object* object) const = 0;
  // Calls visitor.visit for every slot of `object` that may hold a reference.
  virtual void trace(const Object* object, SlotVisitor& visitor) const = 0;
  // Verifier hook: false (and a reason) if the header is not a valid object header.
  virtual bool is_well_formed(const Object* object, std::string* why) const = 0;
  // Diagnostics: the name of the object's class, for fatal reports (a bad reference
  // found while marking names the object that holds it). Models without names keep the
  // default, an empty string.
  virtual std::string class_name(const Object* object) const {
    (void)object;
    return {};
  }
  // Optional, for marking speed: the marker, which calls trace() once per object it
  // marks, may instead ask once per *layout key* - the header bits in
  // layout_key_mask() - for a SlotLayout, keep it, and read the slots of every object
  // with that key itself, with no virtual call. The default mask, 0, turns this off.
  // Contract: for every object o with (o->header_word() & mask) == key, slot_layout(o)
  // returns the same layout, forever, and unless it is kTrace, that layout names exactly
  // the slots trace(o) passes to visit() (and trace(o) reports no weak slot or
  // ephemeron). Keys must not include the collector's bits 32..39 (they change).
  virtual uint64_t layout_key_mask() const { return 0; }
  virtual SlotLayout slot_layout(const Object* object) const {
    (void)object;
    return {};
  }
};

// Shoal's own object model over the class table.
const ObjectModel& default_object_model();

// Allocates `bytes` (header included, zeroed) with the given header word, for heaps that
// use their own ObjectModel (HeapOptions::object_model). Same errors as any allocation.
// The sharing model reads bits 24..63 of every header (tags, owner: include/shoal/object.h)
// and ORs the allocating isolate's owner bits into them: a custom header layout must
// leave those bits clear (then nothing is ever refused) or use isolates and freeze only
// with Shoal's meanings for them. The collector owns bits 32..39 (with generations on it
// sets and clears them: young, remembered, carded), so a model must not read them.
Object* allocate_raw(size_t bytes, uint64_t header_word);

}  // namespace shoal
