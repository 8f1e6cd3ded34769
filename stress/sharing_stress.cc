// shoal_sharing_stress: the sharing model under concurrency, with the collector running.
//
// One isolate group (created through the C API, so native threads can call in), with:
//   - I isolates, one thread each, exchanging messages in every mode: kShare (frozen
//     lists), kCopy, kTransfer (SAFE) and kTransferUnsafe. Each message is a Node whose
//     value is a checksum of the list hanging off `left`; the receiver checks the
//     checksum, the length, and the owner (its own for copies and transfers, frozen for
//     shared messages), then mutates what it owns. After a transfer the sender checks
//     that its stores into the sent list are refused.
//   - shared-field initialisation races: F fields, each read for the first time by
//     several threads at once; each initializer must run exactly once.
//   - freeze racing readers and writers: a board (a RefArray allocated in the shared
//     isolate, so every thread may write it) that threads keep writing from the shared
//     isolate while one of them freezes it and installs a fresh one; after each freeze,
//     everything reachable from the frozen board must be frozen.
//   - N native threads (never attached by hand) calling a C callback that allocates in
//     the shared isolate and writes a shared field.
// Every check failure prints and exits non-zero; at the end the heap is verified.
//
// Usage: shoal_sharing_stress [--seconds S] [--isolates I] [--native N] [--torture K]
//                             [--seed X] [--stw]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shoal/shoal.h"
#include "shoal/shoal_c.h"

namespace {

struct Node {
  shoal::Member<Node> left, right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "stress.Node";
};

std::atomic<long> g_failures{0};
#define STRESS_CHECK(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      g_failures.fetch_add(1);                                                      \
    }                                                                               \
  } while (0)

struct Rng {
  uint64_t x;
  uint64_t next() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

shoal::Ref<Node> make_message(Rng& rng) {
  const size_t n = 1 + rng.below(200);
  shoal::Ref<Node> head;
  int64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    shoal::Ref<Node> node = shoal::make<Node>();
    node->value = static_cast<int64_t>(rng.below(1000));
    sum += node->value;
    node.set(&Node::left, head);
    if (i % 7 == 3) node.set(&Node::right, node);  // cycles
    head = node;
  }
  shoal::Ref<Node> msg = shoal::make<Node>();
  msg->value = sum * 1000 + static_cast<int64_t>(n);
  msg.set(&Node::left, head);
  return msg;
}

// Checks a received message; returns false if it is corrupt.
bool check_message(shoal::Ref<Node> msg) {
  int64_t sum = 0, n = 0;
  for (shoal::Ref<Node> p = msg->left.get(); p; p = p->left.get()) {
    sum += p->value;
    ++n;
    if (n > 1000) return false;
  }
  return msg->value == sum * 1000 + n;
}

