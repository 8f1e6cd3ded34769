// Lock, Condition, LockHolder and LockTicket (include/shoal/lock.h): mutual exclusion
// under concurrent collections, the LockErrors, timeouts, GC-safe blocking (a
// collection completes while threads are blocked in them), cancellation of blocked
// waits, every thread state, locks in shared graphs, and collection of dead locks.
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

// A heap object guarded by a lock it references: the example of include/shoal/lock.h.
struct Account {
  Member<Lock> lock;
  int64_t balance SHOAL_GUARDED_BY(lock) = 0;
  int64_t updates SHOAL_GUARDED_BY(lock) = 0;
  static constexpr auto kRefs = refs(&Account::lock);
  static constexpr const char* kName = "test.Account";
};

Ref<Account> make_account() {
  Ref<Account> a = make<Account>();
  a.set(&Account::lock, Lock::create());
  return a;
}

// Runs `body` on another thread and fails the test if it has not finished within
// `limit` (a collection that waited for a blocked thread would hang here).
template <class F>
void finishes_within(std::chrono::seconds limit, F body) {
  auto done = std::async(std::launch::async, std::move(body));
  std::future_status status;
  run_native([&] { status = done.wait_for(limit); });  // this (attached) thread must not hold up the pause
  ASSERT_EQ(status, std::future_status::ready) << "did not finish: a wait is not GC-safe";
  done.get();
}

class LockTest : public VerifiedHeapTest {};

TEST_F(LockTest, AcquireReleaseAndTry) {
  Ref<Lock> lock = Lock::create();
  EXPECT_FALSE(lock->is_locked());
  lock->acquire();
  EXPECT_TRUE(lock->is_locked());
  EXPECT_TRUE(lock->is_held_by_current_thread());
  lock->release();
  EXPECT_FALSE(lock->is_locked());
  ASSERT_TRUE(lock->try_acquire());
  EXPECT_TRUE(lock->is_held_by_current_thread());
  lock->release();
  {
    LockHolder hold(*lock);
    EXPECT_TRUE(lock->is_held_by_current_thread());
  }
  EXPECT_FALSE(lock->is_locked());
  EXPECT_TRUE(lock.object()->is_shareable());
  EXPECT_EQ(lock.object()->owner(), 0u);
}

TEST_F(LockTest, ReacquireByOwnerAndReleaseByOthersAreLockErrors) {
  Ref<Lock> lock = Lock::create();
  EXPECT_THROW(lock->release(), LockError);  // not held
  lock->acquire();
  EXPECT_THROW(lock->acquire(), LockError);
  EXPECT_THROW((void)lock->try_acquire(), LockError);
  EXPECT_THROW((void)lock->try_acquire_for(1ms), LockError);
  std::atomic<int> errors{0};
  std::thread other([&] {
    MutatorScope attach(heap());
    try {
      lock->release();
    } catch (const LockError&) {
      errors++;
    }
    EXPECT_FALSE(lock->try_acquire());  // still held by the main thread
  });
  other.join();
  EXPECT_EQ(errors.load(), 1);
  EXPECT_TRUE(lock->is_held_by_current_thread());  // unchanged
  lock->release();
}

TEST_F(LockTest, MutualExclusionUnderConcurrentCollections) {
  // A plain (non-atomic) counter in a heap object, incremented under the lock by four
  // threads that also allocate (so collections run, concurrent and with torture-like
  // frequency from the small trigger). Any lost update shows in the total; TSan reports
  // a missing happens-before edge.
  make_heap([] {
    HeapOptions o;
    o.min_gc_trigger = 256 << 10;
    o.verify_after_gc = true;
    return o;
  }());
  Persistent<Account> account(heap(), make_account());
  constexpr int kThreads = 4, kIters = 3000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      MutatorScope attach(heap());
      Ref<Account> a = account.get();
      for (int i = 0; i < kIters; ++i) {
        make_list(4);  // garbage: keeps the collector busy
        LockHolder hold(*a->lock);
        a->balance += 1;
        if (i % 64 == 0) safepoint();  // a pause while the lock is held
        a->updates += 1;
      }
    });
  run_native([&] {
    for (auto& t : threads) t.join();
  });
  // (A cycle still marking when the threads end - its marker thread starved, as under
  // qemu in CI - is counted once it ends.)
  heap().wait_for_collection();
  Ref<Account> a = account.get();
  LockHolder hold(*a->lock);
  EXPECT_EQ(a->balance, kThreads * kIters);
  EXPECT_EQ(a->updates, kThreads * kIters);
  EXPECT_GT(heap().stats().collections, 0u);
}

