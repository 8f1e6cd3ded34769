// shoal_collections_bench: the race-safe builtins against their C++ peers, per operation
// (google-benchmark; the "ns/op" counter is the time per single operation).
//
// list/* (elements: pointers to pre-allocated objects; Shoal: Values of heap Nodes)
//   add/<peer>/N      append N elements to a fresh container (growth included), drop it
//   get_seq/<peer>    read every element of a 1024-element container in order
//   get_random/<peer> read 1024 elements at precomputed random indexes
//   remove_last/<peer> 1024 appends then 1024 remove_last on a warmed container (no growth)
//   shared_get_set_2_threads/<peer>: 90 % reads, 10 % element writes at random indexes
//                     of one 1024-element container - GrowableList needs no lock for it;
//                     std::vector takes a std::mutex per operation; tbb::concurrent_vector
//                     holds std::atomic elements
//   shared_add_2_threads/<peer>: each thread appends 64K per iteration to one container
//                     (emptied between iterations, untimed) - appends race, so the GrowableList takes a
//                     mutex like std::vector (acquired by try_lock + safepoint polls: a
//                     thread blocked in the running state would hold up a collection
//                     started by the lock holder's growth; issue 10's Lock does this
//                     properly); tbb::concurrent_vector's push_back is lock-free
// map/* (keys: small integers; values: pointers / Nodes)
//   insert/<peer>     1024 new keys into a fresh map
//   lookup/<peer>     1024 lookups of present keys at random in a 1024-key map (Shoal:
//                     get_or; shoal_std_optional: the same through get(), which returns
//                     std::optional<Value>)
//   lookup_string/<peer> the same with 16-byte string keys (Shoal: String objects compared
//                     by content; std: std::string)
// atomic/*
//   fetch_add/<peer>, fetch_add_2_threads/<peer>: one counter, AtomicInt64 vs
//                     std::atomic<int64_t>
// The 2-thread rows run two threads of their own per iteration (see run_two_threads).
//   cas/<peer>        compare-and-swap loop installing a new reference: AtomicRef vs
//                     std::atomic<void*> (no barrier, nothing marked)
//   element_fetch_add/<peer> Int64List::fetch_add vs std::atomic<int64_t>[] at random indexes
//
// Usage: shoal_collections_bench [google-benchmark flags]; docs/performance.md has the
// command line and the results.
#include <atomic>
#include <chrono>
#include <thread>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>
#include <oneapi/tbb/concurrent_hash_map.h>
#include <oneapi/tbb/concurrent_vector.h>

#include "shoal/shoal.h"

namespace {

constexpr size_t kN = 1024;

struct Node {
  shoal::Member<Node> left, right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "CollectionsBenchNode";
};

struct CNode {
  int64_t value = 0;
};

struct World {
  shoal::Heap heap;
  std::unique_ptr<shoal::MutatorScope> main_attach = std::make_unique<shoal::MutatorScope>(heap);
  shoal::Persistent<shoal::RefArray> nodes{heap, shoal::RefArray::create(kN)};
  std::vector<std::unique_ptr<CNode>> cnodes;
  std::vector<uint32_t> random_index;
  shoal::Persistent<shoal::GrowableList> shared_list{heap, shoal::GrowableList::create()};
  std::vector<CNode*> shared_vector;
  std::mutex shared_mu;
  tbb::concurrent_vector<std::atomic<CNode*>> shared_tbb;
  shoal::Persistent<shoal::GrowableList> shared_add_list{heap, shoal::GrowableList::create()};
  std::vector<CNode*> shared_add_vector;  // the peers' shared containers
  tbb::concurrent_vector<CNode*> shared_add_tbb;
  shoal::Persistent<shoal::AtomicInt64> counter{heap, shoal::AtomicInt64::create()};
  std::atomic<int64_t> std_counter{0};

