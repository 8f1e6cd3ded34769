// A heap near its limit (HeapOptions::heap_limit): threads churn objects while keeping
// a live set, and the program prints, as one Markdown row, what a user of a bounded heap
// sees - wall and CPU time, peak RSS, collections and how many of them were
// stop-the-world at the limit, the longest pause, and OutOfMemory errors.
//
//   --mode sizes   random 24-1524-byte byte arrays (small objects of some 25 classes),
//                  a quarter of them stored into the thread's live table (random slot)
//   --mode large   random 8-20 KiB byte arrays (large objects, jemalloc), an eighth
//                  stored into a 64-slot table
//
// Each thread allocates --objects N objects (2 threads, 3,000,000 and 200,000 by
// default); --live-kib K sizes each thread's table in sizes mode. A thread that gets
// OutOfMemory stops and is counted. docs/performance.md ("The heap limit") has the
// results.
//
// Usage: shoal_heap_limit_bench [--mode sizes|large] [--limit-mib 64] [--threads 2]
//                               [--live-kib 12000] [--objects N]
#include <sys/resource.h>

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

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct Options {
  bool large = false;
  size_t limit_mib = 64;
  int threads = 2;
  size_t live_kib = 12000;
  size_t objects = 0;  // 0: the mode's default
};

uint64_t next(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

void churn(shoal::Heap& heap, const Options& o, int thread, std::atomic<int>& out_of_memory) {
  shoal::MutatorScope attach(heap);
  try {
    const size_t slots = o.large ? 64 : std::max<size_t>(1, o.live_kib * 1024 / 770);
    shoal::Persistent<shoal::RefArray> live(heap, shoal::RefArray::create(slots));
    uint64_t x = 88172645463325252ull + static_cast<uint64_t>(thread) * 7919;
    const size_t n = o.objects != 0 ? o.objects : (o.large ? 200000 : 3000000);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t r = next(x);
      const size_t bytes = o.large ? 8200 + (r >> 20) % 12000 : 24 + (r >> 20) % 1500;
      shoal::Ref<shoal::ByteArray> b = shoal::ByteArray::create(bytes);
      if (r % (o.large ? 8 : 4) == 0) live->set((r >> 8) % slots, b.value());
    }
  } catch (const shoal::OutOfMemory&) {
    out_of_memory.fetch_add(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--mode") {
      const std::string m = value();
      if (m != "sizes" && m != "large") {
        std::fprintf(stderr, "--mode is sizes or large\n");
        return 2;
      }
      o.large = m == "large";
    } else if (a == "--limit-mib") {
      o.limit_mib = std::strtoull(value(), nullptr, 10);
    } else if (a == "--threads") {
      o.threads = std::atoi(value());
    } else if (a == "--live-kib") {
      o.live_kib = std::strtoull(value(), nullptr, 10);
    } else if (a == "--objects") {
      o.objects = std::strtoull(value(), nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--mode sizes|large] [--limit-mib 64] [--threads 2] [--live-kib 12000] [--objects N]\n",
                   argv[0]);
      return 2;
    }
  }
  shoal::HeapOptions options;
  options.heap_limit = o.limit_mib << 20;
  shoal::Heap heap(options);
  std::atomic<int> out_of_memory{0};
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) threads.emplace_back([&, t] { churn(heap, o, t, out_of_memory); });
  for (std::thread& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const shoal::GcStats s = heap.stats();
  size_t at_limit = 0;
  uint64_t max_pause = 0;
  for (const shoal::CycleRecord& r : s.recent) {
    if (std::strcmp(r.cause, "heap-limit") == 0) ++at_limit;
    max_pause = std::max(max_pause, std::max({r.pause_ns, r.initial_pause_ns, r.final_pause_ns}));
  }
  std::printf("| mode | limit MiB | threads | wall s | CPU s | peak RSS MiB | collections | at the limit (of the last %zu) | max pause ms | OutOfMemory |\n",
              s.recent.size());
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %s | %zu | %d | %.2f | %.2f | %ld | %llu | %zu | %.2f | %d |\n", o.large ? "large" : "sizes",
              o.limit_mib, o.threads, wall, cpu, peak_rss_kib() / 1024, static_cast<unsigned long long>(s.collections),
              at_limit, static_cast<double>(max_pause) / 1e6, out_of_memory.load());
  return 0;
}
