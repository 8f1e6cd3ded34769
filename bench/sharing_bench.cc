// shoal_sharing_bench: what crossing an isolate boundary costs, per mode, as the graph
// grows; and shared-field reads and writes against their baselines.
//
// send/<mode>/<N>: isolate a sends a graph of N Nodes (a balanced binary tree built
// iteratively, so 1e6 nodes need no deep recursion) to isolate b's port, and b receives
// it - the timed part is send + receive (manual time; the isolate switch for the receive
// is included in every mode). Modes:
//   share      the graph frozen once up front; send(kShare): the reference is queued.
//   copy       send(kCopy): a deep copy owned by b (the copies become garbage; their
//              collection is part of the cost, as in a real program).
//   transfer   send(kTransfer), SAFE: the referrer scan is a stop-the-world pass over the
//              live heap (here: the graph and the bench's small state), then the owner
//              bits of N headers are rewritten. Untimed: b transfers it back (UNSAFE).
//   unsafe     send(kTransferUnsafe): the owner rewrite only.
//   serialize  what isolates without a shared heap must do: a generic serializer (class
//              id, payload, references as object indices) writes the graph into a byte
//              buffer in a, and b rebuilds it from the bytes.
// field/*: reads and writes of a SharedField (a registered root: acquire load; write =
// Heap::store_root under the root lock) against an IsolatedGlobal, a Persistent handle
// and a plain std::atomic load, each timed per batch of 1024 operations.
// c_api/field_set_int/*: shoal_field_set_int through the C API from the main thread,
// unattached (each call attaches the thread and detaches it again: what a native
// thread calling in pays) and inside a MutatorScope (the call's attachment nests).
//
// Usage: shoal_sharing_bench [--max-n N] [google-benchmark flags]
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include "shoal/shoal.h"
#include "shoal/shoal_c.h"

