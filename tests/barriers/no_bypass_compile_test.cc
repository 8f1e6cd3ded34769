// Negative compile test (tests/CMakeLists.txt): user code cannot store into a Slot
// without the write barrier. Compiled once per SHOAL_CASE: case 0 is the positive
// control (the barriered ways to store must compile); every other case must fail to
// compile with an access or missing-member error.
#include "shoal/shoal.h"

struct Node {
  shoal::Member<Node> next;
  shoal::Slot any;
  static constexpr auto kRefs = shoal::refs(&Node::next, &Node::any);
};

void store(shoal::Ref<Node> n, shoal::Ref<shoal::RefArray> a, shoal::Heap& heap, shoal::Slot& global) {
#if SHOAL_CASE == 0
  n.set(&Node::next, n);
  n.set(&Node::any, shoal::Value::from_int(1));
  shoal::write(n.object(), n->next.slot(), n.value());
  a->set(0, n.value());
  heap.store_root(&global, n.value());
#elif SHOAL_CASE == 1
  n->next.slot().store_root(n.value());  // the old public root store
#elif SHOAL_CASE == 2
  n->next.slot().store_after_barrier(n.value());  // the old public raw store
#elif SHOAL_CASE == 3
  a->slots()[0].store(n.value());  // the raw store is private
#elif SHOAL_CASE == 4
  n->any.store(shoal::Value::from_int(1));
#elif SHOAL_CASE == 5
  global.store(n.value());
#endif
  (void)n, (void)a, (void)heap, (void)global;
}
