// Heap atomics (AtomicInt32/64, AtomicRef) and compare-and-swap / exchange on reference
// fields and RefArray elements: results, sharing rules, and the write barrier - a swap
// that deletes the only path to an object while marking runs must shade it (the
// lost-object interleaving, replayed with the marker held mid-cycle).
#include <optional>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

Value I(int64_t v) { return Value::from_int(v); }

class AtomicsTest : public HeapTest {};

TEST_F(AtomicsTest, IntegerObjects) {
  auto a = AtomicInt64::create(5);
  auto b = AtomicInt32::create();
  EXPECT_EQ(a->load(), 5);
  EXPECT_EQ(a->fetch_add(3), 5);
  EXPECT_EQ(a->fetch_sub(1), 8);
  EXPECT_EQ(a->fetch_and(6), 7);
  EXPECT_EQ(a->fetch_or(1), 6);
  EXPECT_EQ(a->fetch_xor(2), 7);
  EXPECT_EQ(a->exchange(100), 5);
  EXPECT_EQ(a->compare_and_swap(100, 1), 100);
  EXPECT_EQ(a->compare_and_swap(100, 2), 1);
  b->store(-7, std::memory_order_release);
  EXPECT_EQ(b->load(std::memory_order_acquire), -7);
  EXPECT_TRUE(is_shareable(a.value()));
  EXPECT_EQ(a.object()->owner(), 0u);
}

TEST_F(AtomicsTest, AtomicRefAndCompareAndSwapReturnWitnesses) {
  Ref<Node> x = make<Node>(), y = make<Node>();
  auto r = AtomicRef::create(x.value());
  EXPECT_EQ(r->load(), x.value());
  EXPECT_EQ(r->compare_and_swap(y.value(), I(1)), x.value());  // failed: witness x
  EXPECT_EQ(r->compare_and_swap(x.value(), y.value()), x.value());
  EXPECT_EQ(r->load(), y.value());
  EXPECT_EQ(r->exchange(I(3)), y.value());
  r->store(Value::null());
  EXPECT_TRUE(r->load().is_null());
  // Reference fields of managed structs and class-table classes, and RefArray elements.
  Ref<Node> n = make<Node>();
  EXPECT_EQ(n.compare_and_swap(&Node::left, Ref<Node>(), x), Ref<Node>());
  EXPECT_EQ(n.compare_and_swap(&Node::left, Ref<Node>(), y), x);
  EXPECT_EQ(n->left.get(), x);
  EXPECT_EQ(n.exchange(&Node::left, y), x);
  ClassDescriptor d;
  d.name = "atomics_test.Pair";
  d.instance_size = 16;
  d.ref_offsets = {0, 8};
  const ClassId pair = define_class(d);
  Object* p = allocate_instance(pair);
  EXPECT_TRUE(compare_and_swap_field(p, 8, Value::null(), x.value()).is_null());
  EXPECT_EQ(load_field(p, 8), x.value());
  EXPECT_THROW(compare_and_swap_field(p, 4, Value::null(), x.value()), InvalidArgument);
  auto arr = RefArray::create(2);
  EXPECT_TRUE(arr->compare_and_swap(1, Value::null(), I(5)).is_null());
  EXPECT_EQ(arr->exchange(1, I(6)).as_int(), 5);
  EXPECT_THROW(arr->compare_and_swap(2, Value::null(), I(5)), RangeError);
}

TEST_F(AtomicsTest, FrozenHoldersRefuseSwapsButAtomicsStayMutableInFrozenGraphs) {
  Ref<Node> n = make<Node>();
  auto counter = AtomicInt64::create();
  auto cell = AtomicRef::create();
  auto arr = RefArray::create(3);
  arr->set(0, counter.value());
  arr->set(1, cell.value());
  freeze(n.value());
  freeze(arr.value());
  EXPECT_THROW(n.compare_and_swap(&Node::left, Ref<Node>(), n), InvalidMutabilityError);
  EXPECT_THROW(n.exchange(&Node::left, n), InvalidMutabilityError);
  EXPECT_THROW(arr->compare_and_swap(2, Value::null(), I(1)), InvalidMutabilityError);
  EXPECT_TRUE(is_frozen(arr.value()));
  EXPECT_FALSE(counter.object()->is_frozen());  // left alone by freeze
  EXPECT_EQ(counter->fetch_add(1), 0);
  cell->store(n.value());  // a frozen value
  EXPECT_EQ(cell->load(), n.value());
}

