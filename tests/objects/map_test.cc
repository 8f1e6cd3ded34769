// Map: lookups by value / identity / string content, insertion order, removal and
// tombstones, growth and compaction, iteration and ConcurrentModificationError, the
// mutation checks, collections, and copies (identity keys are rehashed in the copy).
#include <string>
#include <unordered_map>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

Value I(int64_t v) { return Value::from_int(v); }
Value S(std::string_view s) { return String::create(s).value(); }

using MapTest = VerifiedHeapTest;

TEST_F(MapTest, SetGetContainsRemoveSize) {
  Ref<Map> m = Map::create();
  EXPECT_TRUE(m->empty());
  EXPECT_FALSE(m->get(I(1)));
  m->set(I(1), I(10));
  m->set(Value::null(), I(0));  // null is a key like any other
  m->set(I(2), Value::null());  // and a value
  EXPECT_EQ(m->size(), 3u);
  EXPECT_EQ(m->get(I(1))->as_int(), 10);
  EXPECT_EQ(m->get(Value::null())->as_int(), 0);
  ASSERT_TRUE(m->get(I(2)));
  EXPECT_TRUE(m->get(I(2))->is_null());  // present, with the value null
  m->set(I(1), I(11));                   // replace: same size
  EXPECT_EQ(m->size(), 3u);
  EXPECT_EQ(m->get(I(1))->as_int(), 11);
  EXPECT_EQ(m->remove(I(1))->as_int(), 11);
  EXPECT_FALSE(m->remove(I(1)));
  EXPECT_FALSE(m->contains(I(1)));
  EXPECT_EQ(m->size(), 2u);
}

TEST_F(MapTest, StringKeysByContentOrByIdentity) {
  Ref<Map> by_content = Map::create();
  Ref<Map> by_identity = Map::create(MapKeys::kIdentity);
  Value k1 = S("key"), k2 = S("key");
  by_content->set(k1, I(1));
  by_identity->set(k1, I(1));
  EXPECT_EQ(by_content->get(k2)->as_int(), 1);
  EXPECT_FALSE(by_identity->get(k2));
  EXPECT_EQ(by_identity->get(k1)->as_int(), 1);
  by_content->set(k2, I(2));  // the same key
  EXPECT_EQ(by_content->size(), 1u);
  EXPECT_EQ(by_content->get(S("key"))->as_int(), 2);
  EXPECT_FALSE(by_content->get(S("kex")));
  EXPECT_FALSE(by_content->get(S("")));
  by_content->set(S(""), I(3));
  by_content->set(S(std::string(100, 'x')), I(4));
  EXPECT_EQ(by_content->get(S(""))->as_int(), 3);
  EXPECT_EQ(by_content->get(S(std::string(100, 'x')))->as_int(), 4);
  // Objects that are not strings compare by identity in both modes.
  Ref<Node> n1 = make<Node>(), n2 = make<Node>();
  by_content->set(n1.value(), I(5));
  EXPECT_EQ(by_content->get(n1.value())->as_int(), 5);
  EXPECT_FALSE(by_content->get(n2.value()));
}

TEST_F(MapTest, ManyKeysInsertionOrderRemovalAndCompaction) {
  Ref<Map> m = Map::create();
  std::unordered_map<int64_t, int64_t> model;
  for (int64_t i = 0; i < 20000; ++i) {
    m->set(I(i * 7919 % 100003), I(i));
    model[i * 7919 % 100003] = i;
  }
  for (int64_t i = 0; i < 20000; i += 3) {
    EXPECT_TRUE(m->remove(I(i * 7919 % 100003)));
    model.erase(i * 7919 % 100003);
  }
  EXPECT_EQ(m->size(), model.size());
  for (auto [k, v] : model) ASSERT_EQ(m->get(I(k))->as_int(), v);
  // Insertion order, removed keys skipped.
  int64_t last = -1;
  size_t n = 0;
  for (auto [k, v] : *m) {
    EXPECT_GT(v.as_int(), last);
    last = v.as_int();
    EXPECT_EQ(model.at(k.as_int()), v.as_int());
    ++n;
  }
  EXPECT_EQ(n, model.size());
  // Churn: add and remove far more keys than the table holds; it compacts.
  for (int64_t i = 0; i < 50000; ++i) {
    m->set(I(-i - 1), I(i));
    m->remove(I(-i - 1));
  }
  EXPECT_EQ(m->size(), model.size());
  m->clear();
  EXPECT_EQ(m->size(), 0u);
  EXPECT_FALSE(m->get(I(0)));
  m->set(I(0), I(0));
  EXPECT_EQ(m->size(), 1u);
}

