// Shared helpers for the classic GC benchmarks (shoal_gcbench, shoal_binary_trees): the
// allocator peers (glibc, jemalloc, mimalloc, Boehm GC), pause bookkeeping for Shoal and
// Boehm, medians and percentiles, and a small command-line parser.
//
// Peers (the same setup as bench/alloc_bench.cc):
//   glibc     glibc's own malloc/free, reached through dlsym on the libc.so.6 handle: the
//             process's malloc is jemalloc (bench/CMakeLists.txt orders the libraries so)
//             and libmimalloc exports __libc_malloc too.
//   jemalloc  mallocx / sdallocx (sized free).
//   mimalloc  mi_malloc / mi_free.
//   boehm     GC_MALLOC (GC_MALLOC_ATOMIC for pointer-free data). GC_INIT with default
//             settings; Debian's libgc is built with parallel marking, and with 2 cores
//             GC_get_parallel() is 1 (one helper marker thread plus the collecting
//             thread). The programs print the marker count. Worker threads register with
//             GC_register_my_thread (GC_THREADS without the pthread redirects).
#pragma once

#include <dlfcn.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <jemalloc/jemalloc.h>
#include <mimalloc.h>

#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>

#include "shoal/shoal.h"

namespace bench {

inline uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "fatal: %s\n", what);
  std::exit(1);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// Nearest-rank percentile (p in (0, 100]) of a sample; 0 for an empty sample.
inline uint64_t percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

// ---------------------------------------------------------------------------------------
// Pause summaries

struct PauseSummary {
  uint64_t collections = 0;
  uint64_t total_ns = 0;
  uint64_t max_ns = 0;
  uint64_t p99_ns = 0;
  uint64_t p50_ns = 0;
  uint64_t recorded = 0;  // pauses actually seen (can be < collections if records were lost)
  // Shoal: stopped threads' waits for a core after a pause ended (GcStats::resume_latency,
  // this window's share; bucket upper bounds, within 12.5 %). resumes == 0: not known.
  uint64_t resumes = 0, p99_resume_ns = 0, max_resume_ns = 0;
};

inline PauseSummary summarize(uint64_t collections, const std::vector<uint64_t>& pauses) {
  PauseSummary s;
  s.collections = collections;
  s.recorded = pauses.size();
  for (uint64_t p : pauses) {
    s.total_ns += p;
    s.max_ns = std::max(s.max_ns, p);
  }
  s.p99_ns = percentile(pauses, 99.0);
  s.p50_ns = percentile(pauses, 50.0);
  return s;
}

// ---------------------------------------------------------------------------------------
// glibc

using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*);
inline MallocFn g_glibc_malloc = nullptr;
inline FreeFn g_glibc_free = nullptr;

template <class Fn>
Fn libc_symbol(void* libc, const char* name) {
  void* sym = dlsym(libc, name);
  if (!sym) die("dlsym(libc.so.6) failed");
  Fn fn;
  static_assert(sizeof fn == sizeof sym);
  std::memcpy(&fn, &sym, sizeof fn);
  return fn;
}

inline void init_glibc() {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (!libc) die("dlopen(libc.so.6) failed");
  g_glibc_malloc = libc_symbol<MallocFn>(libc, "malloc");
  g_glibc_free = libc_symbol<FreeFn>(libc, "free");
}