  World() {
    std::mt19937 rng(42);
    for (size_t i = 0; i < kN; ++i) {
      shoal::Ref<Node> n = shoal::make<Node>();
      n->value = static_cast<int64_t>(i);
      nodes.get()->set(i, n.value());
      cnodes.push_back(std::make_unique<CNode>(CNode{static_cast<int64_t>(i)}));
      random_index.push_back(static_cast<uint32_t>(rng() % kN));
    }
    for (size_t i = 0; i < kN; ++i) {
      shared_list.get()->add(nodes.get()->get(i));
      shared_vector.push_back(cnodes[i].get());
      shared_tbb.emplace_back(cnodes[i].get());
    }
  }
};
World& world() {
  static World* w = new World();
  return *w;
}

void per_op(benchmark::State& state, size_t ops_per_iteration) {
  state.counters["ns/op"] = benchmark::Counter(static_cast<double>(ops_per_iteration),
                                               benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
}

// The 2-thread rows run their own two threads per benchmark iteration (manual time:
// from the moment both are released to the moment both are done; thread start-up is
// outside it). Not google-benchmark's Threads(2): its threads wait for each other in
// the running state, where a collection started by the other thread (a growth
// allocates) would wait for them forever. Each thread runs `body(thread_index)`; the
// main thread waits GC-safe.
template <class Body>
double run_two_threads(Body body) {
  World& w = world();
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<int64_t> t0_ns{0}, t1_ns{0};
  auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  auto thread = [&](int index) {
    shoal::MutatorScope attach(w.heap);
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) shoal::safepoint();
    body(index);
    const int64_t t = now_ns();
    int64_t seen = t1_ns.load();
    while (t > seen && !t1_ns.compare_exchange_weak(seen, t)) {
    }
  };
  double seconds = 0;
  shoal::run_native([&] {
    std::thread a(thread, 0), b(thread, 1);
    while (ready.load() < 2) std::this_thread::yield();
    t0_ns = now_ns();
    go.store(true, std::memory_order_release);
    a.join();
    b.join();
    seconds = static_cast<double>(t1_ns.load() - t0_ns.load()) * 1e-9;
  });
  return seconds;
}

// Attaches benchmark threads other than the main one (the main thread stays attached).
struct Attach {
  std::optional<shoal::MutatorScope> scope;
  explicit Attach(World& w) {
    if (!shoal::current_heap()) scope.emplace(w.heap);
  }
};

// --- list ---

void BM_ListAdd_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    shoal::Ref<shoal::GrowableList> l = shoal::GrowableList::create();
    for (size_t i = 0; i < n; ++i) l->add(nodes->get(i % kN));
    benchmark::DoNotOptimize(l.object());
  }
  per_op(state, n);
}

void BM_ListAdd_Vector(benchmark::State& state) {
  World& w = world();
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<CNode*> v;
    for (size_t i = 0; i < n; ++i) v.push_back(w.cnodes[i % kN].get());
    benchmark::DoNotOptimize(v.data());
  }
  per_op(state, n);
}

template <bool kRandom>
void BM_ListGet_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::GrowableList> l = w.shared_list.get();
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += l->get(kRandom ? idx[i] : i).raw();
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

template <bool kRandom>
void BM_ListGet_Vector(benchmark::State& state) {
  World& w = world();
  const std::vector<CNode*>& v = w.shared_vector;
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += reinterpret_cast<uintptr_t>(v[kRandom ? idx[i] : i]);
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

void BM_ListRemoveLast_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  shoal::Ref<shoal::GrowableList> l = shoal::GrowableList::create(kN);
  for (auto _ : state) {
    for (size_t i = 0; i < kN; ++i) l->add(nodes->get(i));
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += l->remove_last().raw();
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, 2 * kN);
}

void BM_ListRemoveLast_Vector(benchmark::State& state) {
  World& w = world();
  std::vector<CNode*> v;
  v.reserve(kN);
  for (auto _ : state) {
    for (size_t i = 0; i < kN; ++i) v.push_back(w.cnodes[i].get());
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) {
      sum += reinterpret_cast<uintptr_t>(v.back());
      v.pop_back();
    }
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, 2 * kN);
}