namespace {

struct Node {
  shoal::Member<Node> left, right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "SharingBenchNode";
};

// A balanced binary tree of n nodes in heap order (node i's children are 2i+1, 2i+2),
// built bottom-up with a RefArray holding the nodes while they are linked.
shoal::Ref<Node> make_graph(size_t n) {
  shoal::Ref<shoal::RefArray> all = shoal::RefArray::create(n);
  for (size_t i = 0; i < n; ++i) {
    shoal::Ref<Node> node = shoal::make<Node>();
    node->value = static_cast<int64_t>(i);
    all->set(i, node.value());
  }
  for (size_t i = 0; i < n; ++i) {
    shoal::Ref<Node> node = shoal::Ref<Node>::from_value(all->get(i));
    if (2 * i + 1 < n) node.set(&Node::left, shoal::Ref<Node>::from_value(all->get(2 * i + 1)));
    if (2 * i + 2 < n) node.set(&Node::right, shoal::Ref<Node>::from_value(all->get(2 * i + 2)));
  }
  return shoal::Ref<Node>::from_value(all->get(0));
}

// --- A generic serializer over the class table (kFixed classes) ---

void serialize(shoal::Value root, std::vector<uint8_t>& out) {
  out.clear();
  std::vector<shoal::Object*> order;
  std::unordered_map<shoal::Object*, uint64_t> index;
  if (root.is_object()) {
    index.emplace(root.as_object(), 0);
    order.push_back(root.as_object());
  }
  auto put = [&](uint64_t w) {
    const size_t at = out.size();
    out.resize(at + 8);
    std::memcpy(out.data() + at, &w, 8);
  };
  for (size_t k = 0; k < order.size(); ++k) {
    shoal::Object* o = order[k];
    const shoal::ClassInfo& c = shoal::class_info(o->class_id());
    put(o->class_id());
    const char* payload = static_cast<const char*>(o->payload());
    size_t r = 0;
    for (uint32_t off = 0; off < c.instance_size; off += 8) {
      uint64_t w;
      std::memcpy(&w, payload + off, 8);
      if (r < c.ref_offsets.size() && c.ref_offsets[r] == off) {
        ++r;
        const shoal::Value v = shoal::Value::from_raw(w);
        if (v.is_object()) {
          auto [it, fresh] = index.emplace(v.as_object(), order.size());
          if (fresh) order.push_back(v.as_object());
          w = ((it->second + 1) << 1);  // an even tag: object index + 1
        }
      }
      put(w);
    }
  }
}

shoal::Value deserialize(const std::vector<uint8_t>& in) {
  // Pass 1: allocate; pass 2: patch references. The objects are held by a RefArray.
  size_t count = 0;
  for (size_t at = 0; at < in.size(); ++count) {
    uint64_t id;
    std::memcpy(&id, in.data() + at, 8);
    at += 8 + shoal::class_info(static_cast<shoal::ClassId>(id)).instance_size;
  }
  shoal::Ref<shoal::RefArray> objects = shoal::RefArray::create(count);
  size_t at = 0;
  for (size_t k = 0; k < count; ++k) {
    uint64_t id;
    std::memcpy(&id, in.data() + at, 8);
    shoal::Object* o = shoal::allocate_instance(static_cast<shoal::ClassId>(id));
    objects->set(k, shoal::Value::from_object(o));
    at += 8 + shoal::class_info(static_cast<shoal::ClassId>(id)).instance_size;
  }
  at = 0;
  for (size_t k = 0; k < count; ++k) {
    uint64_t id;
    std::memcpy(&id, in.data() + at, 8);
    at += 8;
    const shoal::ClassInfo& c = shoal::class_info(static_cast<shoal::ClassId>(id));
    shoal::Object* o = objects->get(k).as_object();
    char* payload = static_cast<char*>(o->payload());
    size_t r = 0;
    for (uint32_t off = 0; off < c.instance_size; off += 8, at += 8) {
      uint64_t w;
      std::memcpy(&w, in.data() + at, 8);
      if (r < c.ref_offsets.size() && c.ref_offsets[r] == off) {
        ++r;
        const shoal::Value v = shoal::Value::from_raw(w);
        if (v.is_object()) shoal::store_field(o, off, objects->get((w >> 1) - 1));
        else if (!v.is_null()) shoal::store_field(o, off, v);
      } else {
        std::memcpy(payload + off, &w, 8);
      }
    }
  }
  return count ? objects->get(0) : shoal::Value::null();
}

// --- The world: one group, isolates a and b, b's port ---

struct World {
  shoal::IsolateGroup group;
  shoal::Isolate& a = group.create_isolate("a");
  shoal::Isolate& b = group.create_isolate("b");
  shoal::ReceivePort inbox_a{a};
  shoal::ReceivePort inbox_b{b};
};
World& world() {
  static World* w = new World();
  return *w;
}

enum class Mode { kShare, kCopy, kTransfer, kUnsafe, kSerialize };

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <Mode M>
void BM_Send(benchmark::State& state) {
  World& w = world();
  const size_t n = static_cast<size_t>(state.range(0));
  shoal::IsolateScope in_a(w.a);
  // The graph's root stays on this stack (a Persistent would be a referrer that SAFE
  // transfer refuses).
  shoal::Ref<Node> g = make_graph(n);
  if (M == Mode::kShare) shoal::freeze(g);
  shoal::SendPort to_b = w.inbox_b.send_port(), to_a = w.inbox_a.send_port();
  std::vector<uint8_t> bytes;
  w.group.heap().collect();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    shoal::Value received;
    if constexpr (M == Mode::kSerialize) {
      serialize(g.value(), bytes);
      received = shoal::run_in(w.b, [&] { return deserialize(bytes); });
    } else {
      const shoal::SendMode mode = M == Mode::kShare      ? shoal::SendMode::kShare
                                   : M == Mode::kCopy     ? shoal::SendMode::kCopy
                                   : M == Mode::kTransfer ? shoal::SendMode::kTransfer
                                                          : shoal::SendMode::kTransferUnsafe;
      to_b.send(g.value(), mode);
      received = shoal::run_in(w.b, [&] { return w.inbox_b.receive(); });
    }
    state.SetIterationTime(seconds_since(t0));
    benchmark::DoNotOptimize(received);
    if constexpr (M == Mode::kTransfer || M == Mode::kUnsafe) {
      // Give it back to a (untimed).
      shoal::run_in(w.b, [&] { to_a.send(received, shoal::SendMode::kTransferUnsafe); });
      g = shoal::cast<Node>(w.inbox_a.receive());
    }
  }
  shoal::keep_alive(g);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
  state.counters["objects"] = static_cast<double>(n);
}