// The shared object a symbol resolves to.
inline std::string library_of(const void* address) {
  Dl_info info;
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

inline std::string glibc_peer_library() {
  void* p = nullptr;
  std::memcpy(&p, &g_glibc_malloc, sizeof p);
  return library_of(p);
}
inline std::string process_malloc_library() { return library_of(dlsym(RTLD_DEFAULT, "malloc")); }

// Manual allocators: alloc(bytes) / release(p, bytes).
struct Glibc {
  static void* alloc(size_t n) { return g_glibc_malloc(n); }
  static void release(void* p, size_t) { g_glibc_free(p); }
};
struct Jemalloc {
  static void* alloc(size_t n) { return mallocx(n, 0); }
  static void release(void* p, size_t n) { sdallocx(p, n, 0); }
};
struct Mimalloc {
  static void* alloc(size_t n) { return mi_malloc(n); }
  static void release(void* p, size_t) { mi_free(p); }
};
// Boehm GC as an allocator: alloc only (the collector frees).
struct BoehmGc {
  static void* alloc(size_t n) { return GC_MALLOC(n); }
};

// The entries of `all` named in `wanted`, in the order of `wanted`; dies on an unknown
// name. Entry is any struct with a `name` (the --allocators option of the programs).
template <class Entry>
std::vector<Entry> select_entries(const std::vector<Entry>& all, const std::vector<std::string>& wanted) {
  std::vector<Entry> chosen;
  for (const std::string& w : wanted) {
    bool found = false;
    for (const Entry& e : all)
      if (e.name == w) {
        chosen.push_back(e);
        found = true;
      }
    if (!found) die("unknown allocator in --allocators");
  }
  return chosen;
}

// ---------------------------------------------------------------------------------------
// Boehm GC

// Pause bookkeeping through GC_set_on_collection_event. The callback runs with the GC
// lock held, so the writes below never race with each other; the main thread reads them
// between runs. A pause is GC_EVENT_PRE_STOP_WORLD -> GC_EVENT_POST_START_WORLD (stop the
// world, parallel mark, start the world). Boehm sweeps lazily, during later allocations,
// so its sweep is outside these pauses.
namespace boehm_detail {
inline constexpr size_t kMaxPauses = size_t{1} << 18;
inline uint64_t pauses[kMaxPauses];
inline std::atomic<uint64_t> pause_count{0};
inline uint64_t stop_start = 0;
inline void GC_CALLBACK on_event(GC_EventType e) {
  if (e == GC_EVENT_PRE_STOP_WORLD) {
    stop_start = now_ns();
  } else if (e == GC_EVENT_POST_START_WORLD) {
    const uint64_t i = pause_count.load(std::memory_order_relaxed);
    pauses[i % kMaxPauses] = now_ns() - stop_start;
    pause_count.store(i + 1, std::memory_order_release);
  }
}
}  // namespace boehm_detail

// Call once from main, before any other thread exists.
inline void boehm_init() {
  GC_INIT();
  GC_allow_register_threads();
  GC_start_mark_threads();  // no-op if the markers already run (they do after GC_INIT)
  GC_set_on_collection_event(boehm_detail::on_event);
}

// Markers including the collecting thread.
inline int boehm_markers() { return GC_get_parallel() + 1; }

// GC_get_gc_no() is unsynchronized; read it under the allocation lock.
inline uint64_t boehm_gc_no() {
  uint64_t n = 0;
  GC_call_with_alloc_lock(
      [](void* out) -> void* {
        *static_cast<uint64_t*>(out) = GC_get_gc_no();
        return nullptr;
      },
      &n);
  return n;
}

// Collections and pauses between construction and finish().
class BoehmWindow {
 public:
  BoehmWindow() : gc_no_(boehm_gc_no()), first_(boehm_detail::pause_count.load(std::memory_order_acquire)) {}
  PauseSummary finish() const {
    const uint64_t gcs = boehm_gc_no() - gc_no_;
    const uint64_t last = boehm_detail::pause_count.load(std::memory_order_acquire);
    std::vector<uint64_t> v;
    const uint64_t from = last - first_ > boehm_detail::kMaxPauses ? last - boehm_detail::kMaxPauses : first_;
    for (uint64_t i = from; i < last; ++i) v.push_back(boehm_detail::pauses[i % boehm_detail::kMaxPauses]);
    return summarize(gcs, v);
  }

 private:
  uint64_t gc_no_;
  uint64_t first_;
};

// Registers the current thread with Boehm for the scope (no-op for a registered thread).
class BoehmThread {
 public:
  BoehmThread() {
    if (GC_thread_is_registered()) return;
    GC_stack_base sb;
    if (GC_get_stack_base(&sb) != GC_SUCCESS || GC_register_my_thread(&sb) != GC_SUCCESS)
      die("GC_register_my_thread failed");
    registered_ = true;
  }
  ~BoehmThread() {
    if (registered_) GC_unregister_my_thread();
  }
  BoehmThread(const BoehmThread&) = delete;
  BoehmThread& operator=(const BoehmThread&) = delete;

 private:
  bool registered_ = false;
};

// ---------------------------------------------------------------------------------------
// Shoal

// The options of the process's one Shoal heap: the defaults (heap limit = physical
// memory, pacing gc_growth 1.0, min_gc_trigger 4 MiB, concurrent marking) unless
// --shoal-gc-growth, --shoal-min-trigger-mib, --shoal-soft-limit-mib or --shoal-stw
// changed them before the heap was first used.
inline shoal::HeapOptions& shoal_options() {
  static shoal::HeapOptions options{};
  return options;
}

// The one heap of the process. Never destroyed.
inline shoal::Heap& shoal_heap() {
  static shoal::Heap* heap = new shoal::Heap(shoal_options());
  return *heap;
}

// Handles the flags both programs share (the --shoal-* options and --max-others-cpu);
// true if argv[i] was one of them.
inline bool take_common_option(int& i, int argc, char** argv);

// One line of --shoal-cycle-log: a cycle's record, on stderr.
inline void print_cycle_record(const shoal::CycleRecord& r) {
  std::fprintf(stderr,
               "cycle %llu at %.1f ms: %s %s, in use %.1f MiB, marked %.1f MiB, swept live %.1f MiB, freed %.1f MiB, concurrent mark %.2f ms, "
               "allocated meanwhile %.1f MiB, mark assists %zu (objects %zu), throttle waits %zu; pauses us: initial %.0f (ttsp %.0f), final %.0f (ttsp %.0f), "
               "in-pause mark %.0f, sweep %.0f; remembered %zu; aging %s, kept young %.2f MiB, aged made old %.2f MiB; old %.1f -> %.1f MiB\n",
               static_cast<unsigned long long>(r.index), static_cast<double>(r.start_ns) / 1e6,
               r.young ? "young" : (r.full_for_yield ? "full (yield)" : "full"), r.cause, static_cast<double>(r.heap_in_use_bytes) / 1048576.0,
               static_cast<double>(r.bytes_marked) / 1048576.0,
               static_cast<double>(r.live_bytes) / 1048576.0, static_cast<double>(r.freed_bytes) / 1048576.0,
               static_cast<double>(r.concurrent_mark_ns) / 1e6,
               static_cast<double>(r.allocated_while_marking) / 1048576.0, r.mark_assists, r.assist_objects,
               r.throttle_waits, static_cast<double>(r.concurrent ? r.initial_pause_ns : r.pause_ns) / 1e3,
               static_cast<double>(r.time_to_safepoint_ns) / 1e3, static_cast<double>(r.final_pause_ns) / 1e3, static_cast<double>(r.final_time_to_safepoint_ns) / 1e3,
               static_cast<double>(r.mark_ns) / 1e3, static_cast<double>(r.sweep_ns) / 1e3, r.remembered,
               r.aging ? "on" : "off", static_cast<double>(r.bytes_kept_young) / 1048576.0,
               static_cast<double>(r.bytes_aged_promoted) / 1048576.0, static_cast<double>(r.old_bytes_before) / 1048576.0,
               static_cast<double>(r.old_bytes_survived) / 1048576.0);
}

// Collects every CycleRecord of a window. GcStats::recent holds only the last 256 cycles,
// so an unattached sampler thread (Heap::stats() needs no attachment and takes only the
// collector's stats lock) merges them every 20 ms; finish() merges the last ones.
class ShoalWindow {
 public:
  explicit ShoalWindow(shoal::Heap& heap) : heap_(heap) {
    const shoal::GcStats s = heap_.stats();
    first_collection_ = s.collections;  // cycle indices count from 1
    resume_at_start_ = s.resume_latency;
    sampler_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, std::chrono::milliseconds(20));
        merge_locked();
      }
    });
  }
  ~ShoalWindow() { stop_sampler(); }
  ShoalWindow(const ShoalWindow&) = delete;
  ShoalWindow& operator=(const ShoalWindow&) = delete;

  // Pauses of the window; cycles[] keeps the records for callers that want more.
  PauseSummary finish() {
    stop_sampler();
    std::lock_guard<std::mutex> lock(mu_);
    merge_locked();
    const uint64_t gcs = heap_.stats().collections - first_collection_;
    if (cycle_log()) print_cycles_locked();
    std::vector<uint64_t> pauses;
    for (const auto& [index, r] : cycles_) {
      if (r.concurrent) {  // two pauses: root snapshot, then termination + sweep
        pauses.push_back(r.initial_pause_ns);
        pauses.push_back(r.final_pause_ns);
      } else {
        pauses.push_back(r.pause_ns);
      }
    }
    PauseSummary summary = summarize(gcs, pauses);
    add_resume_latency(summary);
    return summary;
  }
  const std::map<uint64_t, shoal::CycleRecord>& cycles() const { return cycles_; }
  // --shoal-cycle-log: every cycle of every window, one line each, on stderr.
  static bool& cycle_log() {
    static bool on = false;
    return on;
  }

 private:
  // The window's share of the heap's resume-latency histogram: the difference of two
  // snapshots (a maximum cannot be subtracted: the highest bucket that grew stands in).
  void add_resume_latency(PauseSummary& summary) const {
    const shoal::PauseHistogram end = heap_.stats().resume_latency;
    shoal::PauseHistogram window;
    for (int b = 0; b < shoal::PauseHistogram::kBuckets; ++b) {
      const uint64_t n = end.buckets[b] - resume_at_start_.buckets[b];
      window.buckets[b] = n;
      window.count += n;
      if (n > 0) window.max_ns = std::min(end.max_ns, shoal::PauseHistogram::upper_bound_ns(b));
    }
    summary.resumes = window.count;
    summary.p99_resume_ns = window.percentile_ns(99);
    summary.max_resume_ns = window.max_ns;
  }

  void print_cycles_locked() const {
    for (const auto& [index, r] : cycles_) print_cycle_record(r);
  }
  void merge_locked() {
    const shoal::GcStats s = heap_.stats();
    for (const shoal::CycleRecord& r : s.recent)
      if (r.index > first_collection_) cycles_.emplace(r.index, r);
  }
  void stop_sampler() {
    if (!sampler_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    sampler_.join();
  }

  shoal::Heap& heap_;
  uint64_t first_collection_ = 0;
  shoal::PauseHistogram resume_at_start_;
  std::map<uint64_t, shoal::CycleRecord> cycles_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread sampler_;
};

