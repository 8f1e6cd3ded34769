// shoal_collections_stress: every pair of operations of every builtin collection, raced
// without a lock by 2-8 threads on one instance while the collector marks concurrently
// and sweeps lazily (or stops the world, or collects at every safepoint: --stw,
// --torture), with the race-safety invariant checked on every read:
//
//   a read returns a value that was stored at that position at some point - here: an
//   element object of the stress class whose tag matches where it was stored - or
//   throws RangeError / ConcurrentModificationError; never null (no element is ever
//   null), never a non-element, never a torn number.
//
// Elements are fresh Node objects whose `value` is kTag | (position or key << 8), so a
// read can check both that it got a live element (class, tag; a reference into freed
// memory would show another class or garbage, and ASan/TSan builds catch the access)
// and, for operation pairs that do not move elements, that the element belongs where
// it was read. Collections:
//   list:   get, set, add, add_all, insert, remove_last, remove_at, clear, iterate
//   map:    get, set (new keys), set (existing keys), remove, clear, iterate - with
//           small-integer keys and string keys
//   typed:  Int64List get/set of self-checking words (high half == low half), Int32List
//           atomic fetch_add and compare_and_swap counters, through a view
//   atomic: AtomicInt64 counter, a Treiber stack on an AtomicRef (push/pop by CAS),
//           RefArray element exchange
// After each pair the heap is verified and the collection checked whole. Exits non-zero
// on any violation.
//
// Usage: shoal_collections_stress [--seconds S] [--threads T] [--only list|map|typed|atomic]
//                                 [--torture K] [--stw] [--verify-each-cycle] [--seed X]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "shoal/shoal.h"

namespace {

using shoal::Value;

struct Node {
  shoal::Member<Node> left, right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "stress.Element";
};

constexpr int64_t kTag = 0xA5;
std::atomic<long> g_failures{0};

#define STRESS_CHECK(cond, ...)                                                       \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      if (g_failures.fetch_add(1) < 20) {                                             \
        std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
        std::fprintf(stderr, __VA_ARGS__);                                            \
        std::fprintf(stderr, "\n");                                                   \
      }                                                                               \
    }                                                                                 \
  } while (0)

struct Rng {
  uint64_t x;
  uint64_t next() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

struct Options {
  double seconds = 4;
  int threads = 4;
  std::string only;
  uint32_t torture = 0;
  bool stw = false;
  bool verify = false;
  uint64_t seed = 1;
};

Value element(int64_t where) {
  shoal::Ref<Node> n = shoal::make<Node>();
  n->value = kTag | (where << 8);
  return n.value();
}

// The invariant on one read. `where` < 0: the position is not checked (pairs that move
// elements). `at_most`: the position is at most `where` (a remove_last whose length
// reading may be stale by the time it runs).
void check_element(Value v, int64_t where, const char* op, bool at_most = false) {
  shoal::Ref<Node> n = shoal::try_cast<Node>(v);
  STRESS_CHECK(n, "%s returned a non-element (raw %#llx)", op, static_cast<unsigned long long>(v.raw()));
  if (!n) return;
  STRESS_CHECK((n->value & 0xff) == kTag, "%s returned an element with a bad tag %lld", op,
               static_cast<long long>(n->value));
  if (where >= 0)
    STRESS_CHECK(at_most ? (n->value >> 8) <= where : (n->value >> 8) == where, "%s at %lld returned the element of %lld", op, static_cast<long long>(where),
                 static_cast<long long>(n->value >> 8));
}

struct Counts {
  std::atomic<uint64_t> ops{0}, reads{0}, range_errors{0}, cme{0};
};

// Runs one operation under the allowed errors; anything else is a failure.
template <class F>
void guarded(Counts& c, const char* op, F&& f) {
  try {
    f();
  } catch (const shoal::RangeError&) {
    c.range_errors.fetch_add(1, std::memory_order_relaxed);
  } catch (const shoal::ConcurrentModificationError&) {
    c.cme.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    STRESS_CHECK(false, "%s threw %s", op, e.what());
  }
  c.ops.fetch_add(1, std::memory_order_relaxed);
}

using Op = std::function<void(Rng&, Counts&)>;

// Runs threads alternating between op a and op b on one instance for `ms`.
void race(shoal::Heap& heap, int threads, double ms, const Op& a, const Op& b, Counts& c, uint64_t seed) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      shoal::MutatorScope attach(heap);
      Rng rng{seed * 7919 + static_cast<uint64_t>(t) * 104729 + 1};
      const Op& op = (t % 2 == 0) ? a : b;
      while (!stop.load(std::memory_order_relaxed)) {
        op(rng, c);
        shoal::safepoint();  // readers allocate nothing: let pauses in
      }
    });
  shoal::run_native([&] {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    stop = true;
    for (auto& th : ts) th.join();
  });
}

