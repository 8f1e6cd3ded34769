// Deeply immutable classes: instances born frozen and shareable, fields checked once at
// initialisation, no half-built instance escapes.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

struct Point {
  Member<String> label;
  Slot extra;
  int64_t x = 0, y = 0;
  Point() = default;
  Point(int64_t x_in, int64_t y_in) : x(x_in), y(y_in) {}
  static constexpr auto kRefs = refs(&Point::label, &Point::extra);
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
  static constexpr const char* kName = "test.Point";
};

class ImmutableTest : public HeapTest {};

TEST_F(ImmutableTest, BornFrozenAndShareable) {
  Ref<Point> p = make_immutable<Point>(
      [](Initializer<Point>& in) {
        in.set(&Point::label, String::create("origin"), "label");
        in.set(&Point::extra, Value::from_int(5), "extra");
      },
      3, 4);
  EXPECT_TRUE(p.object()->is_deeply_immutable());
  EXPECT_TRUE(is_frozen(p.value()));
  EXPECT_TRUE(is_shareable(p.value()));
  EXPECT_EQ(p->label.get()->view(), "origin");
  EXPECT_EQ(p->extra.load().as_int(), 5);
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  EXPECT_THROW(p.set(&Point::label, String::create("other")), InvalidMutabilityError);
  EXPECT_THROW(p.set(&Point::extra, Value::null()), InvalidMutabilityError);
  EXPECT_EQ(p->label.get()->view(), "origin");
  // Instances of immutable classes may hold each other, and frozen objects.
  Ref<Node> frozen_node = freeze(make<Node>());
  Ref<Point> q = make_immutable<Point>([&](Initializer<Point>& in) { in.set(&Point::extra, p.value()); });
  Ref<Point> r = make_immutable<Point>([&](Initializer<Point>& in) { in.set(&Point::extra, frozen_node.value()); });
  EXPECT_EQ(q->extra.load(), p.value());
  EXPECT_EQ(r->extra.load(), frozen_node.value());
}

TEST_F(ImmutableTest, AMutableFieldValueIsRefusedAndNothingEscapes) {
  Ref<Node> mutable_node = make<Node>();
  Ref<Point> escaped;
  try {
    escaped = make_immutable<Point>([&](Initializer<Point>& in) { in.set(&Point::extra, mutable_node.value(), "extra"); });
    FAIL() << "accepted a mutable value";
  } catch (const NotShareableError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("test.Point.extra"), std::string::npos) << what;
    EXPECT_NE(what.find("test.Node"), std::string::npos) << what;
  }
  EXPECT_FALSE(escaped);
  EXPECT_FALSE(mutable_node.object()->is_frozen());  // the value was not frozen behind our back
}

TEST_F(ImmutableTest, ClassTableForm) {
  ClassDescriptor d;
  d.name = "test.Pair";
  d.instance_size = 16;
  d.ref_offsets = {0, 8};
  d.tags = header::kDeeplyImmutable;
  const ClassId id = define_class(d);
  EXPECT_TRUE(class_info(id).tags & header::kFrozen);
  EXPECT_TRUE(class_info(id).tags & header::kTriviallyShareable);
  Value fields[2] = {String::create("a").value(), Value::from_int(1)};
  Object* o = allocate_immutable_instance(id, fields, 2);
  EXPECT_EQ(load_field(o, 0), fields[0]);
  EXPECT_EQ(load_field(o, 8), fields[1]);
  EXPECT_THROW(store_field(o, 8, Value::null()), InvalidMutabilityError);
  Value bad[2] = {make<Node>().value(), Value::null()};
  EXPECT_THROW(allocate_immutable_instance(id, bad, 2), NotShareableError);
  EXPECT_THROW(allocate_immutable_instance(id, fields, 1), InvalidArgument);
  EXPECT_THROW(allocate_immutable_instance(kRefArrayClassId, fields, 2), InvalidArgument);
  EXPECT_THROW(make_immutable<Node>([](Initializer<Node>&) {}), InvalidArgument);
}

TEST_F(ImmutableTest, TagsAClassMayNotDeclare) {
  ClassDescriptor d;
  d.name = "test.BadTags";
  d.instance_size = 8;
  d.tags = header::kFrozen;
  EXPECT_THROW(define_class(d), InvalidArgument);
  d.tags = header::kFreezing;
  EXPECT_THROW(define_class(d), InvalidArgument);
  d.tags = header::kShared;
  EXPECT_THROW(define_class(d), InvalidArgument);
}

}  // namespace
}  // namespace shoal::test
