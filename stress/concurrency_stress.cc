// shoal_concurrency_stress: the concurrency library raced against itself while the
// collector runs (concurrent marking + lazy sweeping, or stop-the-world with the
// verifier after every cycle, or GC torture). T client threads, each attached, loop
// over random operations until the time is up:
//   lock      increment one of a few shared accounts (heap objects with a Lock field)
//             under its lock, sometimes through a pool task, sometimes try_acquire_for
//   submit    pool tasks with rooted heap arguments (fresh lists); the result is checked
//   group     a TaskGroup of 2-5 children, one of which may fail: wait() must return all
//             results or exactly that failure, and the failing group's blocked siblings
//             must end with CancelledError
//   cancel    a group whose children block on a held lock, cancelled from outside
//   actor     calls to a shared actor (counter state owned by its isolate), frozen
//             arguments, also a refused non-shareable argument
//   condition hand a value to a one-shot consumer task through a Condition
//   pool      a short-lived 1-2 thread pool shut down (or shut down now) with work queued
// At the end every counter must equal the number of increments that reported success,
// and the heap must verify. Any error other than the expected ones fails the run.
//
// Usage: shoal_concurrency_stress [--seconds S] [--threads T] [--torture K] [--stw]
//                                 [--verify-each-cycle] [--seed X] [--only OP (0-6)]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shoal/shoal.h"

namespace {

struct Account {
  shoal::Member<shoal::Lock> lock;
  int64_t balance SHOAL_GUARDED_BY(lock) = 0;
  static constexpr auto kRefs = shoal::refs(&Account::lock);
  static constexpr const char* kName = "stress.Account";
};

struct Node {
  shoal::Member<Node> next;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::next);
  static constexpr const char* kName = "stress.Node";
};

shoal::Ref<Node> make_list(int n) {
  shoal::Ref<Node> head;
  for (int i = 0; i < n; ++i) {
    shoal::Ref<Node> x = shoal::make<Node>();
    x->value = i;
    x.set(&Node::next, head);
    head = x;
  }
  return head;
}

int64_t sum_list(shoal::Ref<Node> n) {
  int64_t s = 0, expect = -1;
  for (; n; n = n->next.get()) {
    if (expect >= 0 && n->value != expect) return -1'000'000;
    expect = n->value - 1;
    s += n->value;
  }
  return s;
}

