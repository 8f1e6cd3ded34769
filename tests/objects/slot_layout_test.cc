// ObjectModel::slot_layout of Shoal's own model: the marker reads the slots of every
// object whose class has a layout itself instead of calling trace() (gc/marker.h), so a
// layout must name exactly the slots trace() visits, for every layout kind. Checked
// here object by object; the collector tests then mark through the layouts.
#include <set>
#include <vector>

#include "shoal/class_table.h"
#include "shoal/object_model.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

// Collects the addresses trace() passes to visit(); counts weak slots and ephemerons.
class Recorder final : public SlotVisitor {
 public:
  void visit(const Slot* slots, size_t count) override {
    for (size_t i = 0; i < count; ++i) strong.push_back(&slots[i]);
  }
  void visit_weak(const Slot&) override { ++weak; }
  void visit_ephemeron(const Slot&, const Slot&) override { ++weak; }
  std::vector<const Slot*> strong;
  int weak = 0;
};

std::vector<const Slot*> slots_of_layout(const Object* o, const SlotLayout& l) {
  std::vector<const Slot*> out;
  const char* base = reinterpret_cast<const char*>(o);
  auto run = [&](uint32_t offset, uint64_t count) {
    EXPECT_EQ(offset % 8, 0u);
    for (uint64_t i = 0; i < count; ++i) out.push_back(reinterpret_cast<const Slot*>(base + offset) + i);
  };
  if (l.kind == SlotLayout::Kind::kRuns) {
    EXPECT_LE(l.run_count, SlotLayout::kMaxRuns);
    for (size_t r = 0; r < l.run_count; ++r) run(l.runs[r].offset, l.runs[r].count);
  } else if (l.kind == SlotLayout::Kind::kArray) {
    run(l.runs[0].offset, *reinterpret_cast<const uint64_t*>(base + l.length_offset));
  }
  return out;
}

// The layout of o names exactly what trace(o) visits (in the same order), or is kTrace.
// Returns the layout's kind.
SlotLayout::Kind check_layout(const Object* o) {
  const ObjectModel& model = default_object_model();
  const SlotLayout l = model.slot_layout(o);
  Recorder traced;
  model.trace(o, traced);
  if (l.kind != SlotLayout::Kind::kTrace) {
    EXPECT_EQ(traced.weak, 0) << "a class with weak slots must be traced by trace()";
    EXPECT_EQ(slots_of_layout(o, l), traced.strong) << model.class_name(o);
  }
  // Every object of the class shares the key, and the model answers the same for it.
  EXPECT_EQ(model.layout_key_mask() & header::kGcMask, 0u) << "keys must not include the collector's bits";
  return l.kind;
}

TEST(SlotLayoutTest, EveryLayoutNamesExactlyTheSlotsTraceVisits) {
  Heap heap;
  MutatorScope attach(heap);
  // Fixed classes: one run, several runs, runs in any declared order, no references,
  // and more runs than a layout holds (then trace() it is).
  const ClassId pair = define_fixed_class("layout.Pair", 16, {0, 8});
  const ClassId gaps = define_fixed_class("layout.Gaps", 64, {40, 0, 8, 24, 56});
  const ClassId plain = define_fixed_class("layout.Plain", 24, {});
  const ClassId many = define_fixed_class("layout.ManyRuns", 80, {0, 16, 32, 48, 64});
  EXPECT_EQ(check_layout(allocate_instance(pair)), SlotLayout::Kind::kRuns);
  EXPECT_EQ(check_layout(allocate_instance(gaps)), SlotLayout::Kind::kRuns);
  EXPECT_EQ(check_layout(allocate_instance(plain)), SlotLayout::Kind::kRuns);
  EXPECT_EQ(check_layout(allocate_instance(many)), SlotLayout::Kind::kTrace);
  EXPECT_EQ(check_layout(make<Node>().object()), SlotLayout::Kind::kRuns);
  // Arrays of every length read their count from the object.
  for (size_t n : {0, 1, 7, 1000}) EXPECT_EQ(check_layout(RefArray::create(n).object()), SlotLayout::Kind::kArray);
  EXPECT_EQ(check_layout(ByteArray::create(40).object()), SlotLayout::Kind::kRuns);
  EXPECT_EQ(check_layout(String::create("no references in here").object()), SlotLayout::Kind::kRuns);
  // A custom class keeps its own trace function (it may report weak slots).
  const ClassId custom = define_every_other_slot_class("layout.EveryOther");
  Object* frame = allocate_custom(custom, 16 + 8 * 4);
  *static_cast<uint64_t*>(frame->payload()) = 4;
  EXPECT_EQ(check_layout(frame), SlotLayout::Kind::kTrace);
  // Builtins with weak slots are traced by trace() too.
  EXPECT_EQ(check_layout(WeakCell::create(Value::null()).object()), SlotLayout::Kind::kTrace);
}

TEST(SlotLayoutTest, MarkingThroughLayoutsKeepsWhatEveryLayoutReferences) {
  // A graph over every layout kind, reachable only through its slots: a collection that
  // read a wrong offset or count would free some of it (the verifier would also report
  // a dangling reference).
  const ClassId gaps = define_fixed_class("layout.Gaps2", 64, {40, 0, 8, 24, 56});
  const ClassId many = define_fixed_class("layout.ManyRuns2", 80, {0, 16, 32, 48, 64});
  Heap heap;
  MutatorScope attach(heap);
  std::vector<HiddenPtr> leaves;
  Persistent<RefArray> root(heap, RefArray::create(3));
  in_own_frame([&] {
    auto leaf = [&] {
      Ref<String> s = String::create("leaf");
      leaves.emplace_back(s.object());
      return s.value();
    };
    Object* g = allocate_instance(gaps);
    for (uint32_t off : {40u, 0u, 8u, 24u, 56u}) store_field(g, off, leaf());
    Object* m = allocate_instance(many);
    for (uint32_t off : {0u, 16u, 32u, 48u, 64u}) store_field(m, off, leaf());
    Ref<RefArray> a = RefArray::create(500);
    for (size_t i = 0; i < 500; i += 7) a->set(i, leaf());
    root->set(0, Value::from_object(g));
    root->set(1, Value::from_object(m));
    root->set(2, a.value());
  });
  clobber_stack();
  heap.collect();
  for (const HiddenPtr& p : leaves) EXPECT_TRUE(is_allocated(heap, p));
  EXPECT_TRUE(heap.verify().ok);
  // And a concurrent cycle (the marker thread, the layout cache of each marker).
  heap.start_collection();
  heap.wait_for_collection();
  EXPECT_TRUE(heap.verify().ok);  // (its pause finishes the lazy sweep first)
  for (const HiddenPtr& p : leaves) EXPECT_TRUE(is_allocated(heap, p));
}

}  // namespace
}  // namespace shoal::test
