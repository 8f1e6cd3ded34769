// Executors, futures and cancellation tokens (include/shoal/executor.h, future.h,
// cancellation.h): results and errors through futures, rooted heap arguments across a
// queue under GC torture, then/catch_error chains, the DeadlockError of a blocking get
// on the executor's own thread, serial order and exclusion, shutdown with work in flight
// (queued tasks run, or are dropped with CancelledError), cancellation reaching running
// tasks and blocked waits, and GC-safe idle workers.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

class ExecutorTest : public VerifiedHeapTest {};

TEST_F(ExecutorTest, SubmitReturnsResultsAndErrors) {
  ThreadPool pool(heap(), 2);
  EXPECT_EQ(pool.size(), 2u);
  Future<int> f = pool.submit([](int a, int b) { return a + b; }, 40, 2);
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.get(), 42);  // shared: readable again
  Future<void> g = pool.submit([] { throw RangeError("boom"); });
  EXPECT_THROW(g.get(), RangeError);
  EXPECT_TRUE(g.error() != nullptr);
  Future<std::string> s = pool.submit([](std::string x) { return x + "!"; }, std::string("hi"));
  EXPECT_EQ(s.get(), "hi!");
}

TEST_F(ExecutorTest, HeapArgumentsAndResultsStayAliveAcrossTheQueue) {
  // GC torture: a collection at every few safepoints. The arguments exist only in the
  // task's queue entry between submit and run (the submitting frame is gone), and the
  // results only in the futures.
  make_heap([] {
    HeapOptions o;
    o.gc_torture_interval = 3;
    o.verify_after_gc = true;
    return o;
  }());
  ThreadPool pool(heap(), 2);
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 40; ++i) {
    in_own_frame([&] {
      Ref<Node> list = make_list(8);
      Ref<String> name = String::create("task-" + std::to_string(i));
      futures.push_back(pool.submit(
          [](Ref<Node> l, Value n) {
            make_list(20);  // allocation in the task: collections
            EXPECT_EQ(list_length_checked(l), 8u);
            Ref<String> s = cast<String>(n);
            return String::create(std::string(s->view()) + "-done").value();
          },
          list, name.value()));
    });
    clobber_stack();
  }
  for (int i = 0; i < 40; ++i) {
    heap().collect();
    EXPECT_EQ(cast<String>(futures[i].get())->view(), "task-" + std::to_string(i) + "-done");
  }
}

TEST_F(ExecutorTest, ThenAndCatchErrorChain) {
  ThreadPool pool(heap(), 2);
  Future<int> f = pool.submit([] { return 20; });
  Future<int> g = f.then([](int v) { return v + 1; }).then([](int v) { return v * 2; });
  EXPECT_EQ(g.get(), 42);
  Future<int> failed = pool.submit([]() -> int { throw InvalidArgument("bad"); });
  std::atomic<bool> then_ran{false};
  Future<int> skipped = failed.then([&](int v) {
    then_ran = true;
    return v;
  });
  EXPECT_THROW(skipped.get(), InvalidArgument);
  EXPECT_FALSE(then_ran);
  Future<int> recovered = failed.catch_error([](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const InvalidArgument&) {
      return -1;
    }
  });
  EXPECT_EQ(recovered.get(), -1);
  EXPECT_EQ(f.catch_error([](std::exception_ptr) { return 0; }).get(), 20);
  // A continuation of a value future producing a heap reference.
  Future<Value> s = f.then([](int v) { return String::create(std::to_string(v)).value(); });
  EXPECT_EQ(cast<String>(s.get())->view(), "20");
  // void futures chain too.
  std::atomic<int> order{0};
  pool.submit([&] { order = 1; }).then([&] { order = order * 10 + 2; }).get();
  EXPECT_EQ(order.load(), 12);
}

TEST_F(ExecutorTest, PromiseAndReadyFuture) {
  Promise<int> p;
  Future<int> f = p.future();
  EXPECT_FALSE(f.is_ready());
  EXPECT_FALSE(f.wait_for(5ms));
  std::thread t([&] { p.set_value(7); });
  EXPECT_EQ(f.get(), 7);
  t.join();
  EXPECT_THROW(p.set_value(8), InvalidArgument);
  EXPECT_EQ(make_ready_future(3).get(), 3);
  Future<int> abandoned;
  { abandoned = Promise<int>().future(); }
  EXPECT_THROW(abandoned.get(), CancelledError);
}