struct Options {
  double seconds = 5;
  int isolates = 4;
  int native = 2;
  uint32_t torture = 0;
  uint64_t seed = 1;
  bool stw = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? argv[++i] : "0"; };
    if (!std::strcmp(argv[i], "--seconds")) opt.seconds = std::atof(next());
    else if (!std::strcmp(argv[i], "--isolates")) opt.isolates = std::atoi(next());
    else if (!std::strcmp(argv[i], "--native")) opt.native = std::atoi(next());
    else if (!std::strcmp(argv[i], "--torture")) opt.torture = static_cast<uint32_t>(std::atoi(next()));
    else if (!std::strcmp(argv[i], "--seed")) opt.seed = std::strtoull(next(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--stw")) opt.stw = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (opt.isolates < 2) opt.isolates = 2;

  shoal_group_options copts{};
  shoal_group* cgroup = nullptr;
  shoal_error cerr;
  if (shoal_group_create(&copts, &cgroup, &cerr) != SHOAL_OK) return 2;
  shoal::IsolateGroup& group = shoal::group_of(cgroup);
  // (Heap options are fixed at creation: torture and stop-the-world need their own group.)
  std::unique_ptr<shoal::IsolateGroup> own_group;
  shoal::IsolateGroup* g = &group;
  if (opt.torture || opt.stw) {
    shoal::IsolateGroupOptions o;
    o.heap.gc_torture_interval = opt.torture;
    o.heap.concurrent_marking = !opt.stw;
    own_group = std::make_unique<shoal::IsolateGroup>(o);
    g = own_group.get();
  }

  std::vector<shoal::Isolate*> isolates;
  std::vector<std::unique_ptr<shoal::ReceivePort>> ports;
  for (int i = 0; i < opt.isolates; ++i) {
    isolates.push_back(&g->create_isolate("iso" + std::to_string(i)));
    ports.push_back(std::make_unique<shoal::ReceivePort>(*isolates.back()));
  }
  std::vector<shoal::SendPort> to;
  for (auto& p : ports) to.push_back(p->send_port());

  constexpr int kFields = 64;
  std::vector<std::unique_ptr<shoal::SharedField>> fields;
  std::vector<std::atomic<int>> field_runs(kFields);
  for (int f = 0; f < kFields; ++f)
    fields.push_back(std::make_unique<shoal::SharedField>(*g, "field" + std::to_string(f), [&, f] {
      field_runs[f].fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      return shoal::String::create("field " + std::to_string(f)).value();
    }));

  // The board: writable by everyone from the shared isolate; swapped after each freeze.
  std::mutex board_mu;
  shoal::Persistent<shoal::RefArray> board;
  shoal::run_shared(*g, [&] { board = shoal::Persistent<shoal::RefArray>(g->heap(), shoal::RefArray::create(32)); });

  std::atomic<long> sent{0}, received{0}, refused_after_transfer{0}, freezes{0}, board_refused{0}, native_calls{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.seconds);
  auto running = [&] { return std::chrono::steady_clock::now() < deadline; };

  std::vector<std::thread> threads;
  for (int i = 0; i < opt.isolates; ++i) {
    threads.emplace_back([&, i] {
      Rng rng{opt.seed * 7919 + static_cast<uint64_t>(i) * 104729 + 1};
      shoal::IsolateScope in(*isolates[i]);
      const uint32_t me = isolates[i]->id();
      long iteration = 0;
      while (running()) {
        ++iteration;
        // Send one message.
        shoal::Ref<Node> msg = make_message(rng);
        const int mode = static_cast<int>(rng.below(4));
        const size_t dest = (i + 1 + rng.below(opt.isolates - 1)) % opt.isolates;
        try {
          switch (mode) {
            case 0:
              shoal::freeze(msg);
              to[dest].send(msg.value(), shoal::SendMode::kShare);
              break;
            case 1:
              to[dest].send(msg.value(), shoal::SendMode::kCopy);
              msg->value++;  // the sender's original stays its own
              msg->value--;
              break;
            case 2:
            case 3:
              to[dest].send(msg.value(), mode == 2 ? shoal::SendMode::kTransfer : shoal::SendMode::kTransferUnsafe);
              try {
                msg.set(&Node::right, shoal::Ref<Node>());
                STRESS_CHECK(!"a store into a transferred object was allowed");
              } catch (const shoal::IncorrectDereferenceError&) {
                refused_after_transfer.fetch_add(1);
              }
              break;
          }
          sent.fetch_add(1);
        } catch (const shoal::PortClosedError&) {
        }
        // Receive what is there.
        ports[i]->dispatch(
            [&](shoal::Value v) {
              shoal::Ref<Node> m = shoal::cast<Node>(v);
              STRESS_CHECK(check_message(m));
              if (m.object()->is_frozen()) {
                STRESS_CHECK(m->left.get().object() == nullptr || m->left.get().object()->is_frozen());
              } else {
                STRESS_CHECK(m.object()->owner() == me);
                m.set(&Node::right, shoal::make<Node>());  // ours now
              }
              received.fetch_add(1);
            },
            std::chrono::microseconds(100), 16);
        // Shared fields: first reads race across the isolates.
        const int f = static_cast<int>(rng.below(kFields));
        shoal::Ref<shoal::String> s = shoal::cast<shoal::String>(fields[f]->get());
        STRESS_CHECK(s && s->view() == "field " + std::to_string(f));
        // The board, from the shared isolate.
        if (iteration % 4 == 0) {
          shoal::run_shared([&] {
            shoal::Persistent<shoal::RefArray> b;
            {
              std::lock_guard<std::mutex> lock(board_mu);
              b = board;
            }
            shoal::Ref<shoal::RefArray> arr = b.get();
            for (int k = 0; k < 8; ++k) {
              try {
                shoal::Ref<Node> n = shoal::make<Node>();
                n->value = k;
                arr->set(rng.below(arr->length()), n.value());
              } catch (const shoal::InvalidMutabilityError&) {
                board_refused.fetch_add(1);
                break;
              }
            }
            if (i == 0 && iteration % 64 == 0) {
              shoal::freeze(arr);
              // Everything reachable is frozen now.
              for (size_t k = 0; k < arr->length(); ++k) {
                shoal::Value e = arr->get(k);
                STRESS_CHECK(!e.is_object() || e.as_object()->is_frozen());
              }
              freezes.fetch_add(1);
              shoal::Ref<shoal::RefArray> fresh = shoal::RefArray::create(32);
              std::lock_guard<std::mutex> lock(board_mu);
              board.set(fresh);
            }
          });
        }
      }
    });
  }

  // Native threads through the C API (on the C group).
  shoal_field* native_field = nullptr;
  shoal_field_create(cgroup, "native", &native_field, &cerr);
  uint32_t cb_id = 0;
  auto callback = [](void* user, const int64_t* args, size_t, int64_t* result, shoal_error* err) -> int {
    auto* field = static_cast<shoal_field*>(user);
    const std::string text = "native " + std::to_string(args[0]);
    int rc = shoal_field_set_string(field, text.data(), text.size(), err);
    for (int k = 0; k < 16 && rc == SHOAL_OK; ++k) shoal::String::create(text);
    *result = args[0] + 1;
    return rc;
  };
  shoal_register_callback(cgroup, "native", callback, native_field, &cb_id, &cerr);
  for (int n = 0; n < opt.native; ++n) {
    threads.emplace_back([&, n] {
      int64_t k = n * 1000000;
      while (running()) {
        int64_t r = 0;
        shoal_error e;
        STRESS_CHECK(shoal_call(cgroup, cb_id, &k, 1, &r, &e) == SHOAL_OK);
        STRESS_CHECK(r == k + 1);
        ++k;
        native_calls.fetch_add(1);
        if (k % 64 == 0) STRESS_CHECK(shoal_collect(cgroup, &e) == SHOAL_OK);
      }
    });
  }

  for (auto& t : threads) t.join();
  // Drain what was sent after each receiver's last dispatch.
  for (int i = 0; i < opt.isolates; ++i) {
    shoal::IsolateScope in(*isolates[i]);
    while (auto v = ports[i]->try_receive()) {
      STRESS_CHECK(check_message(shoal::cast<Node>(*v)));
      received.fetch_add(1);
    }
  }
  for (int f = 0; f < kFields; ++f) STRESS_CHECK(field_runs[f].load() <= 1);
  STRESS_CHECK(sent.load() == received.load());

  {
    shoal::MutatorScope attach(g->heap());
    const shoal::VerifyReport r = g->heap().verify();
    if (!r.ok) {
      std::fprintf(stderr, "heap verification failed: %s\n", r.summary().c_str());
      g_failures.fetch_add(1);
    }
  }
  const shoal::GcStats st = g->heap().stats();
  std::printf(
      "sharing stress: %ld messages sent, %ld received, %ld post-transfer stores refused, %ld board freezes "
      "(%ld stores refused), %ld native calls, %llu collections; %ld failures\n",
      sent.load(), received.load(), refused_after_transfer.load(), freezes.load(), board_refused.load(),
      native_calls.load(), static_cast<unsigned long long>(st.collections), g_failures.load());
  board.reset();
  ports.clear();
  fields.clear();
  shoal_field_destroy(native_field);
  own_group.reset();
  shoal_group_destroy(cgroup, &cerr);
  return g_failures.load() == 0 ? 0 : 1;
}
