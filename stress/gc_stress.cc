// shoal_stress: randomized multi-threaded stress of the heap and collector.
//
// Workload (per thread, random mix, seeded):
//   - allocate nodes, reference arrays, byte arrays and strings of random sizes (large
//     objects included), each filled with a pattern derived from its size or id;
//   - link them into the thread's own root array and into random slots of other objects,
//     overwrite and drop references (garbage of every shape, cycles included);
//   - publish objects to a shared table and read other threads' publications;
//   - weak references both ways: WeakCells (weak slots inside the heap) and Ephemerons
//     (weak-map entries whose value points back at the key) stored in the graph, and
//     WeakRef handles held by the thread; read them and use what they return;
//   - register finalizers on cells; a finalizer thread (the main thread) runs them;
//   - handle boxes shared by every thread (Persistent + WeakRef per box): workers put
//     cells in and read them back while running, and move, copy, upgrade and clear
//     handles between boxes from inside run_native; the unattached main thread does the
//     same between its finalizer runs (the handle operations allowed off the running
//     state, docs/roots.md);
//   - detach from the heap and attach again mid-run (mid-cycle, too); block "in
//     native" for a while;
//   - call safepoint(), collect(), start_collection(), idle() and verify() now and then.
// Invariants checked continuously: every object reached from a root, a WeakCell or a
// WeakRef still holds its pattern (a freed-and-reused or corrupted object shows up as a
// wrong pattern); no finalizer runs twice or for a cell that is still reachable (its id
// is recorded as finalized; every walk checks the ids it meets); the heap verifier
// passes (it also checks that no weak slot points at freed memory). Any failure exits
// non-zero.
//
// Not a benchmark. Default run is short (CI); --seconds N for a soak.
//   shoal_stress [--seconds S | --minutes M] [--threads N] [--seed X] [--torture N]
//                [--heap-mb M] [--marker-threads N]
//                [--stw]                 (every collection stop-the-world; the default is
//                                         the heap's default: concurrent marking)
//                [--verify-each-cycle]   (run the heap verifier in every cycle's pause)
//                [--stacks-after-pause]  (no stack is scanned in an initial pause: each
//                                         thread's at its own safepoint, by handshake)
//                [--fixed-generations]   (HeapOptions::adaptive_generations off: the
//                                         pacer's cycles are young whatever their
//                                         survival, so young cycles run under every
//                                         workload; the run reports young and full
//                                         cycles either way)
//                [--soft-limit-mb M]     (HeapOptions::soft_heap_limit; the threads also
//                                         move it between M/2 and 2M now and then, and
//                                         call release_free_memory: the scavenger and
//                                         explicit releases race with the allocators)
//                [--quiet-ms N]          (HeapOptions::idle_full_cycle_after = N ms, and
//                                         every 20 N ms all threads go quiet for 10 N ms:
//                                         they walk and check their graphs, poll, sleep in
//                                         native code, detach and attach, but allocate next
//                                         to nothing, so the marker thread starts idle full
//                                         cycles under them; at least one must run,
//                                         unless --torture or --stw)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "shoal/shoal.h"

namespace {

struct Cell {
  shoal::Member<Cell> a, b;
  shoal::Slot any;
  int64_t id = 0;
  int64_t check = 0;  // == pattern(id)
  static constexpr auto kRefs = shoal::refs(&Cell::a, &Cell::b, &Cell::any);
  static constexpr const char* kName = "stress.Cell";
  static constexpr uint64_t kMagic = 0x5bd1e995;
  // (Unsigned arithmetic: ids carry the thread index in bit 40 and up.)
  static int64_t pattern(int64_t id) { return static_cast<int64_t>(~static_cast<uint64_t>(id) * kMagic); }
};

std::atomic<uint64_t> g_failures{0};
std::atomic<uint64_t> g_ops{0};

void fail(const char* what) {
  if (g_failures.fetch_add(1) < 10) std::fprintf(stderr, "shoal_stress: invariant broken: %s\n", what);
}

// Ids of cells whose finalizer has run: such a cell must never be reachable again.
std::mutex g_finalized_mu;
std::unordered_set<int64_t> g_finalized;
std::atomic<uint64_t> g_finalizers_registered{0}, g_finalizers_run{0};

void finalize_cell(int64_t id) {
  g_finalizers_run.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_finalized_mu);
  if (!g_finalized.insert(id).second) fail("a finalizer ran twice");
}