// ---------------------------------------------------------------------------------------
// Command line

inline bool take_value(int& i, int argc, char** argv, std::string_view flag, std::string& out) {
  const std::string_view a = argv[i];
  if (a == flag) {
    if (i + 1 >= argc) die("missing value after a flag");
    out = argv[++i];
    return true;
  }
  if (a.size() > flag.size() && a.substr(0, flag.size()) == flag && a[flag.size()] == '=') {
    out = std::string(a.substr(flag.size() + 1));
    return true;
  }
  return false;
}

inline std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(sep, start);
    const std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

inline int to_int(const std::string& s) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0' || v < 0 || v > 1'000'000) die("bad number on the command line");
  return static_cast<int>(v);
}

// ---------------------------------------------------------------------------------------
// Interference from other processes (the benchmark machine is shared)
//
// A sample's "others" figure is the CPU time the whole machine was busy (/proc/stat)
// minus this process's own CPU time (getrusage, all threads: Boehm's markers, TBB's
// sweepers and the stats sampler included), as a percentage of all cores over the
// sample's wall time. With --max-others-cpu P, a sample whose figure exceeds P% (plus
// two clock ticks' worth, see tick_tolerance_pct) is discarded and run again (at most 10
// attempts, each after waiting for a quiet second).

struct CpuMark {
  uint64_t busy_ticks = 0;
  double self_s = 0;
  uint64_t wall_ns = 0;
};

