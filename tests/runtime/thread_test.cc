// shoal::Thread (include/shoal/thread.h) and structured concurrency with TaskGroup
// (include/shoal/task_group.h): rooted start arguments, join rethrowing, cancellation of
// a blocked join, self-join, groups returning every result or the first error, a
// failing child cancelling its siblings, a cancelled parent cancelling nested groups,
// fork-join recursion on a small pool (helping instead of deadlocking), and the
// DeadlockError of a group awaited inside its own serial executor.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

class ThreadTest : public VerifiedHeapTest {};

TEST_F(ThreadTest, StartRootsItsArgumentsUntilTheThreadHasThem) {
  make_heap([] {
    HeapOptions o;
    o.gc_torture_interval = 2;
    o.verify_after_gc = true;
    return o;
  }());
  std::atomic<size_t> length{0};
  std::vector<Thread> threads;
  for (int i = 0; i < 4; ++i) {
    in_own_frame([&] {
      threads.push_back(Thread::start(
          heap(),
          [&](Ref<Node> list, Value tag) {
            make_list(50);
            length += list_length_checked(list);
            EXPECT_EQ(cast<String>(tag)->view(), "tag");
          },
          make_list(10), String::create("tag").value()));
    });
    clobber_stack();
    heap().collect();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(length.load(), 40u);
}

TEST_F(ThreadTest, JoinRethrowsAndIsGcSafe) {
  Thread t = Thread::start(heap(), [] {
    std::this_thread::sleep_for(20ms);
    throw RangeError("from the thread");
  });
  heap().collect();  // the new thread is attached: a real pause including it
  EXPECT_THROW(t.join(), RangeError);
  EXPECT_FALSE(t.joinable());
  EXPECT_THROW(t.join(), InvalidArgument);
}

TEST_F(ThreadTest, StartInEntersTheIsolate) {
  scope_.reset();
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  std::atomic<uint32_t> seen{0};
  EXPECT_EQ(Thread::current().heap, nullptr);
  EXPECT_EQ(Thread::current().id, std::this_thread::get_id());
  Thread t = Thread::start_in(a, [&] {
    EXPECT_EQ(Thread::current().isolate, &a);
    EXPECT_EQ(Thread::current().heap, &a.group().heap());
    seen = current_isolate()->id();
    EXPECT_EQ(make_list(1).object()->owner(), a.id());
  });
  t.join();
  EXPECT_EQ(seen.load(), a.id());
}

TEST_F(ThreadTest, CancelEndsWaitsInsideTheThreadAndAJoinerCanBeCancelled) {
  Persistent<Lock> lock(heap(), Lock::create());
  lock.get()->acquire();
  Thread t = Thread::start(heap(), [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    lock.get()->acquire();  // blocks until cancelled (never returns holding it)
  });
  std::this_thread::sleep_for(20ms);
  t.cancel();
  EXPECT_THROW(t.join(), CancelledError);
  lock.get()->release();
  // A joiner whose own token is cancelled stops waiting.
  Promise<void> gate;
  Future<void> opened = gate.future();
  Thread slow = Thread::start(heap(), [opened] {
    CancellationScope no_cancel(CancellationToken{});  // this wait is not cancellable by the parent
    opened.wait();
  });
  CancellationToken mine;
  mine.cancel();
  {
    CancellationScope scope(mine);
    EXPECT_THROW(slow.join(), CancelledError);
  }
  EXPECT_TRUE(slow.joinable());
  gate.set_value();
  slow.join();
}

TEST_F(ThreadTest, ThreadCannotJoinItself) {
  std::atomic<bool> refused{false};
  Thread* self = nullptr;
  std::atomic<bool> ready{false};
  Thread t = Thread::start(heap(), [&] {
    while (!ready) std::this_thread::yield();
    try {
      self->join();
    } catch (const DeadlockError&) {
      refused = true;
    }
  });
  self = &t;
  ready = true;
  t.join();
  EXPECT_TRUE(refused);
}

// A moved-from Thread has no token: cancelling it does nothing (it crashed), as
// std::jthread::request_stop on a moved-from thread; the moved-to thread is untouched.
TEST_F(ThreadTest, CancellingAMovedFromThreadDoesNothing) {
  Promise<void> gate;
  Future<void> opened = gate.future();
  Thread a = Thread::start(heap(), [opened] { opened.get(); });
  Thread b = std::move(a);
  a.cancel();  // NOLINT(bugprone-use-after-move): the point
  EXPECT_FALSE(a.token().is_cancelled());
  EXPECT_FALSE(b.token().is_cancelled());
  gate.set_value();
  b.join();
}

class TaskGroupTest : public VerifiedHeapTest {};

TEST_F(TaskGroupTest, ReturnsEveryResultInSpawnOrder) {
  ThreadPool pool(heap(), 3);
  TaskGroup<int64_t> group(pool);
  for (int i = 0; i < 50; ++i)
    group.spawn([](Ref<Node> l, int i) { return static_cast<int64_t>(list_length_checked(l)) * 100 + i; }, make_list(3), i);
  std::vector<int64_t> r = group.wait();
  ASSERT_EQ(r.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(r[i], 300 + i);
}

// Heap results come back as persistent handles: a std::vector of raw references is not
// scanned, and the next collection freed what it held (poisoned, then reused).
[[gnu::noinline]] std::vector<PersistentValue> spawn_arrays(ThreadPool& pool, int n) {
  TaskGroup<Value> group(pool);
  for (int i = 0; i < n; ++i)
    group.spawn([](int64_t k) {
      Ref<RefArray> a = RefArray::create(8);
      a->set(0, Value::from_int(k));
      return a.value();
    }, static_cast<int64_t>(i));
  return group.wait();
}
[[gnu::noinline]] std::vector<Persistent<Node>> spawn_nodes(ThreadPool& pool, int n) {
  TaskGroup<Ref<Node>> group(pool);
  for (int i = 0; i < n; ++i)
    group.spawn([](int64_t k) {
      Ref<Node> node = make<Node>();
      node->value = k;
      return node;
    }, static_cast<int64_t>(i));
  group.spawn([] { return Ref<Node>(); });  // (an empty result stays empty)
  return group.wait();
}

TEST_F(TaskGroupTest, HeapResultsAreRootedUntilTheCallerDropsThem) {
  ThreadPool pool(heap(), 2);
  constexpr int kChildren = 16;
  std::vector<PersistentValue> arrays = spawn_arrays(pool, kChildren);
  std::vector<Persistent<Node>> nodes = spawn_nodes(pool, kChildren);
  clobber_stack();
  heap().collect();
  for (int i = 0; i < 2000; ++i) RefArray::create(8)->set(0, Value::from_int(-7));  // reuse freed cells
  ASSERT_EQ(arrays.size(), size_t{kChildren});
  ASSERT_EQ(nodes.size(), size_t{kChildren} + 1);
  for (int i = 0; i < kChildren; ++i) {
    Ref<RefArray> a = try_cast<RefArray>(arrays[static_cast<size_t>(i)].get());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->get(0).as_int(), i);
    EXPECT_EQ(nodes[static_cast<size_t>(i)].get()->value, i);
  }
  EXPECT_FALSE(nodes.back());
  expect_heap_ok();
}

// A worker waiting for its group inside an isolate helps by running queued tasks - each
// in a pool task's own context, outside isolates (it ran inside the waiter's isolate,
// reading its isolated globals and stamping its objects with the waiter's owner), and
// free to enter the waiter's isolate itself, which the waiter gives up meanwhile.
TEST(TaskGroupIsolationTest, AHelpedTaskRunsOutsideTheWaitersIsolate) {
  IsolateGroup group;
  Isolate& iso = group.create_isolate("waiter");
  IsolatedGlobal secret(group, "secret", [] { return Value::from_int(99); });
  ThreadPool pool(group.heap(), 1);  // the waiter is the only worker: the child is helped
  const int64_t seen = pool.submit([&] {
                            IsolateScope in(iso);
                            TaskGroup<int64_t> children(pool);
                            children.spawn([&] {
                              EXPECT_EQ(current_isolate(), nullptr);
                              EXPECT_THROW(secret.get(), ThreadStateError);  // outside isolates
                              IsolateScope also(iso);  // free: the waiter gave it up
                              return secret.get().as_int();
                            });
                            const int64_t r = children.wait()[0];
                            EXPECT_EQ(current_isolate(), &iso);  // the waiter has it back
                            return r;
                          }).get();
  EXPECT_EQ(seen, 99);
}

TEST_F(TaskGroupTest, AFailingChildCancelsItsSiblings) {
  ThreadPool pool(heap(), 3);
  std::atomic<int> cancelled_siblings{0};
  TaskGroup<int> group(pool);
  Persistent<Lock> lock(heap(), Lock::create());
  lock.get()->acquire();  // siblings block on it until cancelled
  for (int i = 0; i < 2; ++i)
    group.spawn([&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
      try {
        lock.get()->acquire();
      } catch (const CancelledError&) {
        cancelled_siblings++;
        throw;
      }
      return 0;
    });
  group.spawn([]() -> int {
    std::this_thread::sleep_for(20ms);
    throw InvalidArgument("first failure");
  });
  EXPECT_THROW(group.wait(), InvalidArgument);  // the first error, not the CancelledErrors
  EXPECT_EQ(cancelled_siblings.load(), 2);
  lock.get()->release();
}

TEST_F(TaskGroupTest, CancellingTheParentCancelsNestedGroups) {
  ThreadPool pool(heap(), 4);
  std::atomic<int> started{0};
  CancellationToken parent;
  Thread outer = Thread::start(heap(), [&] {
    TaskGroup<void> group(pool);  // a child of the thread's token
    for (int i = 0; i < 3; ++i)
      group.spawn([&] {
        TaskGroup<void> inner(pool);  // nested: a grandchild token
        inner.spawn([&] {
          started++;
          while (true) {
            check_cancelled();
            std::this_thread::sleep_for(200us);
          }
        });
        inner.wait();
      });
    group.wait();
  });
  while (started < 3) std::this_thread::sleep_for(1ms);
  outer.cancel();
  EXPECT_THROW(outer.join(), CancelledError);
}

// The same shape, with the interleaving that starved the pool made deterministic by
// sleeps (found hanging in a CI run, where a loaded machine did the sleeping): each outer
// task's inner task is taken by an idle worker before the outer task waits, so its
// worker finds the queue empty and waits; the next outer task is queued only after two
// workers wait and two spin. A waiting worker must come back to the queue, or the third
// outer task never runs.
TEST_F(TaskGroupTest, AWorkerWaitingForItsGroupStillRunsTasksQueuedAfterItWaited) {
  ThreadPool pool(heap(), 4);
  std::atomic<int> started{0};
  Thread outer = Thread::start(heap(), [&] {
    TaskGroup<void> group(pool);
    for (int i = 0; i < 3; ++i) {
      group.spawn([&] {
        TaskGroup<void> inner(pool);
        inner.spawn([&] {
          started++;
          while (true) {
            check_cancelled();
            std::this_thread::sleep_for(200us);
          }
        });
        std::this_thread::sleep_for(5ms);  // an idle worker takes the inner task
        inner.wait();
      });
      std::this_thread::sleep_for(20ms);  // queued after the workers have settled
    }
    group.wait();
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (started < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(started.load(), 3) << "the pool starved: the third outer task never ran";
  outer.cancel();
  EXPECT_THROW(outer.join(), CancelledError);
}

// fib(n) by nested task groups on `pool`, each level waiting for its two children.
int64_t fib_by_groups(ThreadPool& pool, int n) {
  if (n < 2) return n;
  TaskGroup<int64_t> g(pool);
  g.spawn([&pool](int k) { return fib_by_groups(pool, k); }, n - 1);
  g.spawn([&pool](int k) { return fib_by_groups(pool, k); }, n - 2);
  auto r = g.wait();
  return r[0] + r[1];
}

TEST_F(TaskGroupTest, ForkJoinRecursionOnASmallPoolHelpsInsteadOfDeadlocking) {
  ThreadPool pool(heap(), 2);
  EXPECT_EQ(pool.submit([&pool] { return fib_by_groups(pool, 15); }).get(), 610);
}

// A waiting worker runs its own group's children first (newest first) and nests other
// queued tasks only a few deep: the stack follows the program's recursion. It used to
// run the oldest queued task of the pool, whatever it was, on top of every waiter - the
// fork-join tree walked breadth-first with each level on the stack: fib(21) on two
// workers (~35,000 tasks) overflowed a worker's stack, as did 10,000 children each
// waiting for a child of its own on one worker.
TEST_F(TaskGroupTest, ForkJoinTreesLargerThanAStackCouldNest) {
  ThreadPool pool(heap(), 2);
  EXPECT_EQ(pool.submit([&pool] { return fib_by_groups(pool, 23); }).get(), 28657);
  ThreadPool one(heap(), 1);
  auto wide = [&] {
    TaskGroup<int> outer(one);
    for (int i = 0; i < 10000; ++i)
      outer.spawn([&one, i] {
        TaskGroup<int> inner(one);
        inner.spawn([i] { return i; });
        return inner.wait()[0];
      });
    int64_t sum = 0;
    for (int v : outer.wait()) sum += v;
    return sum;
  };
  EXPECT_EQ(one.submit(wide).get(), int64_t{10000} * 9999 / 2);
}

TEST_F(TaskGroupTest, GroupOverItsOwnSerialExecutorIsADeadlockError) {
  ThreadPool pool(heap(), 2);
  SerialExecutor serial(pool);
  EXPECT_THROW(serial.submit([&] { TaskGroup<void> g(serial); }).get(), DeadlockError);
  // From outside it is fine.
  TaskGroup<int> g(serial);
  g.spawn([] { return 1; });
  g.spawn([] { return 2; });
  EXPECT_EQ(g.wait(), (std::vector<int>{1, 2}));
}

TEST_F(TaskGroupTest, DestructorCancelsAndWaitsForUnfinishedChildren) {
  ThreadPool pool(heap(), 2);
  std::atomic<int> finished{0};
  {
    TaskGroup<void> group(pool);
    for (int i = 0; i < 4; ++i)
      group.spawn([&] {
        while (!is_cancelled()) std::this_thread::sleep_for(200us);
        finished++;
      });
  }  // not waited: cancelled, then joined
  EXPECT_EQ(finished.load(), 4);
}

}  // namespace
}  // namespace shoal::test
