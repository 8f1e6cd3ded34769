// shoal_demo: Shoal's main job for now. Several threads share one heap: each builds
// binary trees and linked lists, publishes some of them in a shared table, reads and
// checks what the other threads published, and throws most of its work away, while the
// heap collects (paced by allocation: concurrent cycles by default, plus a requested
// background cycle now and then). At the end the heap is verified and the GC statistics
// are printed.
//
//   shoal_demo [--threads N] [--seconds S] [--heap-mb M] [--depth D]
//              [--stw]               (every collection stop-the-world, for comparison)
//              [--trace FILE.json]   (GC event trace for Perfetto / chrome://tracing)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shoal/shoal.h"

namespace {

struct TreeNode {
  shoal::Member<TreeNode> left, right;
  int64_t depth = 0;
  static constexpr auto kRefs = shoal::refs(&TreeNode::left, &TreeNode::right);
  static constexpr const char* kName = "demo.TreeNode";
};

shoal::Ref<TreeNode> build(int depth) {
  auto n = shoal::make<TreeNode>();
  n->depth = depth;
  if (depth > 0) {
    n.set(&TreeNode::left, build(depth - 1));
    n.set(&TreeNode::right, build(depth - 1));
  }
  return n;
}

// Returns the node count, or -1 if the tree is not the shape it was built with.
int64_t check(shoal::Ref<TreeNode> n, int depth) {
  if (!n || n->depth != depth) return -1;
  if (depth == 0) return 1;
  const int64_t l = check(n->left.get(), depth - 1), r = check(n->right.get(), depth - 1);
  return (l < 0 || r < 0) ? -1 : l + r + 1;
}

struct Options {
  int threads = std::max(2u, std::thread::hardware_concurrency());
  double seconds = 3.0;
  size_t heap_mb = 512;
  int depth = 12;
  bool concurrent = true;
  std::string trace;  // write the GC event trace (Chrome JSON) here
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--threads")) o.threads = std::atoi(next());
    else if (!std::strcmp(argv[i], "--seconds")) o.seconds = std::atof(next());
    else if (!std::strcmp(argv[i], "--heap-mb")) o.heap_mb = std::strtoull(next(), nullptr, 10);
    else if (!std::strcmp(argv[i], "--depth")) o.depth = std::atoi(next());
    else if (!std::strcmp(argv[i], "--concurrent")) o.concurrent = true;  // the default
    else if (!std::strcmp(argv[i], "--stw")) o.concurrent = false;
    else if (!std::strcmp(argv[i], "--trace")) o.trace = next();
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--heap-mb M] [--depth D] [--stw] [--trace FILE.json]\n", argv[0]);
      std::exit(2);
    }
  }
  o.threads = std::max(1, o.threads);
  return o;
}

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double mib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  shoal::HeapOptions ho;
  ho.heap_limit = opt.heap_mb << 20;
  ho.concurrent_marking = opt.concurrent;
  shoal::Heap heap(ho);

  shoal::Persistent<shoal::RefArray> table;
  {
    shoal::MutatorScope attach(heap);
    table = shoal::Persistent<shoal::RefArray>(heap, shoal::RefArray::create(static_cast<size_t>(opt.threads)));
  }

  std::printf("shoal demo: %d threads, %.1f s, heap limit %zu MiB, trees of depth %d, %s marking\n", opt.threads,
              opt.seconds, opt.heap_mb, opt.depth, opt.concurrent ? "concurrent" : "stop-the-world");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> trees_built{0}, checks{0}, failures{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < opt.threads; ++t) {
    workers.emplace_back([&, t] {
      shoal::MutatorScope attach(heap);
      auto long_lived = build(opt.depth);  // survives the whole run
      uint64_t round = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto tree = build(opt.depth - 2);  // short-lived
        trees_built++;
        if (check(tree, opt.depth - 2) < 0) failures++;
        if (round % 4 == 0) table->set(static_cast<size_t>(t), tree.value());  // publish
        auto other = shoal::Ref<TreeNode>::from_value(table->get(static_cast<size_t>(round) % table->length()));
        if (other) {
          checks++;
          if (check(other, opt.depth - 2) < 0) failures++;
        }
        if (round % 64 == 63 && t == 0) heap.start_collection();  // collect() if --stw
        ++round;
      }
      if (check(long_lived, opt.depth) < 0) failures++;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  shoal::VerifyReport report;
  {
    shoal::MutatorScope attach(heap);
    heap.collect();
    report = heap.verify();
  }
  const shoal::GcStats s = heap.stats();
  std::vector<uint64_t> ttsp, marks, sweeps;  // of the last (up to) 256 cycles
  for (const auto& c : s.recent) {
    ttsp.push_back(c.time_to_safepoint_ns);
    if (c.concurrent) ttsp.push_back(c.final_time_to_safepoint_ns);
    marks.push_back(c.mark_ns);
    sweeps.push_back(c.sweep_ns);
  }
  std::sort(marks.begin(), marks.end());
  std::sort(sweeps.begin(), sweeps.end());
  std::sort(ttsp.begin(), ttsp.end());
  auto pct = [](const std::vector<uint64_t>& v, double p) {
    return v.empty() ? 0.0 : ms(v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]);
  };

  std::printf("\nwork\n");
  std::printf("  trees built           %llu (%.0f per second)\n", static_cast<unsigned long long>(trees_built.load()),
              static_cast<double>(trees_built.load()) / elapsed);
  std::printf("  cross-thread checks   %llu\n", static_cast<unsigned long long>(checks.load()));
  std::printf("  shape failures        %llu\n", static_cast<unsigned long long>(failures.load()));
  std::printf("\ngc\n");
  std::printf("  collections           %llu\n", static_cast<unsigned long long>(s.collections));
  std::printf("  allocated             %.1f MiB (%.0f MiB/s)\n", mib(s.bytes_allocated), mib(s.bytes_allocated) / elapsed);
  std::printf("  freed                 %.1f MiB\n", mib(s.bytes_freed));
  std::printf("  live after last cycle %.2f MiB\n", mib(s.live_bytes));
  std::printf("  footprint / limit     %.1f / %.0f MiB (%zu pages in use, %zu free; peak %.1f MiB)\n",
              mib(s.footprint_bytes), mib(s.heap_limit), s.pages_in_use, s.pages_free, mib(s.peak_footprint_bytes));
  std::printf("  pause total           %.1f ms (%.2f%% of wall time)\n", ms(s.total_pause_ns),
              100.0 * ms(s.total_pause_ns) / (elapsed * 1000.0));
  std::printf("  pause p50/p99/max     %.3f / %.3f / %.3f ms (all %llu pauses of the run; p50/p99 within 12.5 %%)\n",
              ms(s.pauses.percentile_ns(50)), ms(s.pauses.percentile_ns(99)), ms(s.pauses.max_ns),
              static_cast<unsigned long long>(s.pauses.count));
  std::printf("  time to safepoint     p50 %.3f  p99 %.3f ms\n", pct(ttsp, 0.5), pct(ttsp, 0.99));
  std::printf("  mark / sweep p50      %.3f / %.3f ms\n", pct(marks, 0.5), pct(sweeps, 0.5));
  std::vector<shoal::CycleRecord> slowest(s.recent.begin(), s.recent.end());
  std::sort(slowest.begin(), slowest.end(), [](const auto& a, const auto& b) { return a.pause_ns > b.pause_ns; });
  for (size_t i = 0; i < std::min<size_t>(3, slowest.size()); ++i) {
    const auto& c = slowest[i];
    std::printf("  slow cycle #%-6llu    %.3f ms = safepoint %.3f + mark %.3f + sweep %.3f (+ rest); cause %s, %zu objects%s\n",
                static_cast<unsigned long long>(c.index), ms(c.pause_ns),
                ms(c.time_to_safepoint_ns + c.final_time_to_safepoint_ns), ms(c.mark_ns), ms(c.sweep_ns), c.cause,
                c.objects_marked, c.concurrent ? ", concurrent (both pauses)" : "");
  }
  std::printf("  heap verification     %s\n", report.summary().c_str());
  if (!opt.trace.empty()) {
    if (std::FILE* f = std::fopen(opt.trace.c_str(), "w")) {
      const std::string json = heap.chrome_trace_json();
      std::fwrite(json.data(), 1, json.size(), f);
      std::fclose(f);
      std::printf("  event trace           %s (open in ui.perfetto.dev)\n", opt.trace.c_str());
    } else {
      std::fprintf(stderr, "cannot write %s\n", opt.trace.c_str());
    }
  }
  return (failures.load() == 0 && report.ok) ? 0 : 1;
}
