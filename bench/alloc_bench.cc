// shoal_alloc_bench: the small-object allocation fast path of Shoal against its peers,
// side by side in one run, 1 and 2 threads. docs/performance.md has the command line and
// the results.
//
// Every benchmark runs kBatch operations per google-benchmark step (KeepRunningBatch), so
// an "iteration" is one allocation (malloc peers: one malloc+free pair) and the Time
// column reads directly as wall-clock ns per allocation. With 2 threads google-benchmark
// divides the mean wall time by the iterations of both threads: the Time column is then
// the aggregate (throughput) cost, and threads * Time the cost per allocation seen by one
// thread. items_per_second is the aggregate rate.
//
// Benchmarks (name/<bytes>/real_time/threads:N):
//   shoal           inline fast path shoal::internal::allocate with a constant size: TLAB
//                   bump; the objects die at once, so the amortised cost of the slow path
//                   (TLAB refill, zeroing, stop-the-world collections at the 4 MiB pacing
//                   trigger) is part of the number. This is Shoal's headline number.
//   shoal_instance  the out-of-line public call shoal::allocate_instance(class id).
//   shoal_live1000  the inline path, each new object stored into a 1000-slot RefArray
//                   (round robin, write barrier included): a small live set survives
//                   every collection.
//   glibc           glibc malloc + free per allocation (glibc's own entry points: the
//                   process's malloc is jemalloc).
//   glibc_batch     1000 x malloc, then 1000 x free.
//   jemalloc        mallocx + sdallocx per allocation; jemalloc_batch as above.
//   mimalloc        mi_malloc + mi_free per allocation; mimalloc_batch as above.
//   boehm           GC_MALLOC, object dropped at once (Boehm collects as it goes).
//
// Shoal threads must not block while attached and running: a thread waiting in
// google-benchmark's start/stop barrier would hold up a collection that the other
// benchmark thread requests. ShoalBench therefore calls the KeepRunningBatch steps that
// can block inside shoal::run_native.
#include <dlfcn.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <benchmark/benchmark.h>
#include <jemalloc/jemalloc.h>
#include <mimalloc.h>

#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>

#include "shoal/internal/allocate.h"
#include "shoal/shoal.h"

#include "bench_common.h"

namespace {

constexpr size_t kBatch = 1000;

// ---------------------------------------------------------------------------------------
// Shoal

shoal::Heap& shoal_heap() {
  // One heap for the whole run, shared by all benchmark threads; deliberately never
  // destroyed (no exit-time ordering questions). Default options: min_gc_trigger 4 MiB.
  static shoal::Heap* heap = new shoal::Heap(shoal::HeapOptions{});
  return *heap;
}

// A kFixed class without reference fields whose instances occupy kBytes (header included).
template <size_t kBytes>
shoal::ClassId fixed_class() {
  static_assert(kBytes > shoal::kHeaderSize && kBytes % shoal::kObjectAlignment == 0);
  static const shoal::ClassId id = [] {
    shoal::ClassDescriptor d;
    d.name = "Bench" + std::to_string(kBytes);
    d.layout = shoal::Layout::kFixed;
    d.instance_size = static_cast<uint32_t>(kBytes - shoal::kHeaderSize);
    return shoal::define_class(d);
  }();
  return id;
}

// Attaches the calling benchmark thread for the benchmark's duration and runs the loop.
// Thread 0 reports the collections that happened during the run as counters.
class ShoalBench {
 public:
  explicit ShoalBench(benchmark::State& state) : state_(state), heap_(shoal_heap()), scope_(heap_) {}

  // setup() runs once, after the start barrier: anything that allocates must wait until
  // every benchmark thread is past the barrier (an allocation may start a collection).
  template <class Step, class Setup>
  void run(Step&& step, Setup&& setup) {
    const bool reporter = state_.thread_index() == 0;
    shoal::GcStats before;
    if (reporter) before = heap_.stats();
    const auto t0 = std::chrono::steady_clock::now();

    bool more = false;
    auto next = [&] { more = state_.KeepRunningBatch(static_cast<benchmark::IterationCount>(kBatch)); };
    shoal::run_native(next);  // the first step waits in the start barrier
    if (more) setup();
    while (more) {
      step();
      // iterations() >= max_iterations <=> the next step finishes the loop and waits in
      // the stop barrier, possibly for a thread that is collecting.
      if (state_.iterations() >= state_.max_iterations) shoal::run_native(next);
      else next();
    }

    if (reporter) {
      const shoal::GcStats after = heap_.stats();
      const double elapsed_ns =
          static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
      const double gcs = static_cast<double>(after.collections - before.collections);
      const double pause_ns = static_cast<double>(after.total_pause_ns - before.total_pause_ns);
      state_.counters["gcs"] = gcs;
      state_.counters["gc_pause_pct"] = elapsed_ns > 0 ? 100.0 * pause_ns / elapsed_ns : 0.0;
      state_.counters["gc_mean_pause_us"] = gcs > 0 ? pause_ns / gcs / 1000.0 : 0.0;
    }
    state_.SetItemsProcessed(state_.iterations());
  }
  template <class Step>
  void run(Step&& step) {
    run(std::forward<Step>(step), [] {});
  }

  shoal::Heap& heap() { return heap_; }