constexpr size_t kOps = 1024;

template <int kWhich>
void BM_Field(benchmark::State& state) {
  World& w = world();
  shoal::IsolateScope in_a(w.a);
  static shoal::SharedField field(w.group, "bench", [] { return shoal::String::create("x").value(); });
  static shoal::IsolatedGlobal global(w.group, "bench-global", [] { return shoal::Value::from_int(1); });
  shoal::Persistent<shoal::String> handle(w.group.heap(), shoal::String::create("y"));
  static std::atomic<uint64_t> plain{3};
  const shoal::Value s = shoal::String::create("z").value();
  (void)field.get();
  (void)global.get();
  uint64_t sink = 0;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kOps))) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kOps; ++i) {
      if constexpr (kWhich == 0) sink += field.get().raw();
      else if constexpr (kWhich == 1) field.set(s);
      else if constexpr (kWhich == 2) sink += global.get().raw();
      else if constexpr (kWhich == 3) global.set(s);
      else if constexpr (kWhich == 4) sink += handle.get().value().raw();
      else sink += plain.load(std::memory_order_acquire);
    }
    state.SetIterationTime(seconds_since(t0));
  }
  benchmark::DoNotOptimize(sink);
}

template <bool kAttached>
void BM_CApiFieldSet(benchmark::State& state) {
  shoal_error err{};
  shoal_group* group = nullptr;
  shoal_field* field = nullptr;
  if (shoal_group_create(nullptr, &group, &err) != SHOAL_OK || shoal_field_create(group, "f", &field, &err) != SHOAL_OK) {
    state.SkipWithError(err.message);
    return;
  }
  {
    std::optional<shoal::MutatorScope> attach;
    if (kAttached) attach.emplace(shoal::group_of(group).heap());
    int64_t i = 0;
    while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kOps))) {
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t k = 0; k < kOps; ++k)
        if (shoal_field_set_int(field, ++i, &err) != SHOAL_OK) state.SkipWithError(err.message);
      state.SetIterationTime(seconds_since(t0));
    }
  }
  shoal_field_destroy(field);
  shoal_group_destroy(group, &err);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t max_n = 1000000;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-n") && i + 1 < argc) max_n = std::atoll(argv[++i]);
    else args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  auto sizes = [&](benchmark::internal::Benchmark* b) {
    for (int64_t s = 100; s <= max_n; s *= 10) b->Arg(s);
    b->UseManualTime()->Unit(benchmark::kMicrosecond);
  };
  auto reg = [&](const char* name, void (*fn)(benchmark::State&)) { sizes(benchmark::RegisterBenchmark(name, fn)); };
  reg("send/share", BM_Send<Mode::kShare>);
  reg("send/copy", BM_Send<Mode::kCopy>);
  reg("send/transfer", BM_Send<Mode::kTransfer>);
  reg("send/unsafe", BM_Send<Mode::kUnsafe>);
  reg("send/serialize", BM_Send<Mode::kSerialize>);
  void (*per_op)(benchmark::internal::Benchmark*) = [](benchmark::internal::Benchmark* b) {
    b->UseManualTime()->Unit(benchmark::kNanosecond);
  };
  benchmark::RegisterBenchmark("field/shared_get", BM_Field<0>)->Apply(per_op);
  benchmark::RegisterBenchmark("field/shared_set", BM_Field<1>)->Apply(per_op);
  benchmark::RegisterBenchmark("field/isolated_get", BM_Field<2>)->Apply(per_op);
  benchmark::RegisterBenchmark("field/isolated_set", BM_Field<3>)->Apply(per_op);
  benchmark::RegisterBenchmark("field/persistent_get", BM_Field<4>)->Apply(per_op);
  benchmark::RegisterBenchmark("field/atomic_load", BM_Field<5>)->Apply(per_op);
  benchmark::RegisterBenchmark("c_api/field_set_int/unattached", BM_CApiFieldSet<false>)->Apply(per_op);
  benchmark::RegisterBenchmark("c_api/field_set_int/attached", BM_CApiFieldSet<true>)->Apply(per_op);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