bool was_finalized(int64_t id) {
  std::lock_guard<std::mutex> lock(g_finalized_mu);
  return g_finalized.count(id) != 0;
}

std::string string_pattern(size_t n) {
  std::string s(n, ' ');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (n + i) % 26);
  return s;
}

// Checks the pattern of one object (not its children).
void check_object(shoal::Value v) {
  if (!v.is_object()) return;
  shoal::Object* o = v.as_object();
  const shoal::ClassId cls = o->class_id();
  if (cls == shoal::class_id_of<Cell>()) {
    auto* c = static_cast<Cell*>(o->payload());
    if (c->check != Cell::pattern(c->id)) fail("cell pattern");
    else if ((c->id & 7) == 0 && was_finalized(c->id)) fail("a finalized cell is still reachable");
  } else if (cls == shoal::kByteArrayClassId) {
    auto* b = static_cast<shoal::ByteArray*>(o->payload());
    const size_t n = b->length();
    for (size_t i = 0; i < n; i += 97)
      if (b->data()[i] != static_cast<uint8_t>(n + i)) {
        fail("byte array pattern");
        break;
      }
  } else if (cls == shoal::kStringClassId) {
    auto* s = static_cast<shoal::String*>(o->payload());
    if (s->view() != string_pattern(s->length())) fail("string pattern");
  } else if (cls == shoal::kRefArrayClassId || cls == shoal::WeakCell::class_id() ||
             cls == shoal::Ephemeron::class_id()) {
    // Elements (the weak target) are checked when visited.
  } else {
    fail("unknown class in the graph");
  }
}

// Walks up to `budget` objects reachable from v, checking each pattern.
void walk(shoal::Value v, int depth, int& budget) {
  if (!v.is_object() || budget-- <= 0 || depth > 6) return;
  check_object(v);
  shoal::Object* o = v.as_object();
  if (o->class_id() == shoal::class_id_of<Cell>()) {
    auto* c = static_cast<Cell*>(o->payload());
    walk(c->a.value(), depth + 1, budget);
    walk(c->b.value(), depth + 1, budget);
    walk(c->any.load(), depth + 1, budget);
  } else if (o->class_id() == shoal::kRefArrayClassId) {
    auto* a = static_cast<shoal::RefArray*>(o->payload());
    for (size_t i = 0; i < a->length() && budget > 0; ++i) walk(a->get(i), depth + 1, budget);
  } else if (o->class_id() == shoal::WeakCell::class_id()) {
    walk(static_cast<shoal::WeakCell*>(o->payload())->get(), depth + 1, budget);  // alive or null
  } else if (o->class_id() == shoal::Ephemeron::class_id()) {
    auto* e = static_cast<shoal::Ephemeron*>(o->payload());
    const shoal::Value key = e->key();
    const shoal::Value value = e->value();
    if (key.is_null() && !value.is_null()) fail("ephemeron cleared its key but not its value");
    walk(key, depth + 1, budget);
    walk(value, depth + 1, budget);
  }
}

struct Options {
  double seconds = 5;
  int threads = 4;
  uint64_t seed = 1;
  uint32_t torture = 0;
  size_t heap_mb = 256;
  bool stop_the_world = false;
  unsigned marker_threads = 0;
  bool verify_each_cycle = false;
  bool stacks_after_pause = false;
  bool fixed_generations = false;
  size_t soft_limit_mb = 0;
  unsigned quiet_ms = 0;
};

// --quiet-ms: set by the main thread while every worker is to stay quiet. In that mode
// the workers do not collect explicitly (a full cycle every few ms would leave an idle
// cycle nothing to find).
std::atomic<bool> g_quiet{false};
bool g_quiet_mode = false;

// Handle boxes shared by all threads. A box's handles are used under its mutex; a
// running thread takes the mutex inside run_native (it must not block while running).
struct HandleBox {
  std::mutex mu;
  shoal::Persistent<Cell> strong;
  shoal::WeakRef<Cell> weak;
};
constexpr size_t kHandleBoxes = 16;
std::vector<HandleBox>* g_boxes = nullptr;