// An empty future (default-constructed, moved from) refuses every call with
// InvalidArgument - it dereferenced a null state before.
TEST_F(ExecutorTest, AnEmptyFutureIsRefused) {
  Future<int> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW(empty.get(), InvalidArgument);
  EXPECT_THROW(empty.wait(), InvalidArgument);
  EXPECT_THROW((void)empty.wait_for(1ms), InvalidArgument);
  EXPECT_THROW((void)empty.is_ready(), InvalidArgument);
  EXPECT_THROW((void)empty.error(), InvalidArgument);
  EXPECT_THROW((void)empty.then([](int v) { return v; }), InvalidArgument);
  EXPECT_THROW((void)empty.catch_error([](std::exception_ptr) { return 0; }), InvalidArgument);
  Future<int> full = make_ready_future(1);
  Future<int> taken = std::move(full);
  EXPECT_THROW(full.get(), InvalidArgument);  // NOLINT(bugprone-use-after-move): the point
  EXPECT_EQ(taken.get(), 1);
}

// Waiting on a pool worker for work of a serial executor (or an actor) that runs on that
// pool: the serial executor's drain is queued behind the waiting worker, so the worker
// helps the pool run it (it hung on a 1-thread pool). Over a serial executor that cannot
// help, the wait is a DeadlockError instead.
TEST_F(ExecutorTest, WaitingOnAWorkerForASerialExecutorOnThatPoolHelps) {
  ThreadPool pool(heap(), 1);
  SerialExecutor serial(pool);
  EXPECT_EQ(pool.submit([&] { return serial.submit([] { return 1; }).get(); }).get(), 1);
  EXPECT_EQ(pool.submit([&] {
              TaskGroup<int> g(serial);
              g.spawn([] { return 2; });
              g.spawn([] { return 3; });
              const std::vector<int> r = g.wait();
              return r[0] + r[1];
            }).get(),
            5);
  EXPECT_EQ(pool.submit([&] { return serial.submit([] { return 4; }).then([](int v) { return v + 1; }).get(); }).get(),
            5);
  SerialExecutor outer(static_cast<Executor&>(serial));  // serial on serial on the pool
  EXPECT_EQ(pool.submit([&] { return outer.submit([] { return 6; }).get(); }).get(), 6);
  // From a task of `serial` itself, waiting for `outer` (whose drain is queued on
  // `serial`, behind this task): nobody can run it.
  EXPECT_THROW(serial.submit([&] { return outer.submit([] { return 7; }).get(); }).get(), DeadlockError);
  serial.shutdown();
  outer.shutdown();
}

// A move-only result goes to one get() only, also when copies of the future race for it
// (two threads could both move it out: two holders of one LockTicket); the others throw.
TEST_F(ExecutorTest, AMoveOnlyResultGoesToOneGetOnly) {
  for (int round = 0; round < 200; ++round) {
    Promise<std::unique_ptr<int>> p;
    Future<std::unique_ptr<int>> f = p.future();
    p.set_value(std::make_unique<int>(round));
    std::atomic<int> got{0}, refused{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t)
      readers.emplace_back([&, copy = f] {
        try {
          std::unique_ptr<int> v = copy.get();
          if (v && *v == round) got.fetch_add(1);
        } catch (const InvalidArgument&) {
          refused.fetch_add(1);
        }
      });
    run_native([&] {
      for (auto& r : readers) r.join();
    });
    ASSERT_EQ(got.load(), 1) << "round " << round;
    ASSERT_EQ(refused.load(), 1);
  }
}

// Waiting inside run_native on the only worker of the pool that must run the future's
// serial executor: a DeadlockError (the wait ran the queued drain in the native state,
// where its allocations failed).
TEST_F(ExecutorTest, AWaitInsideRunNativeThatWouldHaveToHelpIsADeadlockError) {
  ThreadPool pool(heap(), 1);
  SerialExecutor serial(pool);
  Future<std::string> outer = pool.submit([&] {
    Future<int64_t> f = serial.submit([] {
      Ref<GrowableList> l = GrowableList::create();
      l->add(String::create("x").value());
      return static_cast<int64_t>(l->length());
    });
    std::string outcome = "no error";
    try {
      run_native([&] { f.wait(); });
    } catch (const DeadlockError&) {
      outcome = "DeadlockError";
    }
    return outcome + ", then " + std::to_string(f.get());  // outside run_native: helps
  });
  EXPECT_EQ(outer.get(), "DeadlockError, then 1");
}