 private:
  benchmark::State& state_;
  shoal::Heap& heap_;
  shoal::MutatorScope scope_;
};

template <size_t kBytes>
void BM_ShoalInline(benchmark::State& state) {
  const uint64_t header_word = shoal::header::make(fixed_class<kBytes>(), 0);
  ShoalBench bench(state);
  bench.run([&] {
    for (size_t i = 0; i < kBatch; ++i) {
      shoal::Object* o = shoal::internal::allocate(kBytes, header_word);
      benchmark::DoNotOptimize(o);
    }
  });
}

template <size_t kBytes>
void BM_ShoalInstance(benchmark::State& state) {
  const shoal::ClassId id = fixed_class<kBytes>();
  ShoalBench bench(state);
  bench.run([&] {
    for (size_t i = 0; i < kBatch; ++i) {
      shoal::Object* o = shoal::allocate_instance(id);
      benchmark::DoNotOptimize(o);
    }
  });
}

template <size_t kBytes>
void BM_ShoalLiveSet(benchmark::State& state) {
  const uint64_t header_word = shoal::header::make(fixed_class<kBytes>(), 0);
  ShoalBench bench(state);
  // Declared after `bench`, so released while the thread is still attached.
  shoal::Persistent<shoal::RefArray> live;
  shoal::RefArray* slots = nullptr;
  bench.run(
      [&] {
        for (size_t i = 0; i < kBatch; ++i) {
          shoal::Object* o = shoal::internal::allocate(kBytes, header_word);
          slots->set(i, shoal::Value::from_object(o));
        }
      },
      [&] {
        live = shoal::Persistent<shoal::RefArray>(bench.heap(), shoal::RefArray::create(kBatch));
        slots = live.operator->();  // Shoal never moves objects
      });
}

// ---------------------------------------------------------------------------------------
// malloc-style peers

// glibc (through libc.so.6's own handle: malloc here is jemalloc, and libmimalloc exports
// __libc_malloc too), jemalloc and mimalloc: bench_common.h.
using bench::Glibc;
using bench::Jemalloc;
using bench::Mimalloc;

template <class Step>
void plain_loop(benchmark::State& state, Step&& step) {
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(kBatch))) step();
  state.SetItemsProcessed(state.iterations());
}

// malloc + free per iteration: the steady state of a thread-local cache.
template <class A, size_t kBytes>
void BM_MallocFree(benchmark::State& state) {
  plain_loop(state, [] {
    for (size_t i = 0; i < kBatch; ++i) {
      void* p = A::alloc(kBytes);
      benchmark::DoNotOptimize(p);
      A::release(p, kBytes);
    }
  });
}

// kBatch mallocs, then kBatch frees: the cache has to hand out and take back many objects.
template <class A, size_t kBytes>
void BM_MallocBatch(benchmark::State& state) {
  void* ptrs[kBatch];
  plain_loop(state, [&] {
    for (size_t i = 0; i < kBatch; ++i) {
      ptrs[i] = A::alloc(kBytes);
      benchmark::DoNotOptimize(ptrs[i]);
    }
    for (size_t i = 0; i < kBatch; ++i) A::release(ptrs[i], kBytes);
  });
}

// ---------------------------------------------------------------------------------------
// Boehm GC

// Each google-benchmark worker thread registers with the Boehm collector
// (bench::BoehmThread; the main thread is registered by GC_INIT).
template <size_t kBytes>
void BM_Boehm(benchmark::State& state) {
  bench::BoehmThread registration;
  plain_loop(state, [] {
    for (size_t i = 0; i < kBatch; ++i) {
      void* p = GC_MALLOC(kBytes);
      benchmark::DoNotOptimize(p);
    }
  });
}

// ---------------------------------------------------------------------------------------

void add(const std::string& name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1)->Threads(2)->UseRealTime();
}

template <size_t kBytes>
void register_size() {
  const std::string n = "/" + std::to_string(kBytes);
  add("shoal" + n, BM_ShoalInline<kBytes>);
  add("shoal_instance" + n, BM_ShoalInstance<kBytes>);
  add("shoal_live1000" + n, BM_ShoalLiveSet<kBytes>);
  add("glibc" + n, BM_MallocFree<Glibc, kBytes>);
  add("glibc_batch" + n, BM_MallocBatch<Glibc, kBytes>);
  add("jemalloc" + n, BM_MallocFree<Jemalloc, kBytes>);
  add("jemalloc_batch" + n, BM_MallocBatch<Jemalloc, kBytes>);
  add("mimalloc" + n, BM_MallocFree<Mimalloc, kBytes>);
  add("mimalloc_batch" + n, BM_MallocBatch<Mimalloc, kBytes>);
  add("boehm" + n, BM_Boehm<kBytes>);
}

}  // namespace

int main(int argc, char** argv) {
  GC_INIT();
  GC_allow_register_threads();
  bench::init_glibc();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  benchmark::AddCustomContext("process_malloc", bench::process_malloc_library());
  benchmark::AddCustomContext("glibc_peer_malloc", bench::glibc_peer_library());
  benchmark::AddCustomContext("batch", std::to_string(kBatch) + " operations per benchmark step");

  register_size<16>();
  register_size<32>();
  register_size<64>();

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