// Off the running state: only handle-to-handle operations.
void shuffle_handles(shoal::Heap& heap, std::mt19937_64& rng) {
  HandleBox& a = (*g_boxes)[rng() % kHandleBoxes];
  HandleBox& b = (*g_boxes)[rng() % kHandleBoxes];
  std::unique_lock<std::mutex> la(a.mu, std::defer_lock), lb(b.mu, std::defer_lock);
  if (&a == &b)
    la.lock();
  else
    std::lock(la, lb);
  switch (rng() % 6) {
    case 0: a.strong.set_from(b.strong); break;
    case 1: a.strong.set_from(b.strong); b.strong.set(shoal::Ref<Cell>()); break;  // a move
    case 2: a.weak = shoal::WeakRef<Cell>(b.strong); break;
    case 3: a.strong = b.weak.lock(); break;  // weak upgrade from anywhere
    case 4: a.weak = b.weak; break;
    default: std::swap(a.strong, b.strong); break;
  }
  if (a.strong.empty()) a.strong = shoal::Persistent<Cell>(heap, shoal::Ref<Cell>());
}

class Worker {
 public:
  Worker(shoal::Heap& heap, shoal::Persistent<shoal::RefArray>& shared, int index, uint64_t seed)
      : heap_(heap), shared_(shared), index_(index), rng_(seed), next_id_((static_cast<uint64_t>(index) << 40) + 1) {}