TEST_F(LockTest, TryAcquireForTimesOutThenSucceeds) {
  Ref<Lock> lock = Lock::create();
  lock->acquire();
  std::atomic<bool> timed_out{false}, got_it{false};
  std::atomic<bool> released{false};
  std::thread other([&] {
    MutatorScope attach(heap());
    const auto t0 = std::chrono::steady_clock::now();
    timed_out = !lock->try_acquire_for(30ms);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
    while (!released) std::this_thread::yield();
    got_it = lock->try_acquire_for(10s);
    if (got_it) lock->release();
  });
  while (!timed_out) std::this_thread::sleep_for(1ms);
  lock->release();
  released = true;
  run_native([&] { other.join(); });
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(got_it);
}

TEST_F(LockTest, BlockedAcquireDoesNotHoldUpCollections) {
  Ref<Lock> lock = Lock::create();
  lock->acquire();
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    MutatorScope attach(heap());
    lock->acquire();  // blocks until the main thread releases
    acquired = true;
    lock->release();
  });
  // Give the waiter time to park, then collect: stop-the-world and concurrent cycles
  // both need every running thread at a safepoint.
  std::this_thread::sleep_for(20ms);
  finishes_within(std::chrono::seconds(60), [&] {
    MutatorScope attach(heap());
    heap().collect();
    heap().start_collection();
    heap().wait_for_collection();
  });
  EXPECT_FALSE(acquired);
  lock->release();
  run_native([&] { waiter.join(); });
  EXPECT_TRUE(acquired);
}

TEST_F(LockTest, ConditionProducerConsumer) {
  Ref<Lock> lock = Lock::create();
  Ref<Condition> cond = Condition::create();
  Persistent<GrowableList> queue(heap(), GrowableList::create());
  Persistent<Lock> lock_root(heap(), lock);
  Persistent<Condition> cond_root(heap(), cond);
  constexpr int kItems = 2000;
  std::thread consumer([&] {
    MutatorScope attach(heap());
    Ref<Lock> l = lock_root.get();
    Ref<Condition> c = cond_root.get();
    Ref<GrowableList> q = queue.get();
    int64_t expected = 0;
    while (expected < kItems) {
      LockHolder hold(*l);
      c->wait(*l, [&] { return q->length() > 0; });
      while (q->length() > 0) {
        Value v = q->remove_at(0);
        EXPECT_EQ(cast<String>(v)->view(), std::to_string(expected));
        ++expected;
      }
    }
  });
  for (int i = 0; i < kItems; ++i) {
    Ref<String> s = String::create(std::to_string(i));  // allocation: collections happen
    LockHolder hold(*lock);
    queue.get()->add(s.value());
    cond->notify();
  }
  run_native([&] { consumer.join(); });
  EXPECT_EQ(queue.get()->length(), 0u);
}

TEST_F(LockTest, ConditionWaitForTimesOutHoldingTheLockAgain) {
  Ref<Lock> lock = Lock::create();
  Ref<Condition> cond = Condition::create();
  LockHolder hold(*lock);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cond->wait_for(*lock, 20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_TRUE(lock->is_held_by_current_thread());
}

TEST_F(LockTest, ConditionWaitWithoutTheLockIsALockError) {
  Ref<Lock> lock = Lock::create();
  Ref<Condition> cond = Condition::create();
  EXPECT_THROW(cond->wait(*lock), LockError);
  EXPECT_FALSE(lock->is_locked());
}

TEST_F(LockTest, NotifyAllWakesEveryWaiterAndWaitsAreGcSafe) {
  Persistent<Lock> lock(heap(), Lock::create());
  Persistent<Condition> cond(heap(), Condition::create());
  Persistent<AtomicInt64> go(heap(), AtomicInt64::create());
  std::atomic<int> waiting{0}, woke{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i)
    waiters.emplace_back([&] {
      MutatorScope attach(heap());
      Ref<Lock> l = lock.get();
      LockHolder hold(*l);
      waiting++;
      cond.get()->wait(*l, [&] { return go.get()->load() != 0; });
      woke++;
    });
  while (waiting < 3) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(10ms);
  finishes_within(std::chrono::seconds(60), [&] {
    MutatorScope attach(heap());
    heap().collect();
  });
  EXPECT_EQ(woke.load(), 0);
  {
    LockHolder hold(*lock.get());
    go.get()->store(1);
    cond.get()->notify_all();
  }
  run_native([&] {
    for (auto& t : waiters) t.join();
  });
  EXPECT_EQ(woke.load(), 3);
}

TEST_F(LockTest, CancelledTaskLeavesABlockedAcquireWithCancelledError) {
  Persistent<Lock> lock(heap(), Lock::create());
  lock.get()->acquire();
  CancellationToken token;
  std::atomic<int> outcome{0};  // 1 cancelled, 2 acquired
  std::thread waiter([&] {
    MutatorScope attach(heap());
    CancellationScope scope(token);
    try {
      lock.get()->acquire();
      outcome = 2;
      lock.get()->release();
    } catch (const CancelledError&) {
      outcome = 1;
    }
  });
  std::this_thread::sleep_for(20ms);
  token.cancel();
  run_native([&] { waiter.join(); });
  EXPECT_EQ(outcome.load(), 1);
  EXPECT_TRUE(lock.get()->is_held_by_current_thread());  // untouched by the waiter
  lock.get()->release();
  // A waiter that gave up passes no stale state on: the lock still works both ways.
  ASSERT_TRUE(lock.get()->try_acquire());
  lock.get()->release();
}

TEST_F(LockTest, CancelledConditionWaitReacquiresBeforeThrowing) {
  Persistent<Lock> lock(heap(), Lock::create());
  Persistent<Condition> cond(heap(), Condition::create());
  CancellationToken token;
  std::atomic<int> outcome{0};
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    MutatorScope attach(heap());
    CancellationScope scope(token);
    Ref<Lock> l = lock.get();
    l->acquire();
    waiting = true;
    try {
      cond.get()->wait(*l);
    } catch (const CancelledError&) {
      outcome = l->is_held_by_current_thread() ? 1 : 3;
    }
    l->release();
  });
  while (!waiting) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(10ms);
  token.cancel();
  run_native([&] { waiter.join(); });
  EXPECT_EQ(outcome.load(), 1);
  EXPECT_FALSE(lock.get()->is_locked());
}