struct Suite {
  std::string name;
  std::vector<std::pair<std::string, Op>> ops;
  std::vector<std::string> moving;  // ops that move elements between positions
  std::function<void()> reset;      // a fresh instance before each pair
  std::function<void()> check;      // after each pair
};

constexpr size_t kListTarget = 48;

Suite list_suite(shoal::Heap& heap, shoal::Persistent<shoal::GrowableList>& list, bool& positional) {
  Suite s;
  s.name = "list";
  auto L = [&list] { return list.get(); };
  // Appending ops append only below twice the target length (removals bring it down).
  auto grow_if_short = [L](Rng& rng) {
    (void)rng;
    return L()->length() < 2 * kListTarget;
  };
  s.ops = {
      {"get",
       [L, &positional](Rng& rng, Counts& c) {
         guarded(c, "get", [&] {
           const size_t len = L()->length();
           const size_t i = rng.below(len + 2);
           Value v = L()->get(i);
           c.reads.fetch_add(1, std::memory_order_relaxed);
           check_element(v, positional ? static_cast<int64_t>(i) : -1, "get");
         });
       }},
      {"set",
       [L, &positional](Rng& rng, Counts& c) {
         guarded(c, "set", [&] {
           const size_t i = rng.below(L()->length() + 1);
           Value e = element(positional ? static_cast<int64_t>(i) : 0);
           L()->set(i, e);
         });
       }},
      {"add",
       [L, grow_if_short](Rng& rng, Counts& c) {
         guarded(c, "add", [&] {
           if (!grow_if_short(rng)) return;
           Value e = element(static_cast<int64_t>(L()->length()));
           L()->add(e);  // positional tag may be stale under racing writers: see below
         });
       }},
      {"add_all",
       [L, grow_if_short](Rng& rng, Counts& c) {
         guarded(c, "add_all", [&] {
           if (!grow_if_short(rng)) return;
           const int64_t at = static_cast<int64_t>(L()->length());
           Value a = element(at), b = element(at + 1);
           L()->add_all({a, b});
         });
       }},
      {"insert",
       [L, grow_if_short](Rng& rng, Counts& c) {
         guarded(c, "insert", [&] {
           if (!grow_if_short(rng)) return;
           Value e = element(0);
           L()->insert(rng.below(L()->length() + 1), e);
         });
       }},
      {"remove_last",
       [L, &positional](Rng& rng, Counts& c) {
         guarded(c, "remove_last", [&] {
           (void)rng;
           const size_t len = L()->length();
           Value v = L()->remove_last();
           c.reads.fetch_add(1, std::memory_order_relaxed);
           check_element(v, positional && len > 0 ? static_cast<int64_t>(len - 1) : -1, "remove_last", true);
         });
       }},
      {"remove_at",
       [L](Rng& rng, Counts& c) {
         guarded(c, "remove_at", [&] {
           Value v = L()->remove_at(rng.below(L()->length() + 1));
           c.reads.fetch_add(1, std::memory_order_relaxed);
           check_element(v, -1, "remove_at");
         });
       }},
      {"clear",
       [L](Rng& rng, Counts& c) {
         guarded(c, "clear", [&] {
           if (rng.below(16) == 0) L()->clear();
           else (void)L()->length();
         });
       }},
      {"iterate",
       [L, &positional](Rng&, Counts& c) {
         guarded(c, "iterate", [&] {
           int64_t i = 0;
           for (Value v : *L()) {
             c.reads.fetch_add(1, std::memory_order_relaxed);
             check_element(v, positional ? i : -1, "iteration");
             ++i;
           }
         });
       }},
  };
  // Positions are checked only when neither op moves elements (insert, remove_at,
  // clear-and-refill) or appends (racing appenders may store an element tagged with a
  // length another one took: the element is still checked, its position is not).
  s.moving = {"insert", "remove_at", "clear", "add", "add_all"};
  s.reset = [&heap, &list] {
    (void)heap;
    shoal::Ref<shoal::GrowableList> l = shoal::GrowableList::create();
    for (size_t i = 0; i < kListTarget; ++i) l->add(element(static_cast<int64_t>(i)));
    list.set(l);
  };
  s.check = [&list] {
    size_t i = 0, holes = 0;
    shoal::Ref<shoal::GrowableList> l = list.get();
    for (; i < l->length(); ++i) {
      try {
        check_element(l->get(i), -1, "final get");
      } catch (const shoal::ConcurrentModificationError&) {
        ++holes;  // racing writers may leave one (objects/growable_list.cc)
      }
    }
    (void)holes;
  };
  return s;
}