constexpr size_t kRounds = 64;  // each thread's operations per 2-thread iteration: kRounds * kN

// 2 threads: 90 % get, 10 % set at random indexes of one 1024-element container.
template <int kPeer>  // 0 GrowableList (no lock), 1 vector + mutex, 2 tbb::concurrent_vector
void BM_ListSharedGetSet(benchmark::State& state) {
  World& w = world();
  uint64_t sink = 0;
  for (auto _ : state) {
    state.SetIterationTime(run_two_threads([&](int thread) {
      shoal::Ref<shoal::GrowableList> l = w.shared_list.get();
      shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
      const uint32_t* idx = w.random_index.data();
      const size_t offset = static_cast<size_t>(thread) * 97;
      uint64_t sum = 0;
      for (size_t r = 0; r < kRounds; ++r)
        for (size_t i = 0; i < kN; ++i) {
          const size_t k = idx[(i + offset + r) % kN];
          const bool write = (i % 10) == 0;
          if constexpr (kPeer == 0) {
            if (write) l->set(k, nodes->get(k));
            else sum += l->get(k).raw();
          } else if constexpr (kPeer == 1) {
            std::lock_guard<std::mutex> lock(w.shared_mu);
            if (write) w.shared_vector[k] = w.cnodes[k].get();
            else sum += reinterpret_cast<uintptr_t>(w.shared_vector[k]);
          } else {
            if (write) w.shared_tbb[k].store(w.cnodes[k].get(), std::memory_order_release);
            else sum += reinterpret_cast<uintptr_t>(w.shared_tbb[k].load(std::memory_order_acquire));
          }
        }
      benchmark::DoNotOptimize(sum);
    }));
  }
  benchmark::DoNotOptimize(sink);
  per_op(state, 2 * kRounds * kN);
}

// 2 threads appending to one container; each appends kRounds * kN per iteration, and
// the container is emptied (untimed) between iterations.
template <int kPeer>  // 0 GrowableList + mutex, 1 vector + mutex, 2 tbb::concurrent_vector
void BM_ListSharedAdd(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    state.SetIterationTime(run_two_threads([&](int) {
      shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
      for (size_t r = 0; r < kRounds; ++r)
        for (size_t i = 0; i < kN; ++i) {
          if constexpr (kPeer == 0) {
            // A waiter must not block in the running state (a growth inside the lock
            // may start a collection that waits for it): spin with safepoint polls.
            shoal::Value v = nodes->get(i);
            while (!w.shared_mu.try_lock()) shoal::safepoint();
            w.shared_add_list.get()->add(v);
            w.shared_mu.unlock();
          } else if constexpr (kPeer == 1) {
            std::lock_guard<std::mutex> lock(w.shared_mu);
            w.shared_add_vector.push_back(w.cnodes[i].get());
          } else {
            w.shared_add_tbb.push_back(w.cnodes[i].get());
          }
        }
    }));
    if constexpr (kPeer == 0) w.shared_add_list.set(shoal::GrowableList::create());
    else if constexpr (kPeer == 1) std::vector<CNode*>().swap(w.shared_add_vector);
    else w.shared_add_tbb.clear();
  }
  per_op(state, 2 * kRounds * kN);
}

// --- map ---

void BM_MapInsert_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  for (auto _ : state) {
    shoal::Ref<shoal::Map> m = shoal::Map::create();
    for (size_t i = 0; i < kN; ++i) m->set(shoal::Value::from_int(static_cast<int64_t>(i * 7)), nodes->get(i));
    benchmark::DoNotOptimize(m.object());
  }
  per_op(state, kN);
}

void BM_MapInsert_Std(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    std::unordered_map<int64_t, CNode*> m;
    for (size_t i = 0; i < kN; ++i) m.emplace(static_cast<int64_t>(i * 7), w.cnodes[i].get());
    benchmark::DoNotOptimize(&m);
  }
  per_op(state, kN);
}