TEST_F(ExecutorTest, MovedPromisesKeepTheirState) {
  Promise<int> p;
  Future<int> old = p.future();
  p = Promise<int>();  // the old promise is abandoned, the new one is fresh
  EXPECT_THROW(old.get(), CancelledError);
  Future<int> f = p.future();
  p.set_value(3);
  EXPECT_EQ(f.get(), 3);
  Promise<int> moved(std::move(p));
  EXPECT_THROW(moved.set_value(4), InvalidArgument);  // already fulfilled, also after a move
}

TEST_F(ExecutorTest, SerialExecutorShutDownFromItsTargetsOnlyThreadHelps) {
  ThreadPool pool(heap(), 1);
  auto serial = std::make_unique<SerialExecutor>(pool);
  std::atomic<int> ran{0};
  // From the pool's only worker: the serial executor's drain is queued behind this task;
  // shutdown must run it (help) instead of waiting for itself.
  pool.submit([&] {
        for (int i = 0; i < 10; ++i) serial->execute([&] { ran++; });
        serial->shutdown();
      })
      .get();
  EXPECT_EQ(ran.load(), 10);
}

TEST_F(ExecutorTest, HelpedTasksDoNotInheritTheWaitersLocks) {
  ThreadPool pool(heap(), 1);
  Persistent<Lock> lock(heap(), Lock::create());
  // The only worker holds the lock and waits for a group; while waiting it runs the
  // children itself. A child must see the lock as held by someone else (try_acquire
  // false), not as its own (a LockError), and must not be able to release it.
  auto outcome = pool.submit([&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    Ref<Lock> l = lock.get();
    l->acquire();
    TaskGroup<int> g(pool);
    g.spawn([](Ref<Lock> inner) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
      if (inner->try_acquire()) return 1;  // wrong: it is held
      try {
        inner->release();
        return 2;  // wrong: released another task's lock
      } catch (const LockError&) {
        return 0;
      }
    }, l);
    const int r = g.wait()[0];
    EXPECT_TRUE(l->is_held_by_current_thread());
    l->release();
    return r;
  });
  EXPECT_EQ(outcome.get(), 0);
}

