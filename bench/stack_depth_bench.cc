// Pause versus stack depth: what a recursive interpreter built on Shoal sees. The VM
// prototypes Shoal is for keep their evaluation stack on the C++ stack, so a deep
// recursion is a deep conservative root set.
//
// One mutator thread recurses N frames deep. Each frame looks like an interpreter's eval
// frame: two heap references (a fresh node and its parent's), and 16 words of scalars
// (some small integers, some values that look like pointers but are not). At the bottom
// it walks its chain of nodes in a loop that neither allocates nor polls (asynchronous
// preemption stops it for each pause). Meanwhile the main thread runs concurrent cycles
// and then stop-the-world collections, and the program reports the initial pause, the
// final pause and the stop-the-world pause per depth - and, since the initial pause
// leaves stacks deeper than its budget to their own threads (gc/thread_stack_scan.cc),
// the deep thread's own scan (the time its handshake took it: CycleRecord::
// max_stack_scan_ns) and the scan phase (initial pause to last stack scanned).
// Every depth runs on a fresh heap, in a fresh child process.
//
// Usage: shoal_stack_depth_bench [--depths 10,100,1000,10000,30000] [--cycles N]
//                                [--stacks-in-pause]   (every stack in the initial pause:
//                                                       the behaviour before, to compare)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "shoal/shoal.h"

namespace {

struct FrameNode {
  shoal::Member<FrameNode> parent;
  int64_t depth = 0;
  static constexpr auto kRefs = shoal::refs(&FrameNode::parent);
  static constexpr const char* kName = "bench.FrameNode";
};

std::atomic<bool> g_ready{false}, g_stop{false};
std::atomic<uintptr_t> g_stack_bottom{0};

int64_t walk(shoal::Ref<FrameNode> n) {
  int64_t sum = 0;
  for (; n; n = n->parent.get()) sum += n->depth;
  return sum;
}

[[gnu::noinline]] int64_t recurse(int depth, shoal::Ref<FrameNode> parent) {
  volatile uint64_t scalars[16];
  for (int i = 0; i < 16; ++i)
    scalars[i] = (i % 3 == 0) ? static_cast<uint64_t>(depth * 16 + i) : 0x00007f0000000000ull + static_cast<uint64_t>(i * 4096 + depth);
  shoal::Ref<FrameNode> node = shoal::make<FrameNode>();
  node->depth = depth;
  node.set(&FrameNode::parent, parent);
  int64_t result;
  if (depth == 0) {
    uintptr_t here = reinterpret_cast<uintptr_t>(&result);
    g_stack_bottom = here;
    g_ready = true;
    int64_t acc = 0;
    while (!g_stop.load(std::memory_order_relaxed)) acc += walk(node);
    result = acc & 1;
  } else {
    result = recurse(depth - 1, node);
  }
  return result + static_cast<int64_t>(scalars[depth % 16] & 1) + node->depth;  // frames stay live
}

struct Row {
  int depth = 0;
  double stack_kib = 0;
  double initial_p50 = 0, initial_max = 0, final_p50 = 0, final_max = 0, stw_p50 = 0, stw_max = 0;
  double own_scan_p50 = 0, scan_phase_p50 = 0, initial_ttsp_p50 = 0;
};

double p50(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Row measure(int depth, int cycles, bool stacks_in_pause) {
  shoal::HeapOptions options;
  if (stacks_in_pause) options.initial_pause_stack_budget = SIZE_MAX;
  shoal::Heap heap(options);
  Row row;
  row.depth = depth;
  uintptr_t top = 0;
  std::thread worker([&] {
    shoal::MutatorScope attach(heap);
    uintptr_t here = reinterpret_cast<uintptr_t>(&here);
    top = here;
    (void)recurse(depth, nullptr);
  });
  shoal::MutatorScope attach(heap);
  while (!g_ready.load()) std::this_thread::yield();
  row.stack_kib = static_cast<double>(top - g_stack_bottom.load()) / 1024.0;
  for (int i = 0; i < cycles; ++i) {
    heap.start_collection();
    heap.wait_for_collection();
  }
  for (int i = 0; i < cycles; ++i) heap.collect();
  g_stop = true;
  shoal::run_native([&] { worker.join(); });
  std::vector<double> initial, fin, stw, own_scan, scan_phase, ttsp;
  for (const shoal::CycleRecord& r : heap.stats().recent) {
    if (r.concurrent) {
      initial.push_back(r.initial_pause_ns / 1000.0);
      fin.push_back(r.final_pause_ns / 1000.0);
      own_scan.push_back(r.max_stack_scan_ns / 1000.0);
      ttsp.push_back(r.time_to_safepoint_ns / 1000.0);
      scan_phase.push_back(r.stack_scan_ns / 1000.0);
    } else {
      stw.push_back(r.pause_ns / 1000.0);
    }
  }
  row.initial_p50 = p50(initial);
  row.final_p50 = p50(fin);
  row.stw_p50 = p50(stw);
  row.own_scan_p50 = p50(own_scan);
  row.scan_phase_p50 = p50(scan_phase);
  row.initial_ttsp_p50 = p50(ttsp);
  row.initial_max = initial.empty() ? 0 : *std::max_element(initial.begin(), initial.end());
  row.final_max = fin.empty() ? 0 : *std::max_element(fin.begin(), fin.end());
  row.stw_max = stw.empty() ? 0 : *std::max_element(stw.begin(), stw.end());
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> depths = {10, 100, 1000, 10000, 30000};
  int cycles = 20;
  bool stacks_in_pause = false;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (std::string(argv[i]) == "--stacks-in-pause") {
      stacks_in_pause = true;
    } else if (bench::take_value(i, argc, argv, "--depths", v)) {
      depths.clear();
      for (const std::string& d : bench::split(v)) depths.push_back(std::max(0, bench::to_int(d)));
    } else if (bench::take_value(i, argc, argv, "--cycles", v)) {
      cycles = std::max(1, bench::to_int(v));
    } else {
      std::fprintf(stderr, "usage: %s [--depths 10,100,1000,10000,30000] [--cycles N] [--stacks-in-pause]\n", argv[0]);
      return 2;
    }
  }
  std::printf("| depth (frames) | stack KiB | initial pause p50 / max us (time-to-safepoint p50) | final pause p50 / max us | stop-the-world p50 / max us | deep thread's own scan p50 us | scan phase p50 us |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int depth : depths) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      const Row r = measure(depth, cycles, stacks_in_pause);
      if (write(fds[1], &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r))) _exit(1);
      _exit(0);
    }
    close(fds[1]);
    Row r;
    const bool ok = read(fds[0], &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!ok) {
      std::printf("| %d | (child failed) | | | | | |\n", depth);
      continue;
    }
    std::printf("| %d | %.0f | %.0f / %.0f (%.0f) | %.0f / %.0f | %.0f / %.0f | %.0f | %.0f |\n", r.depth, r.stack_kib,
                r.initial_p50, r.initial_max, r.initial_ttsp_p50, r.final_p50, r.final_max, r.stw_p50, r.stw_max, r.own_scan_p50,
                r.scan_phase_p50);
    std::fflush(stdout);
  }
  return 0;
}