inline CpuMark cpu_mark() {
  CpuMark m;
  if (std::FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long v[8] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8)
      m.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // all but idle and iowait
    std::fclose(f);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  m.self_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  m.wall_ns = now_ns();
  return m;
}

// Other processes' CPU use between a and b, percent of all cores.
inline double others_pct(const CpuMark& a, const CpuMark& b) {
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  const double wall_s = static_cast<double>(b.wall_ns - a.wall_ns) / 1e9;
  if (wall_s <= 0) return 0;
  const double machine_s = static_cast<double>(b.busy_ticks - a.busy_ticks) / ticks_per_s;
  return std::max(0.0, 100.0 * (machine_s - (b.self_s - a.self_s)) / (cores * wall_s));
}

// /proc/stat counts in clock ticks (10 ms): allow two ticks of error, which matters only
// for short samples (a 150 ms sample on 2 cores: 6.7%; a 5 s sample: 0.2%).
inline double tick_tolerance_pct(const CpuMark& a, const CpuMark& b) {
  const double cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  const double wall_s = std::max(1e-3, static_cast<double>(b.wall_ns - a.wall_ns) / 1e9);
  return 100.0 * 2.0 / static_cast<double>(sysconf(_SC_CLK_TCK)) / (cores * wall_s);
}

inline double& max_others_cpu() {
  static double pct = 0;  // 0: keep every sample
  return pct;
}

