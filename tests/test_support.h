// Shared helpers for the test suite.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "heap/heap_impl.h"
#include "shoal/shoal.h"

namespace shoal::test {

// A managed struct used across tests: a binary node with a payload.
struct Node {
  Member<Node> left;
  Member<Node> right;
  int64_t value = 0;
  static constexpr auto kRefs = refs(&Node::left, &Node::right);
  static constexpr const char* kName = "test.Node";
};

// Pointers the conservative scanner cannot see: tests keep them to ask later whether an
// object was freed, without keeping it alive themselves.
class HiddenPtr {
 public:
  HiddenPtr() = default;
  explicit HiddenPtr(const void* p) : bits_(reinterpret_cast<uintptr_t>(p) ^ kMask) {}
  uintptr_t address() const { return bits_ ^ kMask; }
  template <class T = void>
  T* get() const { return reinterpret_cast<T*>(address()); }

 private:
  static constexpr uintptr_t kMask = 0xa5a5a5a5a5a5a5a5ull;
  uintptr_t bits_ = kMask;
};

// Overwrites a stretch of dead stack below the caller, so stale copies of pointers from
// earlier calls do not act as conservative roots.
[[gnu::noinline]] inline void clobber_stack() {
  volatile char buffer[16384];
  for (size_t i = 0; i < sizeof(buffer); ++i) buffer[i] = 0;
  asm volatile("" : : "r"(buffer) : "memory");
}

// Runs f in a frame of its own below the caller's, so the temporaries it leaves behind
// are not in the caller's frame; clobber_stack() then wipes them. Together they let a
// test drop its last reference to an object for real under conservative scanning.
template <class F>
[[gnu::noinline]] void in_own_frame(F&& f) {
  f();
  asm volatile("" ::: "memory");
}

// True if the object at `address` is still allocated (small or large). Only reliable
// while no other thread allocates. Not inlined: the unhidden address must not linger in
// the caller's frame, where it would act as a conservative root.
[[gnu::noinline]] inline bool is_allocated(Heap& heap, uintptr_t address) {
  internal::HeapImpl& h = heap.impl();
  if (h.pages.contains(address)) {
    if (!h.pages.is_carved(address)) return false;
    return h.pages.page_of(address).object_containing(address) != nullptr;
  }
  bool found = false;
  h.large.for_each([&](internal::LargeObject& l) { found |= (address >= l.begin() && address < l.end()); });
  return found;
}
[[gnu::noinline]] inline bool is_allocated(Heap& heap, const HiddenPtr& p) { return is_allocated(heap, p.address()); }

// Holds a heap's concurrent marker right after it traces `target`, so a test can mutate
// the graph at exactly that point (the lost-object interleavings). Usage:
//   MarkerPause pause(heap, root.object());
//   collector.start_concurrent_cycle_for_testing(...);
//   pause.wait_until_held();   // root is black now, its children grey
//   ...mutate...
//   pause.release();
class MarkerPause {
 public:
  // Hold the marker as it takes a cycle over from its initial pause, before it traces
  // anything (allocating threads' assists may trace the snapshot meanwhile).
  struct BeforeTracing {};
  // target null: hold after the first object traced.
  MarkerPause(Heap& heap, Object* target) : collector_(heap.impl().collector), state_(std::make_shared<State>()) {
    // The marker thread keeps its copy of the hook for the whole cycle, which may outlive
    // this object: the hook owns the state it uses.
    collector_.set_concurrent_trace_hook([state = state_, target](Object* traced) {
      if (!target || traced == target) hold(*state);
    });
  }
  MarkerPause(Heap& heap, BeforeTracing)
      : collector_(heap.impl().collector), state_(std::make_shared<State>()), before_tracing_(true) {
    collector_.set_before_concurrent_mark_hook_for_testing([state = state_] { hold(*state); });
  }
  ~MarkerPause() {
    release();
    if (before_tracing_) collector_.set_before_concurrent_mark_hook_for_testing(nullptr);
    else collector_.set_concurrent_trace_hook(nullptr);
  }
  // Waits (in the native state) until the marker has stopped where it was asked to.
  void wait_until_held() {
    run_native([&] {
      std::unique_lock<std::mutex> lock(state_->mu);
      state_->cv.wait(lock, [&] { return state_->held; });
    });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->released = true;
    }
    state_->cv.notify_all();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool held = false, released = false;
  };
  // On the marker thread: holds it once, until release().
  static void hold(State& state) {
    std::unique_lock<std::mutex> lock(state.mu);
    if (state.held) return;
    state.held = true;
    state.cv.notify_all();
    state.cv.wait(lock, [&] { return state.released; });
  }
  internal::Collector& collector_;
  std::shared_ptr<State> state_;
  bool before_tracing_ = false;
};