TEST_F(ExecutorTest, BlockingGetOnTheExecutorsOwnThreadIsADeadlockError) {
  ThreadPool pool(heap(), 1);
  Promise<int> never(&pool);
  Future<int> pending = never.future();
  Future<bool> refused = pool.submit([pending] {
    try {
      pending.get();
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  EXPECT_TRUE(refused.get());
  // A ready future is fine to read anywhere.
  Future<int> ready = pool.submit([] { return 5; });
  EXPECT_EQ(ready.get(), 5);
  EXPECT_EQ(pool.submit([ready] { return ready.get(); }).get(), 5);
  never.set_value(1);
}

TEST_F(ExecutorTest, IdleAndBlockedWorkersDoNotHoldUpCollections) {
  ThreadPool pool(heap(), 3);
  Promise<void> gate;
  Future<void> opened = gate.future();
  // One worker blocked in a future wait, two idle.
  Future<void> blocked = pool.submit([opened] { opened.get(); });
  std::this_thread::sleep_for(20ms);
  auto done = std::async(std::launch::async, [&] {
    MutatorScope attach(heap());
    heap().collect();
    heap().start_collection();
    heap().wait_for_collection();
  });
  std::future_status status;
  run_native([&] { status = done.wait_for(60s); });
  ASSERT_EQ(status, std::future_status::ready);
  gate.set_value();
  blocked.get();
}

TEST_F(ExecutorTest, ShutdownRunsQueuedTasks) {
  std::atomic<int> ran{0};
  std::vector<Future<void>> fs;
  {
    ThreadPool pool(heap(), 1);
    for (int i = 0; i < 50; ++i) fs.push_back(pool.submit([&] {
      std::this_thread::sleep_for(100us);
      ran++;
    }));
    pool.shutdown();
    EXPECT_THROW(pool.submit([] {}), ExecutorShutdownError);
  }
  EXPECT_EQ(ran.load(), 50);
  for (auto& f : fs) f.get();
}

TEST_F(ExecutorTest, ShutdownNowDropsQueuedTasksAndCancelsRunningOnes) {
  ThreadPool pool(heap(), 1);
  std::atomic<bool> started{false};
  Future<int> running = pool.submit([&] {
    started = true;
    while (!is_cancelled()) std::this_thread::sleep_for(100us);
    check_cancelled();  // throws
    return 0;
  });
  std::vector<Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit([] { return 1; }));
  while (!started) std::this_thread::sleep_for(1ms);
  pool.shutdown_now();
  EXPECT_THROW(running.get(), CancelledError);
  for (auto& f : queued) EXPECT_THROW(f.get(), CancelledError);
}

TEST_F(ExecutorTest, CancellationWakesATaskBlockedOnAFuture) {
  ThreadPool pool(heap(), 2);
  Promise<int> never;
  Future<int> pending = never.future();
  std::atomic<bool> waiting{false};
  Future<int> blocked = pool.submit([&, pending] {
    waiting = true;
    return pending.get();  // no executor of its own: a plain blocking wait
  });
  while (!waiting) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(10ms);
  pool.shutdown_now();  // cancels the pool's token: the wait ends
  EXPECT_THROW(blocked.get(), CancelledError);
}

TEST_F(ExecutorTest, ShutdownFromOwnTaskIsADeadlockError) {
  ThreadPool pool(heap(), 1);
  EXPECT_TRUE(pool.submit([&] {
                    try {
                      pool.shutdown();
                    } catch (const DeadlockError&) {
                      return true;
                    }
                    return false;
                  })
                  .get());
}

TEST_F(ExecutorTest, TasksThatThrowThroughExecuteAreCounted) {
  ThreadPool pool(heap(), 1);
  pool.execute([] { throw InvalidArgument("x"); });
  pool.submit([] {}).get();  // FIFO: the throwing task ran first
  EXPECT_EQ(pool.uncaught_task_errors(), 1u);
}

TEST_F(ExecutorTest, SerialExecutorRunsInOrderWithoutOverlap) {
  ThreadPool pool(heap(), 4);
  SerialExecutor serial(pool);
  // A plain vector, no lock: the serial executor must order and exclude.
  std::vector<int> seen;
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::vector<Future<void>> fs;
  for (int i = 0; i < 500; ++i)
    fs.push_back(serial.submit([&, i] {
      if (inside.fetch_add(1) != 0) overlapped = true;
      EXPECT_TRUE(serial.is_current());
      seen.push_back(i);
      inside.fetch_sub(1);
    }));
  for (auto& f : fs) f.get();
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(seen.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_FALSE(serial.is_current());
  // get() on a future of the serial executor from its own task: DeadlockError.
  Promise<int> never(&serial);
  Future<int> pending = never.future();
  EXPECT_THROW(serial.submit([pending] { return pending.get(); }).get(), DeadlockError);
  never.set_value(0);
}

TEST_F(ExecutorTest, SerialExecutorShutdownWithWorkInFlight) {
  ThreadPool pool(heap(), 2);
  std::atomic<int> ran{0};
  {
    SerialExecutor serial(pool);
    for (int i = 0; i < 200; ++i) serial.execute([&] { ran++; });
  }  // destructor: waits for all of them
  EXPECT_EQ(ran.load(), 200);
  SerialExecutor dropped(pool);
  Promise<void> gate;
  Future<void> opened = gate.future();
  std::atomic<bool> started{false};
  Future<void> first = dropped.submit([&, opened] {
    started = true;
    opened.wait();
  });
  std::vector<Future<int>> rest;
  for (int i = 0; i < 5; ++i) rest.push_back(dropped.submit([] { return 1; }));
  while (!started) std::this_thread::sleep_for(1ms);
  std::thread opener([&] {
    std::this_thread::sleep_for(20ms);
    gate.set_value();
  });
  dropped.shutdown_now();  // the running one is cancelled (its wait ends)
  opener.join();
  EXPECT_THROW(first.get(), CancelledError);
  for (auto& f : rest) EXPECT_THROW(f.get(), CancelledError);
  EXPECT_THROW(dropped.submit([] {}), ExecutorShutdownError);
}

TEST_F(ExecutorTest, SerialExecutorOnAPoolThatShutsDownDropsItsQueue) {
  auto pool = std::make_unique<ThreadPool>(heap(), 1);
  SerialExecutor serial(*pool);
  Promise<void> gate;
  Future<void> opened = gate.future();
  Future<void> blocker = pool->submit([opened] { opened.wait(); });
  Future<int> queued = serial.submit([] { return 1; });  // its drain task waits behind the blocker
  std::thread opener([&] {
    std::this_thread::sleep_for(20ms);
    gate.set_value();
  });
  pool->shutdown_now();
  opener.join();
  EXPECT_THROW(queued.get(), CancelledError);
  EXPECT_THROW(serial.submit([] { return 2; }), ExecutorShutdownError);
}

TEST_F(ExecutorTest, CancellationTokens) {
  CancellationToken root;
  CancellationToken child = root.child();
  CancellationToken grandchild = child.child();
  EXPECT_FALSE(grandchild.is_cancelled());
  child.cancel();
  EXPECT_FALSE(root.is_cancelled());
  EXPECT_TRUE(child.is_cancelled());
  EXPECT_TRUE(grandchild.is_cancelled());
  EXPECT_TRUE(child.child().is_cancelled());  // born cancelled
  EXPECT_THROW(child.throw_if_cancelled(), CancelledError);
  EXPECT_NO_THROW(root.throw_if_cancelled());
  EXPECT_FALSE(is_cancelled());
  {
    CancellationScope scope(grandchild);
    EXPECT_TRUE(is_cancelled());
    EXPECT_THROW(check_cancelled(), CancelledError);
    EXPECT_TRUE(CancellationToken::current() == grandchild);
  }
  EXPECT_FALSE(is_cancelled());
  // Many short-lived children do not accumulate.
  for (int i = 0; i < 10000; ++i) (void)root.child();
  root.cancel();
}

// then() chains as long as the program likes: completing (or abandoning) the first
// future hands each continuation on to the next without nesting a frame per link (it
// used to recurse through every link and overflow the stack).
TEST_F(ExecutorTest, ContinuationChainsDeeperThanTheStack) {
  constexpr int kLinks = 100000;
  {
    Promise<int64_t> p;  // no executor: continuations run inline
    Future<int64_t> f = p.future();
    for (int i = 0; i < kLinks; ++i) f = f.then([](int64_t v) { return v + 1; });
    p.set_value(0);
    EXPECT_EQ(f.get(), kLinks);
  }
  Future<int64_t> abandoned;
  {
    Promise<int64_t> p;
    abandoned = p.future();
    for (int i = 0; i < kLinks; ++i) abandoned = abandoned.then([](int64_t v) { return v + 1; });
  }  // dropped unfulfilled
  EXPECT_THROW(abandoned.get(), CancelledError);
  // On an executor that has shut down, every continuation is refused and dropped: each
  // drop abandons the next link's promise.
  ThreadPool pool(heap(), 1);
  Promise<int64_t> p(&pool);
  Future<int64_t> f = p.future();
  for (int i = 0; i < kLinks; ++i) f = f.then([](int64_t v) { return v + 1; });
  pool.shutdown();
  p.set_value(0);
  EXPECT_THROW(f.get(), CancelledError);
}

// A serial executor whose pool shuts down (gracefully) while it still has work runs the
// rest of its queue on the worker that drains it, batch after batch. It used to nest a
// drain frame per batch of 64 when the pool refused the reschedule: a task that queues
// its successor 5,000,000 times overflowed the worker's stack.
TEST_F(ExecutorTest, ASerialExecutorFinishesItsQueueAfterItsPoolShutsDownInOneFrame) {
  ThreadPool pool(heap(), 1);
  SerialExecutor serial(pool);
  constexpr int64_t kTasks = 5'000'000;
  std::atomic<bool> go{false};
  std::atomic<int64_t> ran{0};
  std::function<void()> step = [&] {
    if (ran.fetch_add(1, std::memory_order_relaxed) + 1 < kTasks) serial.execute(step);
  };
  serial.execute([&] {
    while (!go.load()) std::this_thread::yield();
  });
  serial.execute(step);
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);  // (pool.shutdown() has refused new tasks by then)
    go = true;
  });
  pool.shutdown();  // lets the running drain finish - the whole chain
  opener.join();
  serial.shutdown();
  EXPECT_EQ(ran.load(), kTasks);
}