TEST_F(MapTest, IterationThrowsConcurrentModificationErrorOnStructuralChanges) {
  Ref<Map> m = Map::create();
  for (int i = 0; i < 5; ++i) m->set(I(i), I(i));
  EXPECT_NO_THROW(m->for_each([&](Value k, Value) { m->set(k, I(100)); }));  // values only
  EXPECT_THROW(m->for_each([&](Value, Value) { m->set(I(99), I(0)); }), ConcurrentModificationError);
  EXPECT_THROW(m->for_each([&](Value k, Value) { m->remove(k); }), ConcurrentModificationError);
  EXPECT_THROW(
      {
        for (auto kv : *m) {
          (void)kv;
          m->clear();
        }
      },
      ConcurrentModificationError);
}

TEST_F(MapTest, ValuesAndKeysSurviveCollectionsRemovedOnesAreFreed) {
  Persistent<Map> m(heap(), Map::create(MapKeys::kIdentity));
  HiddenPtr removed_key, removed_value;
  in_own_frame([&] {
    for (int i = 0; i < 200; ++i) m.get()->set(make<Node>().value(), make_tree(2).value());
    Value k = make<Node>().value();
    Value v = make<Node>().value();
    m.get()->set(k, v);
    removed_key = HiddenPtr(k.as_object());
    removed_value = HiddenPtr(v.as_object());
  });
  // Removed in a frame of its own, followed by other map operations, so that no stale
  // copy of the key's address is left in a register or stack slot (conservative roots;
  // the sanitizer builds lay frames out differently).
  in_own_frame([&] { m.get()->remove(Value::from_object(removed_key.get<Object>())); });
  in_own_frame([&] {
    for (int i = 0; i < 8; ++i) (void)m.get()->get_or(Value::from_int(i), Value::null());
  });
  clobber_stack();
  heap().collect();
  heap().collect();
  EXPECT_FALSE(is_allocated(heap(), removed_key));
  EXPECT_FALSE(is_allocated(heap(), removed_value));
  size_t n = 0;
  m.get()->for_each([&](Value k, Value v) {
    EXPECT_TRUE(cast<Node>(k));
    EXPECT_EQ(check_tree(cast<Node>(v), 2), 7);
    EXPECT_EQ(m.get()->get(k), v);
    ++n;
  });
  EXPECT_EQ(n, 200u);
}

TEST_F(MapTest, FrozenMapsRefuseEveryMutation) {
  Ref<Map> m = Map::create();
  m->set(S("a"), I(1));
  freeze(m.value());
  EXPECT_THROW(m->set(S("a"), I(2)), InvalidMutabilityError);
  EXPECT_THROW(m->set(S("b"), I(2)), InvalidMutabilityError);
  EXPECT_THROW(m->remove(S("a")), InvalidMutabilityError);
  EXPECT_THROW(m->clear(), InvalidMutabilityError);
  EXPECT_EQ(m->get(S("a"))->as_int(), 1);
  EXPECT_EQ(m->size(), 1u);
}

TEST(MapIsolationTest, CopiesRehashIdentityKeysAndForeignMapsAreRefused) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Map> m = Map::create(MapKeys::kIdentity);
  Ref<GrowableList> keys = GrowableList::create();  // travels with the map
  for (int i = 0; i < 300; ++i) {
    Ref<Node> k = make<Node>();
    k->value = i;
    keys->add(k.value());
    m->set(k.value(), I(i));
  }
  m->set(S("shared string"), I(-1));  // frozen: not copied, same address
  Ref<GrowableList> both = GrowableList::create();
  both->add_all({m.value(), keys.value()});
  run_in(b, [&] { EXPECT_THROW(m->set(I(1), I(1)), IncorrectDereferenceError); });
  inbox.send_port().send(both.value(), SendMode::kCopy);
  run_in(b, [&] {
    Ref<GrowableList> got = cast<GrowableList>(inbox.receive());
    Ref<Map> copy = cast<Map>(got->get(0));
    Ref<GrowableList> copied_keys = cast<GrowableList>(got->get(1));
    ASSERT_EQ(copy->size(), 301u);
    // The copy's keys are new objects: every one is found under its new address.
    for (size_t i = 0; i < copied_keys->length(); ++i) {
      Ref<Node> k = cast<Node>(copied_keys->get(i));
      EXPECT_NE(k.value(), keys->get(i));
      ASSERT_TRUE(copy->get(k.value())) << i;
      EXPECT_EQ(copy->get(k.value())->as_int(), k->value);
    }
    copy->set(I(7), I(7));  // b's own now
    EXPECT_EQ(copy->size(), 302u);
  });
}

}  // namespace
}  // namespace shoal::test
