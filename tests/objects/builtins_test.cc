// Built-in classes: bounds checks, tags, contents across collections.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

class BuiltinsTest : public HeapTest {};

TEST_F(BuiltinsTest, RefArrayHoldsValuesAndChecksBounds) {
  Ref<RefArray> a = RefArray::create(10);
  EXPECT_EQ(a->length(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_TRUE(a->get(i).is_null());
  a->set(0, Value::from_int(5));
  a->set(9, String::create("nine").value());
  EXPECT_THROW(a->get(10), RangeError);
  EXPECT_THROW(a->set(10, Value::null()), RangeError);
  heap().collect();
  EXPECT_EQ(a->get(0).as_int(), 5);
  EXPECT_EQ(Ref<String>::from_value(a->get(9))->view(), "nine");
  EXPECT_EQ(RefArray::create(0)->length(), 0u);
}

TEST_F(BuiltinsTest, ByteArray) {
  Ref<ByteArray> b = ByteArray::create(100);
  b->set(99, 0xff);
  EXPECT_EQ(b->get(99), 0xff);
  EXPECT_THROW(b->get(100), RangeError);
  heap().collect();
  EXPECT_EQ(b->data()[99], 0xff);
}

TEST_F(BuiltinsTest, StringsAreImmutableSharedAndFrozenFromBirth) {
  Ref<String> s = String::create("hello, shoal");
  EXPECT_EQ(s->view(), "hello, shoal");
  EXPECT_STREQ(s->c_str(), "hello, shoal");
  EXPECT_TRUE(s.object()->is_frozen());
  EXPECT_TRUE(s.object()->is_deeply_immutable());
  EXPECT_TRUE(s.object()->is_trivially_shareable());
  EXPECT_EQ(String::create("")->length(), 0u);
  Ref<String> big = String::create(std::string(20000, 'z'));  // a large object
  heap().collect();
  EXPECT_EQ(big->view(), std::string(20000, 'z'));
  expect_heap_ok();
}

TEST_F(BuiltinsTest, ValueEncoding) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_EQ(Value::from_int(-7).as_int(), -7);
  EXPECT_EQ(Value::from_int(Value::kMinSmallInt).as_int(), Value::kMinSmallInt);
  EXPECT_THROW(Value::from_int(Value::kMaxSmallInt + 1), InvalidArgument);
  Ref<Node> n = make<Node>();
  EXPECT_TRUE(n.value().is_object());
  EXPECT_EQ(n.value().as_object(), n.object());
}

}  // namespace
}  // namespace shoal::test