Suite map_suite(shoal::Persistent<shoal::Map>& map) {
  Suite s;
  s.name = "map";
  constexpr int64_t kKeys = 64;
  auto M = [&map] { return map.get(); };
  // Half the keys are small integers, half strings (compared by content).
  auto key = [](int64_t k) {
    if (k % 2 == 0) return Value::from_int(k);
    return shoal::String::create("key-" + std::to_string(k)).value();
  };
  auto key_number = [](Value k) -> int64_t {
    if (k.is_int()) return k.as_int();
    auto str = shoal::try_cast<shoal::String>(k);
    if (!str || str->view().substr(0, 4) != "key-") return -1;
    return std::atoll(std::string(str->view().substr(4)).c_str());
  };
  s.ops = {
      {"get",
       [M, key](Rng& rng, Counts& c) {
         guarded(c, "map get", [&] {
           const int64_t k = static_cast<int64_t>(rng.below(kKeys));
           std::optional<Value> v = M()->get(key(k));
           c.reads.fetch_add(1, std::memory_order_relaxed);
           if (v) check_element(*v, k, "map get");
         });
       }},
      {"set_new",
       [M, key](Rng& rng, Counts& c) {
         guarded(c, "map set", [&] {
           const int64_t k = static_cast<int64_t>(rng.below(kKeys));
           Value kv = key(k);
           Value e = element(k);
           M()->set(kv, e);
         });
       }},
      {"set_existing",
       [M, key](Rng& rng, Counts& c) {
         guarded(c, "map replace", [&] {
           const int64_t k = static_cast<int64_t>(rng.below(kKeys / 2));  // kept present
           Value kv = key(k);
           Value e = element(k);
           M()->set(kv, e);
         });
       }},
      {"remove",
       [M, key](Rng& rng, Counts& c) {
         guarded(c, "map remove", [&] {
           const int64_t k = kKeys / 2 + static_cast<int64_t>(rng.below(kKeys / 2));
           std::optional<Value> v = M()->remove(key(k));
           c.reads.fetch_add(1, std::memory_order_relaxed);
           if (v) check_element(*v, k, "map remove");
         });
       }},
      {"clear",
       [M](Rng& rng, Counts& c) {
         guarded(c, "map clear", [&] {
           if (rng.below(32) == 0) M()->clear();
           else (void)M()->size();
         });
       }},
      {"iterate",
       [M, key_number](Rng&, Counts& c) {
         guarded(c, "map iterate", [&] {
           M()->for_each([&](Value k, Value v) {
             c.reads.fetch_add(1, std::memory_order_relaxed);
             check_element(v, key_number(k), "map iteration");
           });
         });
       }},
  };
  s.reset = [&map, key] {
    shoal::Ref<shoal::Map> m = shoal::Map::create();
    for (int64_t k = 0; k < kKeys; ++k) m->set(key(k), element(k));
    map.set(m);
  };
  s.check = [&map, key_number] {
    map.get()->for_each([&](Value k, Value v) { check_element(v, key_number(k), "final map"); });
  };
  return s;
}