// Waits (at most 10 minutes) for a second in which other processes use at most `pct`.
inline void wait_quiet(double pct) {
  const uint64_t give_up = now_ns() + uint64_t{600} * 1'000'000'000;
  while (now_ns() < give_up) {
    const CpuMark a = cpu_mark();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (others_pct(a, cpu_mark()) <= pct) return;
  }
}

struct InterferenceLog {
  int discarded = 0;
  std::vector<double> kept;  // others_pct of every kept sample
};
inline InterferenceLog& interference_log() {
  static InterferenceLog log;
  return log;
}

// Runs `run` (returning a Sample) and records its interference; with --max-others-cpu,
// repeats it until a run stays under the limit.
template <class Run>
auto measured(Run&& run) {
  const double limit = max_others_cpu();
  for (int attempt = 1;; ++attempt) {
    if (limit > 0) wait_quiet(limit);
    const CpuMark a = cpu_mark();
    auto sample = run();
    const CpuMark b = cpu_mark();
    sample.others_pct = others_pct(a, b);
    if (limit <= 0 || sample.others_pct <= limit + tick_tolerance_pct(a, b) || attempt >= 10) {
      interference_log().kept.push_back(sample.others_pct);
      return sample;
    }
    ++interference_log().discarded;
  }
}

inline void print_interference() {
  const InterferenceLog& log = interference_log();
  std::vector<double> v = log.kept;
  std::sort(v.begin(), v.end());
  std::printf("\nInterference (other processes' CPU during a sample, %% of all cores): median %.1f%%, max %.1f%%",
              median(v), v.empty() ? 0.0 : v.back());
  if (max_others_cpu() > 0)
    std::printf("; limit %.1f%%, %d sample(s) discarded and re-run", max_others_cpu(), log.discarded);
  std::printf("\n");
}

inline bool take_common_option(int& i, int argc, char** argv) {
  std::string v;
  if (take_value(i, argc, argv, "--max-others-cpu", v)) {
    char* end = nullptr;
    const double pct = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || pct < 0) die("bad --max-others-cpu");
    max_others_cpu() = pct;
    return true;
  }
  if (take_value(i, argc, argv, "--shoal-gc-growth", v)) {
    char* end = nullptr;
    const double g = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !(g > 0.0)) die("bad --shoal-gc-growth");
    shoal_options().gc_growth = g;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-stw") {
    shoal_options().concurrent_marking = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-preemption") {
    shoal_options().async_preemption = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-cycle-log") {
    ShoalWindow::cycle_log() = true;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-mark-assists") {
    shoal_options().mark_assists = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-aging") {
    shoal_options().aging = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-adaptive-aging") {
    shoal_options().adaptive_aging = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-adaptive-generations") {
    shoal_options().adaptive_generations = false;
    return true;
  }
  if (std::string_view(argv[i]) == "--shoal-no-generations") {
    shoal_options().generational = false;
    return true;
  }
  if (take_value(i, argc, argv, "--shoal-min-trigger-mib", v)) {
    shoal_options().min_gc_trigger = static_cast<size_t>(to_int(v)) << 20;
    return true;
  }
  if (take_value(i, argc, argv, "--shoal-soft-limit-mib", v)) {
    shoal_options().soft_heap_limit = static_cast<size_t>(to_int(v)) << 20;
    return true;
  }
  if (take_value(i, argc, argv, "--shoal-heap-limit-mib", v)) {
    shoal_options().heap_limit = static_cast<size_t>(to_int(v)) << 20;
    return true;
  }
  if (take_value(i, argc, argv, "--shoal-idle-full-cycle-ms", v)) {  // 0: no idle full cycles
    shoal_options().idle_full_cycle_after = std::chrono::milliseconds(to_int(v));
    return true;
  }
  return false;
}

