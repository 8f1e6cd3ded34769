// shoal_concurrency_bench: the concurrency library against its C++ peers, every sample in
// a fresh process (fork), medians of --runs samples, wall time per operation with the
// process's CPU time and peak RSS beside it, and the ratio to the row's peer.
//
// Rows (one operation = what "ns/op" divides by):
//   lock/uncontended       acquire + release of one lock by one thread: shoal::Lock
//                          (LockHolder; the thread attached) vs std::mutex (lock_guard),
//                          in a process that has had a second thread (make_multithreaded)
//   lock/contended_T       T threads each add 1 to one shared counter under one lock,
//                          --lock-ops in total; shoal threads are attached mutators
//   pool/round_trip        submit one empty task and wait for it, one at a time (the
//                          latency of a hop to a worker and back): shoal::ThreadPool
//                          submit().get() vs tbb::task_group run()+wait() in a
//                          tbb::task_arena of the same size (the waiting thread may run
//                          the task itself in TBB: "helping"), vs a std::thread hand-off
//                          (std::promise/future per task)
//   pool/throughput        --tasks empty tasks submitted back to back, then all awaited
//   actor/round_trip       actor.call(trivial).get(): a message to an actor (its own
//                          thread, its own isolate) and the reply; peer: the same hop on a
//                          one-thread tbb::task_arena (enqueue + wait), and a
//                          mutex/condition-variable mailbox thread
//   scaling/alloc_tasks_T  --scale-tasks tasks, each building and checking a binary tree
//                          of depth --depth (allocation-heavy), on T = 1 .. --max-threads
//                          workers: shoal::ThreadPool with heap trees vs tbb task_group
//                          with new/delete trees (jemalloc is the process's malloc)
// Nothing Shoal-specific is added to the peers' loops, and no safepoint() is added to
// Shoal's.
//
// Usage: shoal_concurrency_bench [--runs N] [--lock-ops N] [--round-trips N] [--tasks N]
//                                [--scale-tasks N] [--depth D] [--max-threads T]
//                                [--only SUBSTRING]
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include "shoal/shoal.h"

namespace {

struct Options {
  int runs = 5;
  long lock_ops = 4'000'000;
  long round_trips = 20'000;
  long tasks = 200'000;
  long scale_tasks = 2'000;
  int depth = 10;
  unsigned max_threads = std::max(1u, std::thread::hardware_concurrency());
  std::string only;
};
Options opt;

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Sample {
  double wall_ns = 0, cpu_ns = 0, rss_mib = 0;
};

double cpu_ns_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

// Runs body() in a forked child and returns its wall time, CPU time and peak RSS.
Sample in_child(const std::function<void()>& body) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    close(fds[0]);
    const double c0 = cpu_ns_self();
    const uint64_t t0 = now_ns();
    body();
    Sample s;
    s.wall_ns = static_cast<double>(now_ns() - t0);
    s.cpu_ns = cpu_ns_self() - c0;
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    s.rss_mib = ru.ru_maxrss / 1024.0;
    if (write(fds[1], &s, sizeof s) != sizeof s) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  Sample s;
  const bool ok = read(fds[0], &s, sizeof s) == sizeof s;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "a benchmark child failed\n");
    std::exit(1);
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

struct Peer {
  std::string name;
  std::function<void()> body;
};

// One table row group: every peer `runs` times in fresh processes (rotating order).
void row(const std::string& name, long ops, const std::vector<Peer>& peers) {
  if (!opt.only.empty() && name.find(opt.only) == std::string::npos) return;
  std::vector<std::vector<Sample>> samples(peers.size());
  for (int r = 0; r < opt.runs; ++r)
    for (size_t k = 0; k < peers.size(); ++k) {
      const size_t i = (k + r) % peers.size();
      samples[i].push_back(in_child(peers[i].body));
    }
  double base = 0;
  for (size_t i = 0; i < peers.size(); ++i) {
    std::vector<double> wall, cpu, rss;
    for (auto& s : samples[i]) {
      wall.push_back(s.wall_ns / ops);
      cpu.push_back(s.cpu_ns / ops);
      rss.push_back(s.rss_mib);
    }
    const double w = median(wall);
    if (i == 0) base = w;
    std::printf("| %s | %s | %.1f | %.1f | %.1f | %.2f |\n", name.c_str(), peers[i].name.c_str(), w, median(cpu),
                median(rss), w / base);
    std::fflush(stdout);
  }
}

// --- lock ---

// glibc runs std::mutex without atomic instructions while a process has never had a
// second thread (__libc_single_threaded); a program that needs locks has threads. Both
// uncontended peers start (and join) one thread first, so both pay for real atomics.
void make_multithreaded() { std::thread([] {}).join(); }

void shoal_lock_uncontended() {
  make_multithreaded();
  shoal::Heap heap;
  shoal::MutatorScope attach(heap);
  shoal::Ref<shoal::Lock> lock = shoal::Lock::create();
  long counter = 0;
  for (long i = 0; i < opt.lock_ops; ++i) {
    shoal::LockHolder hold(*lock);
    ++counter;
  }
  if (counter != opt.lock_ops) std::abort();
}