// A chain of serial executors, each running on the next (actors on one another's
// executors come to the same), longer than any stack would hold as recursion: scheduling
// a task at the top, draining it on the pool's worker, and abandoning the chain when the
// pool drops the bottom drain each went once through every link as recursion (the
// stack overflowed at ~75,000, ~65,000 and ~20,000 links).
TEST_F(ExecutorTest, SerialExecutorChainsDeeperThanTheStack) {
  constexpr int kLinks = 200000;
  ThreadPool pool(heap(), 1);
  std::vector<std::unique_ptr<SerialExecutor>> chain;
  auto build = [&] {
    chain.push_back(std::make_unique<SerialExecutor>(pool));
    while (chain.size() < kLinks) chain.push_back(std::make_unique<SerialExecutor>(static_cast<Executor&>(*chain.back())));
  };
  auto tear_down = [&] {
    while (!chain.empty()) chain.pop_back();  // the top first: each waits for its own queue
  };
  build();
  EXPECT_EQ(chain.back()->submit([] { return 7; }).get(), 7);
  // Work queued at many links at once: each executor still runs its own tasks in order,
  // one at a time, and every one of them runs.
  std::vector<int> order(kLinks, 0);
  std::vector<Future<void>> done;
  for (int round = 0; round < 3; ++round)
    for (int i = kLinks - 1; i >= 0; i -= 997)
      done.push_back(chain[i]->submit([&order, i, round] {
        EXPECT_EQ(order[i], round);
        order[i] = round + 1;
      }));
  for (Future<void>& f : done) f.get();
  for (int i = kLinks - 1; i >= 0; i -= 997) EXPECT_EQ(order[i], 3);
  tear_down();
  // The pool's worker is busy while a task's drains are queued through every link; the
  // pool's shutdown_now drops the bottom one, and every link above is abandoned.
  std::atomic<bool> blocking{false};
  pool.execute([&blocking] {
    blocking = true;
    while (!is_cancelled()) std::this_thread::sleep_for(1ms);
  });
  while (!blocking) std::this_thread::yield();
  build();
  Future<int> f = chain.back()->submit([] { return 1; });
  pool.shutdown_now();
  EXPECT_THROW(f.get(), CancelledError);
  EXPECT_THROW(chain.back()->execute([] {}), ExecutorShutdownError);
  tear_down();
}