// A thread attached to `heap` that keeps entering and leaving run_native until the
// object goes (the destructor joins it, in native when the caller is attached): a
// handshake finds it in native - the requester runs the operation for it - or on its
// way out, where it runs the operation itself.
class ThreadLeavingNative {
 public:
  explicit ThreadLeavingNative(Heap& heap)
      : thread_([this, &heap] {
          MutatorScope attach(heap);
          ready_ = true;
          while (!done_) run_native([] {});
        }) {
    while (!ready_) std::this_thread::yield();
  }
  ~ThreadLeavingNative() {
    done_ = true;
    if (current_heap()) run_native([&] { thread_.join(); });
    else thread_.join();
  }
  ThreadLeavingNative(const ThreadLeavingNative&) = delete;
  ThreadLeavingNative& operator=(const ThreadLeavingNative&) = delete;

 private:
  std::atomic<bool> ready_{false}, done_{false};
  std::thread thread_;
};

// A test run twice: with concurrent cycles and stop-the-world (the parameter), with the
// verifier after every cycle. Instantiate with
//   INSTANTIATE_TEST_SUITE_P(Cycles, MyTest, ::testing::Values(false, true), cycle_kind_name);
class CycleKindTest : public ::testing::TestWithParam<bool> {
 protected:
  HeapOptions options() const {
    HeapOptions o;
    o.concurrent_marking = GetParam();
    o.verify_after_gc = true;
    return o;
  }
  // One full cycle of the kind under test.
  static void cycle(Heap& heap) {
    if (heap.options().concurrent_marking) {
      heap.start_collection();
      heap.wait_for_collection();
    } else {
      heap.collect();
    }
  }
};
#if defined(__linux__)
// The names of the process's threads (/proc/self/task/*/comm).
inline std::set<std::string> thread_names() {
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}
#endif

inline std::string cycle_kind_name(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "Concurrent" : "StopTheWorld";
}

// Class-table classes the tests define at run time.
// A kFixed class: `payload` bytes after the header, reference slots at `ref_offsets`.
inline ClassId define_fixed_class(std::string name, uint32_t payload, std::vector<uint32_t> ref_offsets = {}) {
  ClassDescriptor d;
  d.name = std::move(name);
  d.instance_size = payload;
  d.ref_offsets = std::move(ref_offsets);
  return define_class(d);
}
// A kCustom layout: payload word 0 holds a count n, then n slots of which only every
// other one (0, 2, 4, ...) holds a reference.
inline size_t every_other_slot_size(const Object* o) { return 16 + 8 * *static_cast<const uint64_t*>(o->payload()); }
inline void every_other_slot_trace(const Object* o, SlotVisitor& v) {
  const auto* words = static_cast<const uint64_t*>(o->payload());
  for (uint64_t i = 0; i < words[0]; i += 2) v.visit(reinterpret_cast<const Slot*>(words + 1)[i]);
}
inline ClassId define_every_other_slot_class(std::string name) {
  ClassDescriptor d;
  d.name = std::move(name);
  d.layout = Layout::kCustom;
  d.size = every_other_slot_size;
  d.trace = every_other_slot_trace;
  return define_class(d);
}

// Isolate group options for the runtime tests.
inline IsolateGroupOptions share_everything_options() {
  IsolateGroupOptions o;
  o.share_everything = true;
  return o;
}
inline IsolateGroupOptions checked_reads_options() {
  IsolateGroupOptions o;
  o.checked_reads = true;
  return o;
}
inline IsolateGroupOptions small_trigger_options() {
  IsolateGroupOptions o;
  o.heap.min_gc_trigger = 1 << 20;
  return o;
}
inline IsolateGroupOptions torture_options(uint32_t interval) {
  IsolateGroupOptions o;
  o.heap.gc_torture_interval = interval;
  return o;
}

// Runs f on a thread of its own, attached to `heap`, and joins it: what f built and
// dropped is garbage for certain once it returns (no stale copy on this thread's
// stack, which the collector scans conservatively).
template <class F>
void on_helper_thread(Heap& heap, F&& f) {
  std::thread t([&] {
    MutatorScope a(heap);
    f();
  });
  run_native([&] { t.join(); });
}