inline double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
inline double us(uint64_t ns) { return static_cast<double>(ns) / 1e3; }

// Prints the context block shared by both programs.
inline void print_context(const char* program) {
  std::printf("%s\n", program);
  std::printf("  process malloc     : %s\n", process_malloc_library().c_str());
  std::printf("  glibc peer malloc  : %s\n", glibc_peer_library().c_str());
  std::printf("  boehm markers      : %d (GC_get_parallel()+1; GC_MARKERS env overrides)\n", boehm_markers());
  std::printf("  hardware threads   : %u\n", std::thread::hardware_concurrency());
  std::printf("  shoal options      : gc_growth %.2f, min_gc_trigger %zu MiB, concurrent_marking %s, generational %s, "
              "soft limit %zu MiB (0 = none), heap limit %zu MiB (0 = physical memory)\n",
              shoal_options().gc_growth, shoal_options().min_gc_trigger >> 20,
              shoal_options().concurrent_marking ? "on" : "off (stop-the-world)",
              shoal_options().generational && shoal_options().concurrent_marking ? "on" : "off",
              shoal_options().soft_heap_limit >> 20, shoal_options().heap_limit >> 20);
}

}  // namespace bench

namespace bench {

// Where a window's Shoal pauses went: sums over its cycles.
struct ShoalBreakdown {
  uint64_t cycles = 0;
  uint64_t ttsp_ns = 0, max_ttsp_ns = 0, mark_ns = 0, sweep_ns = 0;
  uint64_t concurrent_mark_ns = 0;  // concurrent cycles: marking while the mutators ran
  uint64_t max_mark_ns = 0, max_sweep_ns = 0;
  size_t max_live_bytes = 0;
  uint64_t objects_marked = 0;
};

inline ShoalBreakdown breakdown(const std::map<uint64_t, shoal::CycleRecord>& cycles) {
  ShoalBreakdown b;
  for (const auto& [index, r] : cycles) {
    (void)index;
    ++b.cycles;
    b.ttsp_ns += r.time_to_safepoint_ns;
    b.max_ttsp_ns = std::max(b.max_ttsp_ns, r.time_to_safepoint_ns);
    b.mark_ns += r.mark_ns;
    b.concurrent_mark_ns += r.concurrent_mark_ns;
    b.sweep_ns += r.sweep_ns;
    b.max_mark_ns = std::max(b.max_mark_ns, r.mark_ns);
    b.max_sweep_ns = std::max(b.max_sweep_ns, r.sweep_ns);
    b.max_live_bytes = std::max(b.max_live_bytes, r.live_bytes);
    b.objects_marked += r.objects_marked;
  }
  return b;
}

}  // namespace bench

namespace bench {

// Heap sizes after the runs: Shoal's footprint (pages carved + large objects) now and at
// its peak, and Boehm's
// heap (GC_get_heap_size).
inline void print_heap_sizes() {
  const shoal::GcStats s = shoal_heap().stats();
  std::printf("\nHeap sizes at exit: shoal footprint %.1f MiB (%zu pages in use, %zu free; peak %.1f MiB), "
              "boehm heap %.1f MiB\n",
              static_cast<double>(s.footprint_bytes) / 1048576.0, s.pages_in_use, s.pages_free,
              static_cast<double>(s.peak_footprint_bytes) / 1048576.0,
              static_cast<double>(GC_get_heap_size()) / 1048576.0);
}

}  // namespace bench