TEST_F(LockTest, ACancelledConditionWaiterPassesOnTheNotification) {
  // Two waiters, one notify(), and the first waiter's token cancelled right after: if
  // the cancelled waiter consumed the notification it must pass it on, or the other
  // waiter sleeps forever with the predicate true.
  for (int round = 0; round < 5; ++round) {
    Persistent<Lock> lock(heap(), Lock::create());
    Persistent<Condition> cond(heap(), Condition::create());
    std::atomic<bool> ready{false};
    std::atomic<int> waiting{0};
    CancellationToken token;
    auto waiter = [&](bool cancellable) {
      MutatorScope attach(heap());
      std::optional<CancellationScope> scope;
      if (cancellable) scope.emplace(token);
      Ref<Lock> l = lock.get();
      LockHolder hold(*l);
      waiting++;
      try {
        while (!ready) cond.get()->wait(*l);
      } catch (const CancelledError&) {
      }
    };
    // The cancellable waiter parks first, so the kernel wakes it first.
    std::thread w1(waiter, true);
    while (waiting < 1) std::this_thread::sleep_for(100us);
    std::this_thread::sleep_for(2ms);
    std::thread w2(waiter, false);
    while (waiting < 2) std::this_thread::sleep_for(100us);
    std::this_thread::sleep_for(2ms);
    {
      // Notify and cancel while holding the lock: the woken waiter leaves its park
      // (withdrawing from the token) and blocks re-acquiring the lock; the cancel then
      // finds no parked wait to wake, and the waiter sees it once it has the lock.
      LockHolder hold(*lock.get());
      ready = true;
      cond.get()->notify();
      std::this_thread::sleep_for(2ms);
      token.cancel();
    }
    auto joined = std::async(std::launch::async, [&] {
      w1.join();
      w2.join();
    });
    std::future_status status;
    run_native([&] { status = joined.wait_for(30s); });
    ASSERT_EQ(status, std::future_status::ready) << "a notification was lost to a cancelled waiter";
  }
}

TEST_F(LockTest, ATicketMayOutliveItsHeap) {
  LockTicket ticket;
  {
    scope_.reset();
    Heap h;
    MutatorScope attach(h);
    ThreadPool pool(h, 1);
    ticket = Lock::create()->acquire_async(pool).get();
    EXPECT_TRUE(ticket.holds());
  }
  ticket.release();  // the heap is gone: nothing to release, no crash
  EXPECT_FALSE(ticket.holds());
}

TEST_F(LockTest, AlreadyCancelledTokenRefusesToBlock) {
  Ref<Lock> lock = Lock::create();
  CancellationToken token;
  token.cancel();
  CancellationScope scope(token);
  EXPECT_TRUE(lock->try_acquire());  // not blocking: fine
  lock->release();
  lock->acquire();  // uncontended: no wait, no error
  std::thread other([&] {
    MutatorScope attach(heap());
    CancellationScope inner(token);
    EXPECT_THROW(lock->acquire(), CancelledError);
  });
  run_native([&] { other.join(); });
  lock->release();
}