Suite typed_suite(shoal::Persistent<shoal::Int64List>& words, shoal::Persistent<shoal::Int32List>& counters,
                  std::atomic<int64_t>& expected_adds) {
  Suite s;
  s.name = "typed";
  constexpr size_t kWords = 32;
  auto W = [&words] { return words.get(); };
  s.ops = {
      {"get",
       [W](Rng& rng, Counts& c) {
         guarded(c, "typed get", [&] {
           const uint64_t w = static_cast<uint64_t>(W()->get(rng.below(kWords + 1)));
           c.reads.fetch_add(1, std::memory_order_relaxed);
           STRESS_CHECK((w >> 32) == (w & 0xffffffff), "torn word %#llx", static_cast<unsigned long long>(w));
         });
       }},
      {"set",
       [W](Rng& rng, Counts& c) {
         guarded(c, "typed set", [&] {
           const uint64_t half = rng.next() & 0xffffffff;
           W()->set(rng.below(kWords + 1), static_cast<int64_t>(half << 32 | half));
         });
       }},
      {"fetch_add",
       [&counters, &expected_adds](Rng& rng, Counts& c) {
         guarded(c, "fetch_add", [&] {
           // Through a view over the counters' buffer.
           auto view = shoal::Int32List::view(counters.get()->buffer(), 0, 4);
           view->fetch_add(rng.below(4), 1);
           expected_adds.fetch_add(1, std::memory_order_relaxed);
         });
       }},
      {"cas",
       [&counters, &expected_adds](Rng& rng, Counts& c) {
         guarded(c, "compare_and_swap", [&] {
           const size_t i = rng.below(4);
           int32_t seen = counters.get()->load(i);
           while (counters.get()->compare_and_swap(i, seen, seen + 1) != seen) seen = counters.get()->load(i);
           expected_adds.fetch_add(1, std::memory_order_relaxed);
         });
       }},
  };
  s.reset = [&words, &counters, &expected_adds] {
    words.set(shoal::Int64List::create(kWords));
    counters.set(shoal::Int32List::create(4));
    expected_adds = 0;
  };
  s.check = [&counters, &expected_adds] {
    int64_t sum = 0;
    for (size_t i = 0; i < 4; ++i) sum += counters.get()->get(i);
    STRESS_CHECK(sum == expected_adds.load(), "counters %lld, expected %lld", static_cast<long long>(sum),
                 static_cast<long long>(expected_adds.load()));
  };
  return s;
}