namespace bench {

// One run of one allocator.
struct Sample {
  double ms = 0;
  uint64_t checksum = 0;
  double others_pct = 0;  // interference, see cpu_mark()
  PauseSummary pauses;  // Shoal and Boehm only
  ShoalBreakdown shoal; // Shoal only
};

inline double med(const std::vector<Sample>& v, double (*f)(const Sample&)) {
  std::vector<double> x;
  for (const Sample& s : v) x.push_back(f(s));
  return median(x);
}
inline double med_ms(const std::vector<Sample>& v) {
  return med(v, [](const Sample& s) { return s.ms; });
}

// Table of collections and pauses: medians over runs of each run's figure; "worst max" is
// the largest pause of all runs. `threads` < 0 leaves the threads column out.
inline void print_pause_header(bool with_threads) {
  std::printf("| collector |%s collections | total pause ms | pause share | p50 pause us | p99 pause us "
              "| max pause us | worst max us | p99 resume us | max resume us |\n",
              with_threads ? " threads |" : "");
  std::printf("|---|%s---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", with_threads ? "---:|" : "");
}
inline void print_pause_row(const std::string& name, int threads, const std::vector<Sample>& v) {
  uint64_t worst = 0;
  for (const Sample& s : v) worst = std::max(worst, s.pauses.max_ns);
  std::printf("| %s |", name.c_str());
  if (threads >= 0) std::printf(" %d |", threads);
  std::printf(" %.0f | %.1f | %.1f%% | %.0f | %.0f | %.0f | %.0f |",
              med(v, [](const Sample& s) { return static_cast<double>(s.pauses.collections); }),
              med(v, [](const Sample& s) { return ms(s.pauses.total_ns); }),
              100.0 * med(v, [](const Sample& s) { return ms(s.pauses.total_ns) / s.ms; }),
              med(v, [](const Sample& s) { return us(s.pauses.p50_ns); }),
              med(v, [](const Sample& s) { return us(s.pauses.p99_ns); }),
              med(v, [](const Sample& s) { return us(s.pauses.max_ns); }), us(worst));
  // Resume latency (Shoal only): medians of each run's p99 and max.
  if (v.empty() || v.front().pauses.resumes == 0) {
    std::printf(" - | - |\n");
  } else {
    std::printf(" %.0f | %.0f |\n", med(v, [](const Sample& s) { return us(s.pauses.p99_resume_ns); }),
                med(v, [](const Sample& s) { return us(s.pauses.max_resume_ns); }));
  }
}

// Where Shoal's pauses went (CycleRecord sums per run, medians over runs). "mark ms" is
// marking inside pauses; "conc. mark ms" marking while the mutators ran (concurrent
// cycles only); "mark ns / object" divides both by the objects marked.
inline void print_breakdown_header(bool with_threads) {
  std::printf("|%s ttsp ms | max ttsp us | mark ms | max mark us | conc. mark ms | sweep ms | max sweep us "
              "| peak live MiB | M objects marked | mark ns / object |\n",
              with_threads ? " threads |" : "");
  std::printf("|%s---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", with_threads ? "---:|" : "");
}
inline void print_breakdown_row(int threads, const std::vector<Sample>& v) {
  std::printf("|");
  if (threads >= 0) std::printf(" %d |", threads);
  std::printf(" %.1f | %.0f | %.1f | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f | %.1f |\n",
              med(v, [](const Sample& s) { return ms(s.shoal.ttsp_ns); }),
              med(v, [](const Sample& s) { return us(s.shoal.max_ttsp_ns); }),
              med(v, [](const Sample& s) { return ms(s.shoal.mark_ns); }),
              med(v, [](const Sample& s) { return us(s.shoal.max_mark_ns); }),
              med(v, [](const Sample& s) { return ms(s.shoal.concurrent_mark_ns); }),
              med(v, [](const Sample& s) { return ms(s.shoal.sweep_ns); }),
              med(v, [](const Sample& s) { return us(s.shoal.max_sweep_ns); }),
              med(v, [](const Sample& s) { return static_cast<double>(s.shoal.max_live_bytes) / 1048576.0; }),
              med(v, [](const Sample& s) { return static_cast<double>(s.shoal.objects_marked) / 1e6; }),
              med(v, [](const Sample& s) {
                const auto n = static_cast<double>(s.shoal.objects_marked);
                return n > 0 ? static_cast<double>(s.shoal.mark_ns + s.shoal.concurrent_mark_ns) / n : 0.0;
              }));
}

}  // namespace bench