TEST_F(LockTest, ThreadStates) {
  Ref<Lock> lock = Lock::create();
  Lock* raw = &*lock;
  EXPECT_THROW(run_native([&] { raw->acquire(); }), ThreadStateError);
  EXPECT_FALSE(lock->is_locked());
  std::thread unattached([&] {
    EXPECT_THROW(raw->acquire(), NotAttached);
    EXPECT_THROW(raw->release(), NotAttached);
  });
  unattached.join();
  EXPECT_FALSE(lock->is_locked());
  // A ticket (and a plain submit: docs/concurrency.md) from the states that may not
  // touch the heap: inside run_native, in a handshake operation, in a finalizer.
  ThreadPool pool(heap(), 1);
  LockTicket ticket = lock->acquire_async(pool).get();
  run_native([&] { ticket.release(); });
  EXPECT_FALSE(lock->is_locked());
  ticket = lock->acquire_async(pool).get();
  std::optional<Future<int>> submitted;
  handshake_all(heap(), [&](size_t) {
    if (ticket.holds()) ticket.release();
    if (!submitted) submitted = pool.submit([] { return 4; });
  });
  EXPECT_FALSE(lock->is_locked());
  EXPECT_EQ(submitted->get(), 4);
  ticket = lock->acquire_async(pool).get();
  std::atomic<bool> finalized{false};
  in_own_frame([&] {
    heap().add_finalizer(make<Node>().value(), [&] {
      ticket.release();
      finalized = true;
    });
  });
  for (int i = 0; i < 20 && !finalized; ++i) {
    clobber_stack();
    heap().collect();
    heap().run_finalizers();
  }
  EXPECT_TRUE(finalized.load());
  EXPECT_FALSE(lock->is_locked());
}

TEST_F(LockTest, LocksLiveInSharedGraphsAndAcrossIsolates) {
  scope_.reset();
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  SharedField shared_lock(group, "lock");
  SharedField counter(group, "counter");
  run_in(a, [&] {
    shared_lock.set(Lock::create().value());  // trivially shareable: accepted
    counter.set(AtomicInt64::create().value());
  });
  auto work = [&](Isolate& iso) {
    for (int i = 0; i < 500; ++i) {
      run_in(iso, [&] {
        Ref<Lock> l = Ref<Lock>::from_value(shared_lock.get());
        LockHolder hold(*l);
        auto c = Ref<AtomicInt64>::from_value(counter.get());
        const int64_t v = c->load(std::memory_order_relaxed);
        make_list(3);
        c->store(v + 1, std::memory_order_relaxed);  // a read-modify-write made atomic by the lock
      });
    }
  };
  std::thread ta([&] { work(a); });
  std::thread tb([&] { work(b); });
  ta.join();
  tb.join();
  run_in(a, [&] {
    EXPECT_EQ(Ref<AtomicInt64>::from_value(counter.get())->load(), 1000);
    // A lock inside a frozen graph stays usable (freeze leaves it alone).
    Ref<Account> acct = make_account();
    freeze(acct);
    LockHolder hold(*acct->lock);
    EXPECT_TRUE(acct->lock->is_held_by_current_thread());
  });
}

TEST_F(LockTest, UnreachableLocksAreCollected) {
  // Sixteen dropped locks, most of them held: nothing native keeps a lock alive, so all
  // of them are freed - except at most a couple that a stale register or stack slot
  // keeps as a conservative root (sanitizer builds lay frames out differently).
  constexpr int kLocks = 16;
  HiddenPtr hidden[kLocks];
  for (int i = 0; i < kLocks; ++i) {
    in_own_frame([&] {
      Ref<Lock> l = Lock::create();
      if (i % 4 != 0) l->acquire();
      hidden[i] = HiddenPtr(l.object());
    });
  }
  in_own_frame([&] {
    Ref<Lock> other = Lock::create();
    other->acquire();
    other->release();
  });
  clobber_stack();
  heap().collect();
  heap().collect();
  int alive = 0;
  for (const HiddenPtr& h : hidden) alive += is_allocated(heap(), h) ? 1 : 0;
  EXPECT_LE(alive, 2);
}

TEST_F(LockTest, AcquireAsyncHandsTheLockToATicket) {
  ThreadPool pool(heap(), 2);
  Ref<Lock> lock = Lock::create();
  lock->acquire();
  Future<LockTicket> f = lock->acquire_async(pool);
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(f.is_ready());
  lock->release();
  LockTicket ticket = f.get();
  EXPECT_TRUE(ticket.holds());
  EXPECT_TRUE(lock->is_locked());
  EXPECT_FALSE(lock->is_held_by_current_thread());  // the ticket holds it, not a thread
  EXPECT_THROW(lock->release(), LockError);
  // Released from another thread, unattached even.
  std::thread releaser([&] { ticket.release(); });
  run_native([&] { releaser.join(); });
  EXPECT_FALSE(lock->is_locked());
  EXPECT_THROW(ticket.release(), LockError);
  {
    LockTicket scoped = lock->acquire_async(pool).get();
    EXPECT_TRUE(lock->is_locked());
  }  // the destructor releases
  EXPECT_FALSE(lock->is_locked());
}

}  // namespace
}  // namespace shoal::test