TEST(AtomicsIsolationTest, AnyIsolateMayUseThemButCellsHoldOnlyShareableValues) {
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  std::optional<IsolateScope> in_a(std::in_place, a);
  auto counter = AtomicInt64::create();
  auto cell = AtomicRef::create(String::create("s").value());
  Ref<Node> mine = make<Node>();
  EXPECT_THROW(cell->store(mine.value()), NotShareableError);
  EXPECT_THROW(cell->compare_and_swap(cell->load(), mine.value()), NotShareableError);
  EXPECT_THROW(cell->exchange(mine.value()), NotShareableError);
  EXPECT_THROW(AtomicRef::create(mine.value()), NotShareableError);
  EXPECT_EQ(cast<String>(cell->load())->view(), "s");
  counter->fetch_add(1);
  run_in(b, [&] {
    counter->fetch_add(1);
    cell->store(freeze(make<Node>()).value());
  });
  run_shared(group, [&] { counter->fetch_add(1); });
  EXPECT_EQ(counter->load(), 3);
  EXPECT_TRUE(cast<Node>(cell->load()).object()->is_frozen());
  // Shared fields and ports take them by reference.
  ReceivePort inbox(b);
  inbox.send_port().send(counter.value(), SendMode::kShare);
  run_in(b, [&] { EXPECT_EQ(inbox.receive(), counter.value()); });
  in_a.reset();
  // In a share-everything group a cell holds anything.
  IsolateGroup everything(share_everything_options());
  Isolate& c = everything.create_isolate("c");
  run_in(c, [&] {
    auto any = AtomicRef::create(make<Node>().value());
    EXPECT_TRUE(cast<Node>(any->load()));
  });
}

// The lost-object interleaving (test_support.h, expect_deleted_value_shaded) for each
// atomic reference store: the swap deletes the only path to the list while marking.
enum class Swap { kCasField, kExchangeField, kCasArray, kExchangeArray, kAtomicRefCas, kAtomicRefExchange };

class AtomicBarrierTest : public ::testing::TestWithParam<Swap> {};

TEST_P(AtomicBarrierTest, TheOverwrittenValueIsShadedWhileMarking) {
  // The holder [a, arr, cell]: exactly one of a.left, arr[0], cell leads to the list.
  auto build = [](Ref<Node> list) {
    Ref<RefArray> holder = RefArray::create(3);
    Ref<Node> a = make<Node>();
    Ref<RefArray> arr = RefArray::create(1);
    Ref<AtomicRef> cell = AtomicRef::create();
    switch (GetParam()) {
      case Swap::kCasField:
      case Swap::kExchangeField:
        a.set(&Node::left, list);
        break;
      case Swap::kCasArray:
      case Swap::kExchangeArray:
        arr->set(0, list.value());
        break;
      case Swap::kAtomicRefCas:
      case Swap::kAtomicRefExchange:
        cell->store(list.value());
        break;
    }
    holder->set(0, a.value());
    holder->set(1, arr.value());
    holder->set(2, cell.value());
    return holder.value();
  };
  auto take = [](Value holder_value) {
    Ref<RefArray> holder = Ref<RefArray>::from_value(holder_value);
    Ref<Node> a = cast<Node>(holder->get(0));
    Ref<RefArray> arr = cast<RefArray>(holder->get(1));
    Ref<AtomicRef> cell = cast<AtomicRef>(holder->get(2));
    Ref<Node> list;
    switch (GetParam()) {
      case Swap::kCasField:
        list = a->left.get();
        EXPECT_EQ(a.compare_and_swap(&Node::left, list, Ref<Node>()), list);
        break;
      case Swap::kExchangeField:
        list = a.exchange(&Node::left, Ref<Node>());
        break;
      case Swap::kCasArray:
        list = cast<Node>(arr->get(0));
        EXPECT_EQ(arr->compare_and_swap(0, list.value(), Value::null()), list.value());
        break;
      case Swap::kExchangeArray:
        list = cast<Node>(arr->exchange(0, Value::null()));
        break;
      case Swap::kAtomicRefCas:
        list = cast<Node>(cell->load());
        EXPECT_EQ(cell->compare_and_swap(list.value(), Value::null()), list.value());
        break;
      case Swap::kAtomicRefExchange:
        list = cast<Node>(cell->exchange(Value::null()));
        break;
    }
    return list;
  };
  expect_deleted_value_shaded(build, take);
}

std::string swap_name(const ::testing::TestParamInfo<Swap>& info) {
  static const char* const names[] = {"CasField", "ExchangeField", "CasArray", "ExchangeArray", "AtomicRefCas", "AtomicRefExchange"};
  return names[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Swaps, AtomicBarrierTest,
                         ::testing::Values(Swap::kCasField, Swap::kExchangeField, Swap::kCasArray,
                                           Swap::kExchangeArray, Swap::kAtomicRefCas, Swap::kAtomicRefExchange),
                         swap_name);

}  // namespace
}  // namespace shoal::test