void std_lock_uncontended() {
  make_multithreaded();
  std::mutex mu;
  long counter = 0;
  for (long i = 0; i < opt.lock_ops; ++i) {
    std::lock_guard<std::mutex> hold(mu);
    ++counter;
  }
  if (counter != opt.lock_ops) std::abort();
}

void shoal_lock_contended(unsigned threads) {
  shoal::Heap heap;
  shoal::Persistent<shoal::Lock> lock;
  {
    shoal::MutatorScope attach(heap);
    lock = shoal::Persistent<shoal::Lock>(heap, shoal::Lock::create());
  }
  long counter = 0;
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      shoal::MutatorScope attach(heap);
      shoal::Ref<shoal::Lock> l = lock.get();
      for (long i = 0; i < opt.lock_ops / threads; ++i) {
        shoal::LockHolder hold(*l);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  if (counter != opt.lock_ops / threads * threads) std::abort();
}

void std_lock_contended(unsigned threads) {
  std::mutex mu;
  long counter = 0;
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (long i = 0; i < opt.lock_ops / threads; ++i) {
        std::lock_guard<std::mutex> hold(mu);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  if (counter != opt.lock_ops / threads * threads) std::abort();
}

// --- pool ---

unsigned pool_threads() { return std::max(2u, opt.max_threads); }

void shoal_round_trip() {
  shoal::Heap heap;
  shoal::MutatorScope attach(heap);
  shoal::ThreadPool pool(heap, pool_threads());
  long sum = 0;
  for (long i = 0; i < opt.round_trips; ++i) sum += pool.submit([] { return 1; }).get();
  if (sum != opt.round_trips) std::abort();
}

void tbb_round_trip() {
  tbb::task_arena arena(static_cast<int>(pool_threads()));
  long sum = 0;
  arena.execute([&] {
    for (long i = 0; i < opt.round_trips; ++i) {
      tbb::task_group g;
      int r = 0;
      g.run([&] { r = 1; });
      g.wait();
      sum += r;
    }
  });
  if (sum != opt.round_trips) std::abort();
}

// A plain worker thread with a mutex + condition-variable queue (what one writes by hand).
class HandPool {
 public:
  explicit HandPool(unsigned n) {
    for (unsigned i = 0; i < n; ++i)
      threads_.emplace_back([this] {
        for (;;) {
          std::function<void()> f;
          {
            std::unique_lock<std::mutex> l(mu_);
            cv_.wait(l, [&] { return stop_ || !q_.empty(); });
            if (q_.empty()) return;
            f = std::move(q_.front());
            q_.pop_front();
          }
          f();
        }
      });
  }
  ~HandPool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> l(mu_);
      q_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

void hand_round_trip(unsigned threads) {
  HandPool pool(threads);
  long sum = 0;
  for (long i = 0; i < opt.round_trips; ++i) {
    auto p = std::make_shared<std::promise<int>>();
    auto f = p->get_future();
    pool.post([p] { p->set_value(1); });
    sum += f.get();
  }
  if (sum != opt.round_trips) std::abort();
}

void shoal_throughput() {
  shoal::Heap heap;
  shoal::MutatorScope attach(heap);
  shoal::ThreadPool pool(heap, pool_threads());
  std::atomic<long> done{0};
  for (long i = 0; i < opt.tasks; ++i) pool.execute([&] { done.fetch_add(1, std::memory_order_relaxed); });
  pool.shutdown();
  if (done != opt.tasks) std::abort();
}

void tbb_throughput() {
  tbb::task_arena arena(static_cast<int>(pool_threads()));
  std::atomic<long> done{0};
  arena.execute([&] {
    tbb::task_group g;
    for (long i = 0; i < opt.tasks; ++i) g.run([&] { done.fetch_add(1, std::memory_order_relaxed); });
    g.wait();
  });
  if (done != opt.tasks) std::abort();
}

// --- actor ---

void shoal_actor_round_trip() {
  shoal::IsolateGroup group;
  shoal::Actor actor(group, "echo", [] { return shoal::Value::from_int(0); });
  {
    shoal::MutatorScope attach(group.heap());
    long sum = 0;
    for (long i = 0; i < opt.round_trips; ++i) sum += actor.call([](shoal::Value, long x) { return x; }, 1L).get();
    if (sum != opt.round_trips) std::abort();
  }
  actor.shutdown();
}

void tbb_serial_round_trip() {
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena arena(1, 0);  // one worker, no slot reserved for the caller: the hop is real
  long sum = 0;
  for (long i = 0; i < opt.round_trips; ++i) {
    std::promise<long> p;
    auto f = p.get_future();
    arena.enqueue([&p] { p.set_value(1L); });
    sum += f.get();
  }
  if (sum != opt.round_trips) std::abort();
}

// --- scaling ---

struct Node {
  shoal::Member<Node> left, right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&Node::left, &Node::right);
  static constexpr const char* kName = "bench.Node";
};

shoal::Ref<Node> make_tree(int d) {
  shoal::Ref<Node> n = shoal::make<Node>();
  if (d > 0) {
    n.set(&Node::left, make_tree(d - 1));
    n.set(&Node::right, make_tree(d - 1));
  }
  return n;
}
long check(shoal::Ref<Node> n) { return n->left.get() ? 1 + check(n->left.get()) + check(n->right.get()) : 1; }

struct PlainNode {
  PlainNode *left = nullptr, *right = nullptr;
  int64_t value = 0;
};
PlainNode* make_plain(int d) {
  auto* n = new PlainNode;
  if (d > 0) {
    n->left = make_plain(d - 1);
    n->right = make_plain(d - 1);
  }
  return n;
}
long check(PlainNode* n) { return n->left ? 1 + check(n->left) + check(n->right) : 1; }
void free_plain(PlainNode* n) {
  if (!n) return;
  free_plain(n->left);
  free_plain(n->right);
  delete n;
}

void shoal_scaling(unsigned threads) {
  shoal::Heap heap;
  shoal::MutatorScope attach(heap);
  shoal::ThreadPool pool(heap, threads);
  std::vector<shoal::Future<long>> fs;
  fs.reserve(opt.scale_tasks);
  for (long i = 0; i < opt.scale_tasks; ++i) fs.push_back(pool.submit([] { return check(make_tree(opt.depth)); }));
  long sum = 0;
  for (auto& f : fs) sum += f.get();
  if (sum != opt.scale_tasks * ((1L << (opt.depth + 1)) - 1)) std::abort();
}

void tbb_scaling(unsigned threads) {
  // TBB caps its workers at hardware threads - 1 by default; the row wants `threads`
  // workers beside the (idle, waiting) main thread, as the Shoal pool has.
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, threads + 1);
  tbb::task_arena arena(static_cast<int>(threads), 0);
  std::atomic<long> sum{0};
  arena.execute([&] {
    tbb::task_group g;
    for (long i = 0; i < opt.scale_tasks; ++i)
      g.run([&] {
        PlainNode* t = make_plain(opt.depth);
        sum += check(t);
        free_plain(t);
      });
    g.wait();
  });
  if (sum != opt.scale_tasks * ((1L << (opt.depth + 1)) - 1)) std::abort();
}

long arg_long(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "missing value for %s\n", argv[i]);
    std::exit(2);
  }
  return std::atol(argv[++i]);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs") opt.runs = static_cast<int>(arg_long(i, argc, argv));
    else if (a == "--lock-ops") opt.lock_ops = arg_long(i, argc, argv);
    else if (a == "--round-trips") opt.round_trips = arg_long(i, argc, argv);
    else if (a == "--tasks") opt.tasks = arg_long(i, argc, argv);
    else if (a == "--scale-tasks") opt.scale_tasks = arg_long(i, argc, argv);
    else if (a == "--depth") opt.depth = static_cast<int>(arg_long(i, argc, argv));
    else if (a == "--max-threads") opt.max_threads = static_cast<unsigned>(arg_long(i, argc, argv));
    else if (a == "--only" && i + 1 < argc) opt.only = argv[++i];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("shoal_concurrency_bench: %u hardware threads, %d fresh processes per row (medians)\n\n",
              std::thread::hardware_concurrency(), opt.runs);
  std::printf("| row | peer | wall ns/op | CPU ns/op | peak RSS MiB | wall vs first |\n|---|---|---|---|---|---|\n");
  row("lock/uncontended", opt.lock_ops, {{"shoal::Lock", shoal_lock_uncontended}, {"std::mutex", std_lock_uncontended}});
  std::vector<unsigned> contended{2};
  if (opt.max_threads > 2) contended.push_back(opt.max_threads);
  for (unsigned t : contended)
    row("lock/contended_" + std::to_string(t), opt.lock_ops,
        {{"shoal::Lock", [t] { shoal_lock_contended(t); }}, {"std::mutex", [t] { std_lock_contended(t); }}});
  row("pool/round_trip", opt.round_trips,
      {{"shoal::ThreadPool", shoal_round_trip},
       {"tbb::task_group", tbb_round_trip},
       {"mutex+condvar pool", [] { hand_round_trip(pool_threads()); }}});
  row("pool/throughput", opt.tasks, {{"shoal::ThreadPool", shoal_throughput}, {"tbb::task_group", tbb_throughput}});
  row("actor/round_trip", opt.round_trips,
      {{"shoal::Actor", shoal_actor_round_trip},
       {"tbb::task_arena(1) enqueue", tbb_serial_round_trip},
       {"mutex+condvar thread", [] { hand_round_trip(1); }}});
  std::vector<unsigned> counts;
  for (unsigned t = 1; t < opt.max_threads; t *= 2) counts.push_back(t);
  counts.push_back(opt.max_threads);
  for (unsigned t : counts)
    row("scaling/alloc_tasks_" + std::to_string(t), opt.scale_tasks,
        {{"shoal::ThreadPool", [t] { shoal_scaling(t); }}, {"tbb::task_group+new/delete", [t] { tbb_scaling(t); }}});
  return 0;
}
