// A tiny program built against the installed package: a heap, a pool, a locked counter
// in a heap object, a collection; prints "ok" when everything agrees.
#include <cstdio>

#include "shoal/shoal.h"

struct Counter {
  shoal::Member<shoal::Lock> lock;
  int64_t n SHOAL_GUARDED_BY(lock) = 0;
  static constexpr auto kRefs = shoal::refs(&Counter::lock);
  static constexpr const char* kName = "consumer.Counter";
};

int main() {
  shoal::Heap heap;
  shoal::MutatorScope attach(heap);
  shoal::Ref<Counter> c = shoal::make<Counter>();
  c.set(&Counter::lock, shoal::Lock::create());
  shoal::ThreadPool pool(heap, 2);
  shoal::TaskGroup<void> group(pool);
  for (int i = 0; i < 100; ++i)
    group.spawn([](shoal::Ref<Counter> counter) {
      shoal::LockHolder hold(*counter->lock);
      counter->n += 1;
    }, c);
  group.wait();
  heap.collect();
  shoal::LockHolder hold(*c->lock);
  if (c->n != 100 || !heap.verify().ok) return 1;
  std::printf("ok\n");
  return 0;
}
