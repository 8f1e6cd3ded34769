// The class table: run-time definition, validation, lookups, field access by offset.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(ClassTableTest, BuiltinsAreDefined) {
  EXPECT_EQ(class_info(kRefArrayClassId).name, "RefArray");
  EXPECT_EQ(class_info(kStringClassId).layout, Layout::kString);
  EXPECT_TRUE(class_info(kStringClassId).tags & header::kDeeplyImmutable);
  EXPECT_EQ(find_class(0), nullptr);
  EXPECT_EQ(find_class(0xffffff), nullptr);
  EXPECT_THROW(class_info(0xffffff), InvalidArgument);
}

TEST(ClassTableTest, RejectsMalformedDescriptors) {
  ClassDescriptor d;
  d.name = "Bad";
  d.instance_size = 16;
  d.ref_offsets = {4};
  EXPECT_THROW(define_class(d), InvalidArgument);  // misaligned
  d.ref_offsets = {16};
  EXPECT_THROW(define_class(d), InvalidArgument);  // outside
  d.ref_offsets = {0xfffffff8u};
  EXPECT_THROW(define_class(d), InvalidArgument);  // outside (offset + 8 wrapped to 0 in 32 bits)
  d.ref_offsets = {8, 8};
  EXPECT_THROW(define_class(d), InvalidArgument);  // duplicate
  d.ref_offsets = {};
  d.layout = Layout::kCustom;
  EXPECT_THROW(define_class(d), InvalidArgument);  // no functions
  d.layout = Layout::kFixed;
  d.tags = 1;
  EXPECT_THROW(define_class(d), InvalidArgument);  // not a tag bit
  d.tags = uint64_t{1} << 29;
  EXPECT_THROW(define_class(d), InvalidArgument);  // reserved: a thread's store key uses it
  d.tags = header::kShared;
  EXPECT_THROW(define_class(d), InvalidArgument);  // set by the runtime
}

TEST(ClassTableTest, VmDefinedClassAtRunTime) {
  // What a VM prototype does when it loads a class: payload {Value a; int64 x; Value b}.
  ClassDescriptor d;
  d.name = "vm.Pair";
  d.instance_size = 24;
  d.ref_offsets = {16, 0};
  const ClassId id = define_class(d);
  EXPECT_EQ(class_info(id).ref_offsets, (std::vector<uint32_t>{0, 16}));

  Heap heap;
  MutatorScope attach(heap);
  Object* pair = allocate_instance(id);
  HiddenPtr hidden;
  in_own_frame([&] {
    Ref<String> s = String::create("kept through a VM field");
    hidden = HiddenPtr(s.object());
    store_field(pair, 16, s.value());
  });
  store_field(pair, 0, Value::from_int(42));
  EXPECT_THROW(store_field(pair, 8, Value::null()), InvalidArgument);  // not a ref field
  EXPECT_THROW(allocate_instance(kStringClassId), InvalidArgument);
  clobber_stack();
  heap.collect();
  EXPECT_TRUE(is_allocated(heap, hidden));
  EXPECT_EQ(load_field(pair, 0).as_int(), 42);
  EXPECT_EQ(Ref<String>::from_value(load_field(pair, 16))->view(), "kept through a VM field");
  EXPECT_TRUE(heap.verify().ok);
}

TEST(ClassTableTest, CustomLayoutTracedByItsFunction) {
  // Only every other slot holds a reference in this layout.
  const ClassId id = define_every_other_slot_class("vm.Frame");
  Heap heap;
  MutatorScope attach(heap);
  Object* frame = allocate_custom(id, 16 + 8 * 4);
  EXPECT_THROW(allocate_custom(kStringClassId, 32), InvalidArgument);
  *static_cast<uint64_t*>(frame->payload()) = 4;
  auto* slots = reinterpret_cast<Slot*>(static_cast<uint64_t*>(frame->payload()) + 1);
  HiddenPtr kept;
  in_own_frame([&] {
    Ref<Node> n = make<Node>();
    kept = HiddenPtr(n.object());
    write(frame, slots[2], n.value());
  });
  clobber_stack();
  heap.collect();
  EXPECT_TRUE(is_allocated(heap, kept));
  EXPECT_TRUE(heap.verify().ok);
}

}  // namespace
}  // namespace shoal::test
