// Negative compile test for Shoal's lock names (tests/CMakeLists.txt): compiled with
// clang -Wthread-safety -Werror once per SHOAL_CASE. Case 0 is the positive control -
// every correct use below must compile - and every other case must be rejected with a
// thread-safety diagnostic ("requires holding", "releasing ... that was not held", ...).
#include "shoal/shoal.h"

struct Account {
  shoal::Member<shoal::Lock> lock;
  int64_t balance SHOAL_GUARDED_BY(lock) = 0;
  static constexpr auto kRefs = shoal::refs(&Account::lock);
};

// A native structure guarded by a heap lock it holds a Ref to.
struct Ledger {
  shoal::Ref<shoal::Lock> mu;
  int64_t total SHOAL_GUARDED_BY(mu) = 0;
  void add(int64_t v) SHOAL_REQUIRES(mu) { total += v; }
};

int64_t use(shoal::Ref<Account> a, Ledger& l, shoal::Ref<shoal::Condition> c) {
#if SHOAL_CASE == 0
  int64_t sum = 0;
  {
    shoal::LockHolder hold(*a->lock);
    a->balance += 1;
    sum += a->balance;
  }
  l.mu->acquire();
  l.add(2);
  c->wait(*l.mu, [&]() SHOAL_REQUIRES(l.mu) { return l.total > 0; });
  sum += l.total;
  l.mu->release();
  if (a->lock->try_acquire()) {
    sum += a->balance;
    a->lock->release();
  }
  return sum;
#elif SHOAL_CASE == 1
  return a->balance;  // read without the lock
#elif SHOAL_CASE == 2
  a->balance = 5;  // write without the lock
  return 0;
#elif SHOAL_CASE == 3
  l.add(1);  // a function that requires the lock
  return 0;
#elif SHOAL_CASE == 4
  l.mu->release();  // releasing a lock that is not held
  return 0;
#elif SHOAL_CASE == 5
  c->wait(*l.mu);  // a condition wait without the lock
  return 0;
#elif SHOAL_CASE == 6
  shoal::LockHolder hold(*l.mu);
  return a->balance;  // holding the wrong lock
#elif SHOAL_CASE == 7
  l.mu->acquire();
  return l.total;  // returns with the lock still held
#endif
}