std::atomic<long> failures{0};
void fail(const std::string& what) {
  if (failures.fetch_add(1) < 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

constexpr int kAccounts = 4;

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int threads = 4;
  uint32_t torture = 0;
  bool stw = false, verify_each = false;
  uint64_t seed = 1;
  int only = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--torture") torture = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--stw") stw = true;
    else if (a == "--verify-each-cycle") verify_each = true;
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--only") only = std::stoi(next());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  shoal::IsolateGroupOptions go;
  go.heap.concurrent_marking = !stw;
  go.heap.verify_after_gc = verify_each;
  go.heap.gc_torture_interval = torture;
  go.heap.min_gc_trigger = 1 << 20;
  shoal::IsolateGroup group(go);
  shoal::Heap& heap = group.heap();

  std::vector<shoal::Persistent<Account>> accounts(kAccounts);
  std::atomic<int64_t> credited[kAccounts] = {};
  std::atomic<int64_t> actor_calls{0};
  {
    shoal::MutatorScope attach(heap);
    for (auto& a : accounts) {
      shoal::Ref<Account> acct = shoal::make<Account>();
      acct.set(&Account::lock, shoal::Lock::create());
      a = shoal::Persistent<Account>(heap, acct);
    }
  }
  shoal::ThreadPool pool(heap, 3, "stress");
  shoal::Actor actor(group, "counter", [] { return shoal::make<Node>().value(); }, &pool);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::atomic<long> ops{0};

  auto client = [&](int index) {
    shoal::MutatorScope attach(heap);
    std::mt19937_64 rng(seed * 7919 + index);
    while (std::chrono::steady_clock::now() < deadline) {
      const int op = only >= 0 ? only : static_cast<int>(rng() % 7);
      ops++;
      try {
        switch (op) {
          case 0: {  // lock
            const int k = static_cast<int>(rng() % kAccounts);
            shoal::Ref<Account> a = accounts[k].get();
            if (rng() % 3 == 0) {
              if (a->lock->try_acquire_for(std::chrono::microseconds(200))) {
                a->balance += 1;
                a->lock->release();
                credited[k]++;
              }
            } else if (rng() % 2 == 0) {
              pool.submit([&credited, k](shoal::Ref<Account> acct) {
                    shoal::LockHolder hold(*acct->lock);
                    make_list(3);
                    acct->balance += 1;
                    credited[k]++;
                  },
                  a)
                  .get();
            } else {
              shoal::LockHolder hold(*a->lock);
              make_list(2);
              a->balance += 1;
              credited[k]++;
            }
            break;
          }
          case 1: {  // submit
            const int n = 1 + static_cast<int>(rng() % 20);
            auto f = pool.submit([](shoal::Ref<Node> l) { return sum_list(l); }, make_list(n));
            if (f.get() != int64_t{n} * (n - 1) / 2) fail("pool task saw a broken list");
            break;
          }
          case 2: {  // group
            const int n = 2 + static_cast<int>(rng() % 4);
            const int failing = rng() % 2 ? static_cast<int>(rng() % n) : -1;
            shoal::TaskGroup<int64_t> g(pool);
            for (int c = 0; c < n; ++c)
              g.spawn([c, failing](shoal::Ref<Node> l) -> int64_t {
                if (c == failing) throw shoal::RangeError("planned");
                if (failing >= 0) {  // siblings of a failing child wait to be cancelled
                  for (int spin = 0; spin < 40; ++spin) {
                    shoal::check_cancelled();
                    std::this_thread::sleep_for(std::chrono::microseconds(50));
                  }
                }
                return sum_list(l);
              }, make_list(c + 1));
            try {
              auto r = g.wait();
              if (failing >= 0) fail("group with a failing child returned results");
              for (int c = 0; c < n; ++c)
                if (r[c] != int64_t{c + 1} * c / 2) fail("group result wrong");
            } catch (const shoal::RangeError&) {
              if (failing < 0) fail("unplanned RangeError");
            }
            break;
          }
          case 3: {  // cancel a group blocked on a lock
            shoal::Ref<shoal::Lock> gate = shoal::Lock::create();
            gate->acquire();
            {
              shoal::TaskGroup<void> g(pool);
              for (int c = 0; c < 2; ++c)
                g.spawn([](shoal::Ref<shoal::Lock> l) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
                  l->acquire();  // only a cancellation ends this
                  l->release();
                }, gate);
              std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
              g.cancel();
              try {
                g.wait();
                fail("a cancelled group blocked on a held lock completed");
              } catch (const shoal::CancelledError&) {
              }
            }
            gate->release();
            break;
          }
          case 4: {  // actor
            shoal::Ref<Node> frozen = shoal::freeze(make_list(3));
            auto f = actor.call([](shoal::Value state, shoal::Ref<Node> arg) {
              shoal::Ref<Node> s = shoal::cast<Node>(state);
              s->value += 1;
              return sum_list(arg);
            }, frozen);
            actor_calls++;
            if (f.get() != 3) fail("actor result wrong");
            if (rng() % 8 == 0) {
              shoal::IsolateScope in(group.create_isolate("c" + std::to_string(index) + "-" + std::to_string(rng() % 1000)));
              try {
                actor.call([](shoal::Value, shoal::Value) { return 0; }, make_list(1).value());
                fail("non-shareable actor argument accepted");
              } catch (const shoal::NotShareableError&) {
              }
            }
            break;
          }
          case 5: {  // condition hand-off
            shoal::Ref<shoal::Lock> l = shoal::Lock::create();
            shoal::Ref<shoal::Condition> c = shoal::Condition::create();
            shoal::Ref<shoal::AtomicRef> box = shoal::AtomicRef::create();
            auto consumer = pool.submit([](shoal::Ref<shoal::Lock> l, shoal::Ref<shoal::Condition> c,
                                           shoal::Ref<shoal::AtomicRef> box) {
              shoal::LockHolder hold(*l);
              c->wait(*l, [&] { return !box->load().is_null(); });
              return sum_list(shoal::cast<Node>(box->load()));
            }, l, c, box);
            {
              shoal::Ref<Node> v = make_list(4);
              shoal::LockHolder hold(*l);
              box->store(v.value());
              c->notify();
            }
            if (consumer.get() != 6) fail("condition hand-off lost the value");
            break;
          }
          case 6: {  // short-lived pool
            std::atomic<int> ran{0};
            std::vector<shoal::Future<int64_t>> fs;
            bool now = rng() % 2;
            {
              shoal::ThreadPool small(heap, 1 + static_cast<unsigned>(rng() % 2));
              for (int t = 0; t < 8; ++t)
                fs.push_back(small.submit([&ran](shoal::Ref<Node> l) {
                  ran++;
                  return sum_list(l);
                }, make_list(5)));
              if (now) small.shutdown_now();
              else small.shutdown();
            }
            int done = 0;
            for (auto& f : fs) {
              try {
                if (f.get() != 10) fail("short-lived pool result wrong");
                done++;
              } catch (const shoal::CancelledError&) {
                if (!now) fail("graceful shutdown dropped a task");
              }
            }
            if (done != ran.load()) fail("task ran count mismatch");
            break;
          }
        }
      } catch (const std::exception& e) {
        fail(std::string("unexpected exception in op ") + std::to_string(op) + ": " + e.what());
      }
    }
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) clients.emplace_back(client, t);
  for (auto& c : clients) c.join();

  {
    shoal::MutatorScope attach(heap);
    for (int k = 0; k < kAccounts; ++k) {
      shoal::Ref<Account> a = accounts[k].get();
      shoal::LockHolder hold(*a->lock);
      if (a->balance != credited[k].load()) fail("account " + std::to_string(k) + " lost increments");
    }
    const int64_t actor_total = actor.call([](shoal::Value state) { return shoal::cast<Node>(state)->value; }).get();
    if (actor_total != actor_calls.load()) fail("actor state lost calls");
    shoal::VerifyReport r = heap.verify();
    if (!r.ok) fail("heap verify: " + r.summary());
  }
  actor.shutdown();
  pool.shutdown();
  const auto stats = heap.stats();
  std::printf("concurrency_stress: %ld ops, %llu collections, %ld failures\n", ops.load(),
              static_cast<unsigned long long>(stats.collections), failures.load());
  {
    shoal::MutatorScope attach(heap);
    for (auto& a : accounts) a.reset();
  }
  return failures.load() == 0 ? 0 : 1;
}