// A chain of child tokens deeper than any stack would hold as recursion: cancelling its
// root reaches the last (it used to recurse once per level and overflow the stack).
TEST_F(ExecutorTest, CancellingADeepTokenChain) {
  std::vector<CancellationToken> chain;
  chain.emplace_back();
  for (int i = 0; i < 300000; ++i) chain.push_back(chain.back().child());
  EXPECT_FALSE(chain.back().is_cancelled());
  chain.front().cancel();
  EXPECT_TRUE(chain.back().is_cancelled());
  EXPECT_TRUE(chain[150000].is_cancelled());
}

TEST_F(ExecutorTest, ManyThreadsSubmitWhileCollectionsRun) {
  make_heap([] {
    HeapOptions o;
    o.min_gc_trigger = 512 << 10;
    o.verify_after_gc = true;
    return o;
  }());
  ThreadPool pool(heap(), 3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 3; ++t)
    submitters.emplace_back([&, t] {
      MutatorScope attach(heap());
      std::vector<Future<int64_t>> fs;
      for (int i = 0; i < 300; ++i) {
        Ref<Node> l = make_list(5);
        fs.push_back(pool.submit(
            [](Ref<Node> n, int64_t tag) {
              make_list(2);
              return tag + static_cast<int64_t>(list_length_checked(n));
            },
            l, int64_t{t * 1000 + i}));
      }
      for (auto& f : fs) total += f.get();
    });
  run_native([&] {
    for (auto& s : submitters) s.join();
  });
  int64_t expected = 0;
  for (int t = 0; t < 3; ++t)
    for (int i = 0; i < 300; ++i) expected += t * 1000 + i + 5;
  EXPECT_EQ(total.load(), expected);
}

#if defined(__linux__)
// A pool's workers carry its name and their index, a long name shortened to fit the
// 15 characters Linux keeps.
TEST_F(ExecutorTest, WorkerThreadsAreNamedAfterThePool) {
  ThreadPool short_name(heap(), 2, "loader");
  ThreadPool long_name(heap(), 1, "a-very-long-pool-name");
  const std::set<std::string> seen = thread_names();
  EXPECT_EQ(seen.count("loader-0"), 1u);
  EXPECT_EQ(seen.count("loader-1"), 1u);
  EXPECT_EQ(seen.count("a-very-long-p-0"), 1u);
}
#endif

}  // namespace
}  // namespace shoal::test