// Polls `done` every 10 ms for up to 20 s, sleeping in run_native (so collections go
// ahead meanwhile); what `done` returned last.
template <class F>
bool eventually(F&& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    run_native([] { std::this_thread::sleep_for(std::chrono::milliseconds(10)); });
  }
  return done();
}

// A heap plus this thread attached to it.
class HeapTest : public ::testing::Test {
 protected:
  void SetUp() override { make_heap(options()); }
  virtual HeapOptions options() { return HeapOptions{}; }
  void make_heap(HeapOptions o) {
    scope_.reset();
    heap_ = std::make_unique<Heap>(o);
    scope_.emplace(*heap_);
  }
  void TearDown() override {
    scope_.reset();
    heap_.reset();
  }
  Heap& heap() { return *heap_; }
  void expect_heap_ok() {
    VerifyReport r = heap().verify();
    EXPECT_TRUE(r.ok) << r.summary();
  }

  std::unique_ptr<Heap> heap_;
  std::optional<MutatorScope> scope_;
};

// HeapTest with the verifier after every collection.
class VerifiedHeapTest : public HeapTest {
 protected:
  HeapOptions options() override {
    HeapOptions o;
    o.verify_after_gc = true;
    return o;
  }
};

// Builds a linked list of n nodes with values 0..n-1 (head holds n-1).
inline Ref<Node> make_list(size_t n) {
  Ref<Node> head;
  for (size_t i = 0; i < n; ++i) {
    Ref<Node> node = make<Node>();
    node->value = static_cast<int64_t>(i);
    node.set(&Node::left, head);
    head = node;
  }
  return head;
}

inline size_t list_length_checked(Ref<Node> head) {
  size_t n = 0;
  int64_t expected = -1;
  for (Ref<Node> p = head; p; p = p->left.get()) {
    if (expected >= 0 && p->value != expected) return SIZE_MAX;
    expected = p->value - 1;
    ++n;
  }
  return n;
}

// A complete binary tree of the given depth; values are node counts of subtrees.
inline Ref<Node> make_tree(int depth) {
  Ref<Node> n = make<Node>();
  if (depth > 0) {
    n.set(&Node::left, make_tree(depth - 1));
    n.set(&Node::right, make_tree(depth - 1));
  }
  n->value = depth;
  return n;
}

inline int64_t check_tree(Ref<Node> n, int depth) {
  if (!n || n->value != depth) return -1;
  if (depth == 0) return (n->left.get() || n->right.get()) ? -1 : 1;
  const int64_t l = check_tree(n->left.get(), depth - 1);
  const int64_t r = check_tree(n->right.get(), depth - 1);
  return (l < 0 || r < 0) ? -1 : l + r + 1;
}

// The lost-object interleaving for one deleting store, on a fresh concurrent heap with
// the verifier on: anchor -> x -> (x.left) the holder `build` returns, through which
// alone a 5-node list is reachable (`build` gets the list to place). The marker holds
// after tracing x (x black, the holder grey, the list white); `take` deletes the path
// to the list, given the holder, and returns the list, which then moves into black x.
// Without shading the deleted value the list is freed: the checks below fail.
template <class Build, class Take>
void expect_deleted_value_shaded(Build build, Take take) {
  HeapOptions o;
  o.concurrent_marking = true;
  o.verify_after_gc = true;
  o.marker_threads = 1;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> anchor(heap, make<Node>());
  Ref<Node> x = make<Node>();
  anchor.get().set(&Node::left, x);
  HiddenPtr list_hidden;
  in_own_frame([&] {
    Ref<Node> list = make_list(5);
    list_hidden = HiddenPtr(list.object());
    write(x.object(), x->left.slot(), build(list));  // (any object in a Node field)
  });
  clobber_stack();
  MarkerPause pause(heap, x.object());
  heap.start_collection();
  pause.wait_until_held();
  in_own_frame([&] {
    Ref<Node> list = take(x->left.value());
    ASSERT_TRUE(list);
    x.set(&Node::right, list);  // into the black object
  });
  pause.release();
  heap.wait_for_collection();
  EXPECT_NO_THROW(heap.collect());  // verify_after_gc: a freed list throws here
  EXPECT_TRUE(is_allocated(heap, list_hidden));
  EXPECT_EQ(list_length_checked(x->right.get()), 5u);
}

}  // namespace shoal::test