  void run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
      {
        shoal::MutatorScope attach(heap_);
        shoal::Ref<shoal::RefArray> roots = shoal::RefArray::create(64);
        // Attached session: a random number of operations, then detach (dropping roots,
        // except what was published).
        const int ops = 200 + static_cast<int>(rng_() % 2000);
        for (int i = 0; i < ops && !stop.load(std::memory_order_relaxed); ++i) step(roots);
        int budget = 100000;
        walk(roots.value(), 0, budget);
        check_weak_refs();
      }
      if (rng_() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 200));
    }
  }

 private:
  size_t pick(size_t n) { return static_cast<size_t>(rng_() % n); }

  shoal::Value allocate_something() {
    const unsigned kind = static_cast<unsigned>(rng_() % 100);
    if (kind < 60) {
      shoal::Ref<Cell> c = shoal::make<Cell>();
      c->id = static_cast<int64_t>(next_id_++);
      c->check = Cell::pattern(c->id);
      return c.value();
    }
    if (kind < 75) {
      const size_t n = (rng_() % 50 == 0) ? 2000 + pick(20000) : pick(40);  // some large
      return shoal::RefArray::create(n).value();
    }
    if (kind < 90) {
      const size_t n = (rng_() % 40 == 0) ? 9000 + pick(100000) : pick(300);
      shoal::Ref<shoal::ByteArray> b = shoal::ByteArray::create(n);
      for (size_t i = 0; i < n; ++i) b->data()[i] = static_cast<uint8_t>(n + i);
      return b.value();
    }
    return shoal::String::create(string_pattern(pick(200))).value();
  }

  // Stores v into a random reference slot of object o (if it has any).
  void store_into(shoal::Value o, shoal::Value v) {
    if (!o.is_object()) return;
    shoal::Object* obj = o.as_object();
    if (obj->class_id() == shoal::class_id_of<Cell>()) {
      auto c = shoal::Ref<Cell>::from_object(obj);
      switch (pick(3)) {
        case 0: c.set(&Cell::any, v); break;
        case 1: if (!v.is_object() || v.as_object()->class_id() == shoal::class_id_of<Cell>()) c.set(&Cell::a, shoal::Ref<Cell>::from_value(v)); break;
        default: if (!v.is_object() || v.as_object()->class_id() == shoal::class_id_of<Cell>()) c.set(&Cell::b, shoal::Ref<Cell>::from_value(v)); break;
      }
    } else if (obj->class_id() == shoal::kRefArrayClassId) {
      auto* a = static_cast<shoal::RefArray*>(obj->payload());
      if (a->length() > 0) a->set(pick(a->length()), v);
    }
  }

  // WeakRef handles: a dead target reads as null, a live one holds its pattern.
  void check_weak_refs() {
    for (auto& w : weak_refs_) {
      int budget = 200;
      walk(w.get().value(), 0, budget);
    }
  }

  void weak_op(shoal::Ref<shoal::RefArray> roots) {
    const shoal::Value target = roots->get(pick(64));
    switch (pick(5)) {
      case 0:  // a weak cell in the graph
        roots->set(pick(64), shoal::WeakCell::create(target).value());
        break;
      case 4:  // a weak-map entry: its value refers back to its key
        if (target.is_object()) {
          shoal::Ref<Cell> value = shoal::make<Cell>();
          value->id = static_cast<int64_t>(next_id_++);
          value->check = Cell::pattern(value->id);
          value.set(&Cell::any, target);
          roots->set(pick(64), shoal::Ephemeron::create(target, value.value()).value());
        }
        break;
      case 1:  // a weak handle outside the heap
        if (target.is_object() && target.as_object()->class_id() == shoal::class_id_of<Cell>()) {
          if (weak_refs_.size() >= 16) weak_refs_.erase(weak_refs_.begin() + static_cast<std::ptrdiff_t>(pick(16)));
          weak_refs_.emplace_back(heap_, shoal::Ref<Cell>::from_value(target));
        }
        break;
      case 2: {  // upgrade a weak reference and store it strongly somewhere
        if (weak_refs_.empty()) break;
        shoal::Ref<Cell> c = weak_refs_[pick(weak_refs_.size())].get();
        if (c) store_into(roots->get(pick(64)), c.value());
        break;
      }
      default:  // a finalizer on a cell (ids divisible by 8 are checked in walks)
        if (target.is_object() && target.as_object()->class_id() == shoal::class_id_of<Cell>()) {
          const int64_t id = shoal::Ref<Cell>::from_value(target)->id;
          // Only this thread's own cells (ids carry the thread index), each once.
          if ((id & 7) == 0 && (id >> 40) == index_ && registered_.insert(id).second) {
            heap_.add_finalizer(target, [id] { finalize_cell(id); });
            g_finalizers_registered.fetch_add(1, std::memory_order_relaxed);
          }
        }
        break;
    }
  }

  void step(shoal::Ref<shoal::RefArray> roots) {
    g_ops.fetch_add(1, std::memory_order_relaxed);
    if (g_quiet.load(std::memory_order_relaxed)) return quiet_step(roots);
    unsigned op = static_cast<unsigned>(rng_() % 1000);
    if (g_quiet_mode && op >= 996 && op < 998) op = 400;  // an allocation instead
    if (op < 60) {
      weak_op(roots);
    } else if (op < 500) {
      roots->set(pick(64), allocate_something());
    } else if (op < 750) {
      store_into(roots->get(pick(64)), roots->get(pick(64)));  // rewire, cycles included
    } else if (op < 850) {
      store_into(roots->get(pick(64)), allocate_something());
    } else if (op < 900) {
      roots->set(pick(64), shoal::Value::null());  // drop
    } else if (op < 940) {
      shared_->set(static_cast<size_t>(index_), roots->get(pick(64)));  // publish
    } else if (op < 980) {
      const shoal::Value other = shared_->get(pick(shared_->length()));  // consume
      int budget = 2000;
      walk(other, 0, budget);
      if (rng_() % 2) roots->set(pick(64), other);
    } else if (op < 990) {
      int budget = 20000;
      walk(roots.value(), 0, budget);
      shoal::safepoint();
    } else if (op < 993) {
      shoal::run_native([&] { std::this_thread::sleep_for(std::chrono::microseconds(50 + rng_() % 500)); });
    } else if (op < 996) {
      handle_box_op(roots);
    } else if (op < 997) {
      heap_.collect();
    } else if (op < 998) {
      if (const size_t m = heap_.options().soft_heap_limit; m != 0 && rng_() % 2 == 0) {
        // --soft-limit-mb: move the limit between half and twice the option, or give
        // every free page back (the scavenger runs meanwhile), here or from native code.
        const size_t limit = m / 2 + rng_() % (m + m / 2);
        switch (rng_() % 4) {
          case 0: heap_.set_soft_heap_limit(limit); break;
          case 1: shoal::run_native([&] { heap_.set_soft_heap_limit(limit); }); break;
          case 2: (void)heap_.release_free_memory(); break;
          default: shoal::run_native([&] { (void)heap_.release_free_memory(); }); break;
        }
      } else {
        heap_.start_collection();
      }
    } else if (op < 999) {
      heap_.idle(std::chrono::microseconds(200));
    } else {
      shoal::VerifyReport r = heap_.verify();
      if (!r.ok) {
        std::fprintf(stderr, "%s\n", r.summary().c_str());
        fail("heap verification");
      }
    }
  }

  // --quiet-ms: reads and waits only (an idle cycle may be marking under the walks).
  void quiet_step(shoal::Ref<shoal::RefArray> roots) {
    switch (rng_() % 4) {
      case 0: {
        int budget = 2000;
        walk(roots->get(pick(64)), 0, budget);
        break;
      }
      case 1:
        check_weak_refs();
        break;
      case 2:
        shoal::safepoint();
        break;
      default:
        shoal::run_native([&] { std::this_thread::sleep_for(std::chrono::microseconds(200 + rng_() % 800)); });
        break;
    }
  }

  // Puts a cell into a shared handle box, reads one back (checking its pattern), or
  // shuffles handles between boxes from inside run_native.
  void handle_box_op(shoal::Ref<shoal::RefArray> roots) {
    if (rng_() % 3 == 0) {
      shoal::run_native([&] {
        for (int i = 0; i < 8; ++i) shuffle_handles(heap_, rng_);
      });
      return;
    }
    HandleBox& box = (*g_boxes)[pick(kHandleBoxes)];
    std::unique_lock<std::mutex> lock(box.mu, std::defer_lock);
    shoal::run_native([&] { lock.lock(); });
    const shoal::Value v = roots->get(pick(64));
    if (rng_() % 2 && v.is_object() && v.as_object()->class_id() == shoal::class_id_of<Cell>()) {
      box.strong.set(shoal::Ref<Cell>::from_value(v));
      if (rng_() % 2) box.weak = shoal::WeakRef<Cell>(heap_, shoal::Ref<Cell>::from_value(v));
    } else {
      int budget = 2000;
      const shoal::Ref<Cell> strong = box.strong.get();
      walk(strong.value(), 0, budget);
      walk(box.weak.get().value(), 0, budget);
      if (strong) roots->set(pick(64), strong.value());
    }
  }

  shoal::Heap& heap_;
  shoal::Persistent<shoal::RefArray>& shared_;
  int index_;
  std::mt19937_64 rng_;
  uint64_t next_id_;
  std::vector<shoal::WeakRef<Cell>> weak_refs_;
  std::unordered_set<int64_t> registered_;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--seconds")) o.seconds = std::atof(value());
    else if (!std::strcmp(argv[i], "--minutes")) o.seconds = 60 * std::atof(value());
    else if (!std::strcmp(argv[i], "--threads")) o.threads = std::atoi(value());
    else if (!std::strcmp(argv[i], "--seed")) o.seed = std::strtoull(value(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--torture")) o.torture = static_cast<uint32_t>(std::atoi(value()));
    else if (!std::strcmp(argv[i], "--heap-mb")) o.heap_mb = std::strtoull(value(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--stw")) o.stop_the_world = true;
    else if (!std::strcmp(argv[i], "--concurrent")) o.stop_the_world = false;  // the default
    else if (!std::strcmp(argv[i], "--marker-threads")) o.marker_threads = static_cast<unsigned>(std::atoi(value()));
    else if (!std::strcmp(argv[i], "--verify-each-cycle")) o.verify_each_cycle = true;
    else if (!std::strcmp(argv[i], "--stacks-after-pause")) o.stacks_after_pause = true;
    else if (!std::strcmp(argv[i], "--fixed-generations")) o.fixed_generations = true;
    else if (!std::strcmp(argv[i], "--soft-limit-mb")) o.soft_limit_mb = std::strtoull(value(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--quiet-ms")) o.quiet_ms = static_cast<unsigned>(std::atoi(value()));
    else {
      std::fprintf(stderr, "usage: %s [--seconds S|--minutes M] [--threads N] [--seed X] [--torture N] [--heap-mb M] [--stw] [--marker-threads N] [--verify-each-cycle] [--stacks-after-pause] [--fixed-generations] [--soft-limit-mb M] [--quiet-ms N]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  shoal::HeapOptions ho;
  ho.heap_limit = opt.heap_mb << 20;
  ho.gc_torture_interval = opt.torture;
  ho.min_gc_trigger = size_t{2} << 20;
  ho.concurrent_marking = !opt.stop_the_world;
  ho.marker_threads = opt.marker_threads;
  ho.verify_after_gc = opt.verify_each_cycle;  // (sweeps in the pause, so off by default)
  if (opt.stacks_after_pause) ho.initial_pause_stack_budget = 0;  // every stack by handshake
  ho.adaptive_generations = !opt.fixed_generations;
  ho.soft_heap_limit = opt.soft_limit_mb << 20;
  if (opt.quiet_ms != 0) ho.idle_full_cycle_after = std::chrono::milliseconds(opt.quiet_ms);
  g_quiet_mode = opt.quiet_ms != 0;
  shoal::Heap heap(ho);
  shoal::Persistent<shoal::RefArray> shared;
  {
    shoal::MutatorScope attach(heap);
    shared = shoal::Persistent<shoal::RefArray>(heap, shoal::RefArray::create(static_cast<size_t>(opt.threads)));
  }
  std::vector<HandleBox> boxes(kHandleBoxes);
  g_boxes = &boxes;
  for (HandleBox& b : boxes) b.strong = shoal::Persistent<Cell>(heap, shoal::Ref<Cell>());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < opt.threads; ++t)
    threads.emplace_back([&, t] {
      try {
        Worker(heap, shared, t, opt.seed * 7919 + static_cast<uint64_t>(t)).run(stop);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "shoal_stress: thread %d: %s\n", t, e.what());
        fail("exception");
      }
    });
  // The main thread is the finalizer thread (unattached): it runs pending finalizers
  // until the end.
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.seconds);
  std::mt19937_64 main_rng(opt.seed);
  // --quiet-ms: the quiet stretches, and the idle cycles seen (stats() keeps the last
  // 256 records: read at the end of each stretch).
  const auto period = std::chrono::milliseconds(20 * opt.quiet_ms), quiet = period / 2;
  auto next_switch = std::chrono::steady_clock::now() + quiet;
  // (The cycles made full because young ones did not pay are counted the same way,
  // every 64 rounds: a report.)
  uint64_t idle_cycles = 0, full_for_yield = 0, seen_index = 0;
  const auto scan_records = [&] {
    for (const shoal::CycleRecord& r : heap.stats().recent) {
      if (r.index <= seen_index) continue;
      seen_index = r.index;
      if (std::strcmp(r.cause, "idle-background") == 0) ++idle_cycles;
      if (r.full_for_yield) ++full_for_yield;
    }
  };
  for (uint64_t round = 1; std::chrono::steady_clock::now() < end; ++round) {
    heap.run_finalizers();
    for (int i = 0; i < 16; ++i) shuffle_handles(heap, main_rng);  // unattached
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (opt.quiet_ms != 0 && std::chrono::steady_clock::now() >= next_switch) {
      const bool was_quiet = g_quiet.exchange(!g_quiet.load());
      next_switch += was_quiet ? period - quiet : quiet;
      scan_records();
    } else if (round % 64 == 0) {
      scan_records();
    }
  }
  g_quiet = false;
  stop = true;
  for (auto& t : threads) t.join();

  shoal::MutatorScope attach(heap);
  try {
    heap.collect();  // rethrows a failed verification of a background cycle
    const shoal::VerifyReport r = heap.verify();
    if (!r.ok) {
      std::fprintf(stderr, "%s\n", r.summary().c_str());
      fail("final heap verification");
    }
  } catch (const shoal::HeapCorruption& e) {
    std::fprintf(stderr, "%s\n", e.what());
    fail("heap verification after a cycle");
  }
  for (HandleBox& b : boxes) {  // what the boxes hold is intact
    int budget = 100000;
    walk(b.strong.get().value(), 0, budget);
    walk(b.weak.get().value(), 0, budget);
  }
  heap.run_finalizers();
  if (g_finalizers_run.load() > g_finalizers_registered.load()) fail("more finalizers ran than were registered");
  scan_records();
  const shoal::GcStats s = heap.stats();
  if (opt.quiet_ms != 0 && !opt.stop_the_world) {
    std::printf("shoal_stress: %llu idle full cycles\n", static_cast<unsigned long long>(idle_cycles));
    // (Torture collects at the quiet threads' polls: never quiet. A stop-the-world heap
    // has no marker thread.)
    if (idle_cycles == 0 && opt.torture == 0) fail("--quiet-ms: no idle full cycle ran in the quiet stretches");
  }
  const bool ok = g_failures.load() == 0;
  std::printf("shoal_stress: %llu young cycles, %llu full (%llu made full because young cycles did not pay)\n",
              static_cast<unsigned long long>(s.young_collections),
              static_cast<unsigned long long>(s.collections - s.young_collections),
              static_cast<unsigned long long>(full_for_yield));
  std::printf("shoal_stress: %d threads, %.0f s, seed %llu, %s: %llu ops, %llu collections, "
              "%llu/%llu finalizers run, max pause %.2f ms, %.0f MiB allocated: %s\n",
              opt.threads, opt.seconds, static_cast<unsigned long long>(opt.seed),
              opt.stop_the_world ? "stop-the-world" : "concurrent",
              static_cast<unsigned long long>(g_ops.load()), static_cast<unsigned long long>(s.collections),
              static_cast<unsigned long long>(g_finalizers_run.load()),
              static_cast<unsigned long long>(g_finalizers_registered.load()),
              static_cast<double>(s.max_pause_ns) / 1e6, static_cast<double>(s.bytes_allocated) / (1 << 20),
              ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