Suite atomic_suite(shoal::Persistent<shoal::AtomicRef>& stack, shoal::Persistent<shoal::AtomicInt64>& pushed,
                   shoal::Persistent<shoal::AtomicInt64>& popped, shoal::Persistent<shoal::RefArray>& slots) {
  Suite s;
  s.name = "atomic";
  // A Treiber stack of Nodes (left = next) on an AtomicRef: node values stay tagged.
  s.ops = {
      {"push",
       [&](Rng&, Counts& c) {
         guarded(c, "push", [&] {
           Value e = element(0);
           shoal::Ref<Node> n = shoal::Ref<Node>::from_value(e);
           Value top = stack.get()->load();
           for (;;) {
             n.set(&Node::left, shoal::Ref<Node>::from_value(top));
             Value witness = stack.get()->compare_and_swap(top, e);
             if (witness == top) break;
             top = witness;
           }
           pushed.get()->fetch_add(1);
         });
       }},
      {"pop",
       [&](Rng&, Counts& c) {
         guarded(c, "pop", [&] {
           Value top = stack.get()->load();
           while (top.is_object()) {
             check_element(top, 0, "stack top");
             Value next = shoal::Ref<Node>::from_value(top)->left.value();
             Value witness = stack.get()->compare_and_swap(top, next);
             if (witness == top) {
               popped.get()->fetch_add(1);
               c.reads.fetch_add(1, std::memory_order_relaxed);
               return;
             }
             top = witness;
           }
         });
       }},
      {"exchange",
       [&](Rng& rng, Counts& c) {
         guarded(c, "exchange", [&] {
           Value e = element(0);
           Value old = slots.get()->exchange(rng.below(8), e);
           c.reads.fetch_add(1, std::memory_order_relaxed);
           check_element(old, 0, "exchange");
         });
       }},
  };
  s.reset = [&] {
    stack.set(shoal::AtomicRef::create());
    pushed.set(shoal::AtomicInt64::create());
    popped.set(shoal::AtomicInt64::create());
    shoal::Ref<shoal::RefArray> a = shoal::RefArray::create(8);
    for (size_t i = 0; i < 8; ++i) a->set(i, element(0));
    slots.set(a);
  };
  s.check = [&] {
    int64_t depth = 0;
    for (Value v = stack.get()->load(); v.is_object(); v = shoal::Ref<Node>::from_value(v)->left.value()) {
      check_element(v, 0, "stack walk");
      ++depth;
    }
    STRESS_CHECK(depth == pushed.get()->load() - popped.get()->load(), "stack depth %lld, pushed %lld, popped %lld",
                 static_cast<long long>(depth), static_cast<long long>(pushed.get()->load()),
                 static_cast<long long>(popped.get()->load()));
  };
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? argv[++i] : "0"; };
    if (!std::strcmp(argv[i], "--seconds")) opt.seconds = std::atof(next());
    else if (!std::strcmp(argv[i], "--threads")) opt.threads = std::atoi(next());
    else if (!std::strcmp(argv[i], "--only")) opt.only = next();
    else if (!std::strcmp(argv[i], "--torture")) opt.torture = static_cast<uint32_t>(std::atoi(next()));
    else if (!std::strcmp(argv[i], "--seed")) opt.seed = std::strtoull(next(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--stw")) opt.stw = true;
    else if (!std::strcmp(argv[i], "--verify-each-cycle")) opt.verify = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (opt.threads < 2) opt.threads = 2;
  shoal::HeapOptions ho;
  ho.concurrent_marking = !opt.stw;
  ho.min_gc_trigger = 1 << 20;  // small: cycles all the time
  ho.gc_torture_interval = opt.torture;
  ho.verify_after_gc = opt.verify;
  shoal::Heap heap(ho);
  shoal::MutatorScope attach(heap);

  shoal::Persistent<shoal::GrowableList> list(heap, shoal::GrowableList::create());
  shoal::Persistent<shoal::Map> map(heap, shoal::Map::create());
  shoal::Persistent<shoal::Int64List> words(heap, shoal::Int64List::create(1));
  shoal::Persistent<shoal::Int32List> counters(heap, shoal::Int32List::create(4));
  shoal::Persistent<shoal::AtomicRef> stack(heap, shoal::AtomicRef::create());
  shoal::Persistent<shoal::AtomicInt64> pushed(heap, shoal::AtomicInt64::create());
  shoal::Persistent<shoal::AtomicInt64> popped(heap, shoal::AtomicInt64::create());
  shoal::Persistent<shoal::RefArray> slots(heap, shoal::RefArray::create(8));
  std::atomic<int64_t> expected_adds{0};
  bool positional = false;

  std::vector<Suite> suites;
  suites.push_back(list_suite(heap, list, positional));
  suites.push_back(map_suite(map));
  suites.push_back(typed_suite(words, counters, expected_adds));
  suites.push_back(atomic_suite(stack, pushed, popped, slots));

  size_t pairs = 0;
  for (const Suite& s : suites)
    if (opt.only.empty() || opt.only == s.name) pairs += s.ops.size() * (s.ops.size() + 1) / 2;
  const double ms_per_pair = opt.seconds * 1000.0 / static_cast<double>(pairs == 0 ? 1 : pairs);
  const uint64_t cycles_before = heap.stats().collections;
  uint64_t round = 0;
  for (Suite& s : suites) {
    if (!opt.only.empty() && opt.only != s.name) continue;
    Counts c;
    for (size_t i = 0; i < s.ops.size(); ++i)
      for (size_t j = i; j < s.ops.size(); ++j) {
        auto moves = [&](const std::string& op) {
          for (const std::string& m : s.moving)
            if (m == op) return true;
          return false;
        };
        positional = !moves(s.ops[i].first) && !moves(s.ops[j].first);
        s.reset();
        // 2..threads threads, varying by pair.
        const int threads = 2 + static_cast<int>((i + j) % static_cast<size_t>(opt.threads - 1));
        race(heap, threads, ms_per_pair, s.ops[i].second, s.ops[j].second, c, opt.seed + ++round);
        s.check();
        shoal::VerifyReport r = heap.verify();
        STRESS_CHECK(r.ok, "heap verification after %s: %s / %s: %s", s.name.c_str(), s.ops[i].first.c_str(),
                     s.ops[j].first.c_str(), r.summary().c_str());
      }
    std::printf("%-7s %2zu ops, %3zu pairs: %10llu ops, %10llu checked reads, %8llu RangeError, %6llu "
                "ConcurrentModificationError\n",
                s.name.c_str(), s.ops.size(), s.ops.size() * (s.ops.size() + 1) / 2,
                static_cast<unsigned long long>(c.ops.load()), static_cast<unsigned long long>(c.reads.load()),
                static_cast<unsigned long long>(c.range_errors.load()), static_cast<unsigned long long>(c.cme.load()));
  }
  std::printf("collections during the run: %llu (%s%s)\n",
              static_cast<unsigned long long>(heap.stats().collections - cycles_before),
              opt.stw ? "stop-the-world" : "concurrent marking, lazy sweeping",
              opt.torture ? ", torture" : "");
  if (g_failures.load() != 0) {
    std::fprintf(stderr, "FAILED: %ld violations\n", g_failures.load());
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