void BM_MapInsert_Tbb(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    tbb::concurrent_hash_map<int64_t, CNode*> m;
    for (size_t i = 0; i < kN; ++i) m.insert({static_cast<int64_t>(i * 7), w.cnodes[i].get()});
    benchmark::DoNotOptimize(&m);
  }
  per_op(state, kN);
}

template <bool kOptional>
void BM_MapLookup_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  shoal::Ref<shoal::Map> m = shoal::Map::create();
  for (size_t i = 0; i < kN; ++i) m->set(shoal::Value::from_int(static_cast<int64_t>(i * 7)), nodes->get(i));
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) {
      const shoal::Value key = shoal::Value::from_int(idx[i] * 7);
      if constexpr (kOptional) sum += m->get(key)->raw();
      else sum += m->get_or(key, shoal::Value::null()).raw();
    }
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

void BM_MapLookup_Std(benchmark::State& state) {
  World& w = world();
  std::unordered_map<int64_t, CNode*> m;
  for (size_t i = 0; i < kN; ++i) m.emplace(static_cast<int64_t>(i * 7), w.cnodes[i].get());
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += reinterpret_cast<uintptr_t>(m.find(idx[i] * 7)->second);
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

void BM_MapLookup_Tbb(benchmark::State& state) {
  World& w = world();
  tbb::concurrent_hash_map<int64_t, CNode*> m;
  for (size_t i = 0; i < kN; ++i) m.insert({static_cast<int64_t>(i * 7), w.cnodes[i].get()});
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) {
      tbb::concurrent_hash_map<int64_t, CNode*>::const_accessor acc;
      m.find(acc, idx[i] * 7);
      sum += reinterpret_cast<uintptr_t>(acc->second);
    }
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

std::string key_text(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "identifier_%05zu", i);  // 16 bytes
  return buf;
}

void BM_MapLookupString_Shoal(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  shoal::Ref<shoal::Map> m = shoal::Map::create();
  shoal::Ref<shoal::RefArray> probes = shoal::RefArray::create(kN);  // distinct String objects
  for (size_t i = 0; i < kN; ++i) {
    m->set(shoal::String::create(key_text(i)).value(), nodes->get(i));
    probes->set(i, shoal::String::create(key_text(w.random_index[i])).value());
  }
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += m->get_or(probes->get(i), shoal::Value::null()).raw();
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

void BM_MapLookupString_Std(benchmark::State& state) {
  World& w = world();
  std::unordered_map<std::string, CNode*> m;
  std::vector<std::string> probes;
  for (size_t i = 0; i < kN; ++i) {
    m.emplace(key_text(i), w.cnodes[i].get());
    probes.push_back(key_text(w.random_index[i]));
  }
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += reinterpret_cast<uintptr_t>(m.find(probes[i])->second);
    benchmark::DoNotOptimize(sum);
  }
  per_op(state, kN);
}

// --- atomics ---

template <bool kShoal>
void BM_FetchAdd2(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    state.SetIterationTime(run_two_threads([&](int) {
      shoal::Ref<shoal::AtomicInt64> c = w.counter.get();
      for (size_t i = 0; i < kRounds * kN; ++i) {
        if constexpr (kShoal) c->fetch_add(1);
        else w.std_counter.fetch_add(1);
      }
    }));
  }
  per_op(state, 2 * kRounds * kN);
}

template <bool kShoal>
void BM_FetchAdd(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::AtomicInt64> c = w.counter.get();
  for (auto _ : state) {
    for (size_t i = 0; i < kN; ++i) {
      if constexpr (kShoal) c->fetch_add(1);
      else w.std_counter.fetch_add(1);
    }
  }
  per_op(state, kN);
}

template <bool kShoal>
void BM_Cas(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::AtomicRef> cell = shoal::AtomicRef::create();
  shoal::Ref<shoal::RefArray> nodes = w.nodes.get();
  std::atomic<void*> plain{nullptr};
  for (auto _ : state) {
    for (size_t i = 0; i < kN; ++i) {
      if constexpr (kShoal) {
        shoal::Value seen = cell->load();
        while (cell->compare_and_swap(seen, nodes->get(i)) != seen) seen = cell->load();
      } else {
        void* seen = plain.load();
        while (!plain.compare_exchange_weak(seen, w.cnodes[i].get())) {
        }
      }
    }
  }
  per_op(state, kN);
}

