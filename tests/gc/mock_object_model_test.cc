// The collector against a tiny mock object model: it sees objects only through
// ObjectModel, so any layout works.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

// Mock layout: header word = (number of reference slots << 8) | 0x4d ('M'), the count in
// bits 8..23 (bits 24..63 are Shoal's: allocate_raw); the slots follow the header.
// Size = 8 + 8 * slots.
class MockModel final : public ObjectModel {
 public:
  static constexpr uint64_t kTag = 0x4d;
  static uint64_t header_for(size_t slots) { return (slots << 8) | kTag; }
  static size_t slots_of(const Object* o) { return (o->header_word() >> 8) & 0xffff; }
  size_t size_of(const Object* o) const override { return 8 + 8 * slots_of(o); }
  void trace(const Object* o, SlotVisitor& v) const override {
    traced++;
    v.visit(static_cast<const Slot*>(o->payload()), slots_of(o));
  }
  bool is_well_formed(const Object* o, std::string* why) const override {
    if ((o->header_word() & 0xff) != kTag) {
      *why = "bad mock tag";
      return false;
    }
    return true;
  }
  mutable std::atomic<size_t> traced{0};
};

Object* mock_alloc(size_t slots) { return allocate_raw(8 + 8 * slots, MockModel::header_for(slots)); }
Slot& mock_slot(Object* o, size_t i) { return static_cast<Slot*>(o->payload())[i]; }

TEST(MockObjectModelTest, CollectorTracesThroughTheModel) {
  MockModel model;
  HeapOptions o;
  o.object_model = &model;
  Heap heap(o);
  MutatorScope attach(heap);
  Object* root = mock_alloc(3);
  HiddenPtr kept, dropped;
  in_own_frame([&] {
    Object* a = mock_alloc(1);
    Object* b = mock_alloc(2000);  // a large mock object
    write(root, mock_slot(root, 0), Value::from_object(a));
    write(a, mock_slot(a, 0), Value::from_object(b));
    write(b, mock_slot(b, 1999), Value::from_object(root));  // a cycle back to the root
    kept = HiddenPtr(b);
    dropped = HiddenPtr(mock_alloc(5));
  });
  clobber_stack();
  heap.collect();
  EXPECT_TRUE(is_allocated(heap, kept));
  EXPECT_FALSE(is_allocated(heap, dropped));
  EXPECT_GE(model.traced.load(), 3u);
  VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_EQ(r.objects_checked, 3u);
  EXPECT_TRUE(mock_slot(root, 0).load().is_object());  // root stays live up to here
}

}  // namespace
}  // namespace shoal::test