template <bool kShoal>
void BM_ElementFetchAdd(benchmark::State& state) {
  World& w = world();
  Attach a(w);
  shoal::Ref<shoal::Int64List> xs = shoal::Int64List::create(kN);
  std::unique_ptr<std::atomic<int64_t>[]> ys(new std::atomic<int64_t>[kN]());
  const uint32_t* idx = w.random_index.data();
  for (auto _ : state) {
    for (size_t i = 0; i < kN; ++i) {
      if constexpr (kShoal) xs->fetch_add(idx[i], 1);
      else ys[idx[i]].fetch_add(1);
    }
  }
  per_op(state, kN);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  (void)world();  // build the shared state on the main thread
  auto reg = [](const char* name, void (*fn)(benchmark::State&), int threads = 1) {
    auto* b = benchmark::RegisterBenchmark(name, fn);
    if (threads > 1) b->UseManualTime();  // run_two_threads times them
    return b;
  };
  for (int64_t n : {16, 256, 1024, 16384}) {
    reg("list/add/shoal", BM_ListAdd_Shoal)->Arg(n);
    reg("list/add/std_vector", BM_ListAdd_Vector)->Arg(n);
  }
  reg("list/get_seq/shoal", BM_ListGet_Shoal<false>);
  reg("list/get_seq/std_vector", BM_ListGet_Vector<false>);
  reg("list/get_random/shoal", BM_ListGet_Shoal<true>);
  reg("list/get_random/std_vector", BM_ListGet_Vector<true>);
  reg("list/remove_last/shoal", BM_ListRemoveLast_Shoal);
  reg("list/remove_last/std_vector", BM_ListRemoveLast_Vector);
  reg("list/shared_get_set_2_threads/shoal_no_lock", BM_ListSharedGetSet<0>, 2);
  reg("list/shared_get_set_2_threads/std_vector_mutex", BM_ListSharedGetSet<1>, 2);
  reg("list/shared_get_set_2_threads/tbb_concurrent_vector", BM_ListSharedGetSet<2>, 2);
  reg("list/shared_add_2_threads/shoal_mutex", BM_ListSharedAdd<0>, 2);
  reg("list/shared_add_2_threads/std_vector_mutex", BM_ListSharedAdd<1>, 2);
  reg("list/shared_add_2_threads/tbb_concurrent_vector", BM_ListSharedAdd<2>, 2);
  reg("map/insert/shoal", BM_MapInsert_Shoal);
  reg("map/insert/std_unordered_map", BM_MapInsert_Std);
  reg("map/insert/tbb_concurrent_hash_map", BM_MapInsert_Tbb);
  reg("map/lookup/shoal", BM_MapLookup_Shoal<false>);
  reg("map/lookup/shoal_std_optional", BM_MapLookup_Shoal<true>);
  reg("map/lookup/std_unordered_map", BM_MapLookup_Std);
  reg("map/lookup/tbb_concurrent_hash_map", BM_MapLookup_Tbb);
  reg("map/lookup_string/shoal", BM_MapLookupString_Shoal);
  reg("map/lookup_string/std_unordered_map", BM_MapLookupString_Std);
  reg("atomic/fetch_add/shoal", BM_FetchAdd<true>);
  reg("atomic/fetch_add/std_atomic", BM_FetchAdd<false>);
  reg("atomic/fetch_add_2_threads/shoal", BM_FetchAdd2<true>, 2);
  reg("atomic/fetch_add_2_threads/std_atomic", BM_FetchAdd2<false>, 2);
  reg("atomic/cas/shoal", BM_Cas<true>);
  reg("atomic/cas/std_atomic", BM_Cas<false>);
  reg("atomic/element_fetch_add/shoal", BM_ElementFetchAdd<true>);
  reg("atomic/element_fetch_add/std_atomic", BM_ElementFetchAdd<false>);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
