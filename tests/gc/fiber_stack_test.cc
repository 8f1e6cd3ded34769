// Fibers (gc/fiber_stacks.h): a thread that runs code on stacks of its own with
// makecontext/swapcontext. Objects that only a suspended fiber's stack refers to must
// survive collections, and collections that run while the thread is on a fiber stack
// must scan that stack (not the range between it and the thread's own stack).
#include <ucontext.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "tests/test_support.h"

// Under ThreadSanitizer the switches are announced with its fiber API, so it follows the
// thread from stack to stack.
#if defined(__SANITIZE_THREAD__)
#define SHOAL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHOAL_TEST_TSAN 1
#endif
#endif
#if defined(SHOAL_TEST_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace shoal::test {
namespace {

constexpr size_t kFiberStackBytes = 256 * 1024;

#if defined(SHOAL_TEST_TSAN)
void* tsan_current_fiber() { return __tsan_get_current_fiber(); }
void* tsan_create_fiber() { return __tsan_create_fiber(0); }
void tsan_destroy_fiber(void* f) { __tsan_destroy_fiber(f); }
void tsan_switch_to(void* f) { __tsan_switch_to_fiber(f, 0); }
#else
void* tsan_current_fiber() { return nullptr; }
void* tsan_create_fiber() { return nullptr; }
void tsan_destroy_fiber(void*) {}
void tsan_switch_to(void*) {}
#endif

// One fiber on a malloc'ed stack. The body runs on it; yield_to_caller() switches back.
// Tests keep a Fiber on the C++ heap, as programs usually do: its saved registers are
// then not on a scanned stack.
class Fiber {
 public:
  explicit Fiber(std::function<void(Fiber&)> body) : body_(std::move(body)), stack_(new char[kFiberStackBytes]) {
    getcontext(&fiber_);
    fiber_.uc_stack.ss_sp = stack_.get();
    fiber_.uc_stack.ss_size = kFiberStackBytes;
    fiber_.uc_link = nullptr;  // the body never returns: entry() switches away
    const uintptr_t self = reinterpret_cast<uintptr_t>(this);
    makecontext(&fiber_, reinterpret_cast<void (*)()>(&Fiber::entry), 2, static_cast<unsigned>(self >> 32),
                static_cast<unsigned>(self & 0xffffffffu));
  }
  ~Fiber() { tsan_destroy_fiber(tsan_fiber_); }
  void* stack_base() const { return stack_.get() + kFiberStackBytes; }
  bool finished() const { return finished_; }

  // From the caller's stack: run the fiber until it yields or ends.
  void resume() {
    tsan_caller_ = tsan_current_fiber();
    if (current_heap()) switch_stack(stack_base(), &caller_, sizeof caller_);
    tsan_switch_to(tsan_fiber_);
    swapcontext(&caller_, &fiber_);
    // Back on the caller's stack (the fiber yielded, or ended and returned here).
  }
  // From the fiber's stack: back to whoever resumed it.
  void yield_to_caller() {
    if (current_heap()) switch_stack(nullptr, &fiber_, sizeof fiber_);
    tsan_switch_to(tsan_caller_);
    swapcontext(&fiber_, &caller_);
  }

 private:
  static void entry(unsigned hi, unsigned lo) {
    Fiber* f = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | lo);
    f->body_(*f);
    f->finished_ = true;
    if (Heap* heap = current_heap()) {
      switch_stack(nullptr);                // back to the caller's stack...
      heap->forget_stack(f->stack_base());  // ...and this one is dead from now on
    }
    // Switch away for good instead of returning through uc_link: a return would pop
    // TSan's shadow call stack of the fiber it has already switched to (and crash it).
    tsan_switch_to(f->tsan_caller_);
    swapcontext(&f->fiber_, &f->caller_);  // never resumed
  }

  std::function<void(Fiber&)> body_;
  std::unique_ptr<char[]> stack_;
  ucontext_t fiber_{}, caller_{};
  void* tsan_fiber_ = tsan_create_fiber();
  void* tsan_caller_ = nullptr;
  bool finished_ = false;
};

HeapOptions verified() {
  HeapOptions o;
  o.verify_after_gc = true;
  return o;
}

// Churns the heap so that freed cells are reused: a freed list's nodes get overwritten.
void churn(Heap& heap) {
  for (int round = 0; round < 3; ++round) {
    in_own_frame([] {
      for (int i = 0; i < 20000; ++i) make<Node>()->value = -1;
    });
    clobber_stack();
    heap.collect();
  }
}

// A concurrent cycle that leaves the thread's stack to be scanned after its initial
// pause (gc/thread_stack_scan.cc): the thread switches to a fiber before its scan, so the
// stack it leaves becomes a suspended stack the initial pause never saw. switch_stack
// scans it first; without that, the list only that stack holds would be freed.
TEST(FiberStackTest, StackLeftBeforeItsScanIsScannedBySwitchStack) {
  HeapOptions o = verified();
  o.poison_freed_memory = true;
  o.initial_pause_stack_budget = 0;  // every stack after the initial pause
  o.min_gc_trigger = size_t{256} << 20;
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<bool> on_fiber{false};
  heap.impl().collector.set_before_stack_scan_hook_for_testing([&] {
    while (!on_fiber.load()) std::this_thread::yield();
  });
  auto fiber = std::make_unique<Fiber>([&](Fiber& self) {
    on_fiber = true;              // the scans may start now: this thread is on the fiber
    heap.wait_for_collection();   // the cycle runs to its end
    self.yield_to_caller();
  });
  Ref<Node> list = make_list(50);  // only this (the thread's own) stack refers to it
  const HiddenPtr hidden(list.object());
  heap.start_collection(CollectionScope::kFull);
  EXPECT_TRUE(internal::current_thread()->stack_scan_pending.load());
  fiber->resume();  // leaves this stack while its scan is pending
  heap.impl().collector.set_before_stack_scan_hook_for_testing(nullptr);
  EXPECT_TRUE(is_allocated(heap, hidden));
  EXPECT_EQ(list_length_checked(list), 50u);
  fiber->resume();  // let it end
  EXPECT_TRUE(heap.verify().ok);
}

TEST(FiberStackTest, SuspendedFiberKeepsItsObjects) {
  Heap heap(verified());
  MutatorScope attach(heap);
  size_t length_after = 0;
  HiddenPtr hidden;
  auto fiber = std::make_unique<Fiber>([&](Fiber& self) {
    Ref<Node> list = make_list(50);  // only this fiber's stack refers to it
    hidden = HiddenPtr(list.object());
    self.yield_to_caller();
    length_after = list_length_checked(list);
    asm volatile("" : : "r"(list.object()) : "memory");
  });
  fiber->resume();  // runs until the yield
  ASSERT_FALSE(fiber->finished());
  EXPECT_EQ(heap.impl().roots.suspended_stack_count(), 1u);
  churn(heap);  // the fiber is suspended: its stack is a root
  EXPECT_TRUE(is_allocated(heap, hidden));
  fiber->resume();  // back into the fiber: it checks its list and ends
  ASSERT_TRUE(fiber->finished());
  EXPECT_EQ(length_after, 50u);
  EXPECT_EQ(heap.impl().roots.suspended_stack_count(), 0u) << "a finished fiber's stack is still a root";
  EXPECT_TRUE(heap.verify().ok);
}

TEST(FiberStackTest, CollectionsWhileOnTheFiberStackKeepBothStacks) {
  Heap heap(verified());
  MutatorScope attach(heap);
  Ref<Node> caller_list = make_list(40);  // on the thread's own stack, suspended below
  size_t fiber_length = 0;
  auto fiber = std::make_unique<Fiber>([&](Fiber&) {
    Ref<Node> mine = make_list(30);
    churn(heap);  // collections scan this fiber stack and the suspended thread stack
    fiber_length = list_length_checked(mine);
    asm volatile("" : : "r"(mine.object()) : "memory");
  });
  fiber->resume();
  ASSERT_TRUE(fiber->finished());
  EXPECT_EQ(fiber_length, 30u);
  EXPECT_EQ(list_length_checked(caller_list), 40u);
  EXPECT_TRUE(heap.verify().ok);
}

TEST(FiberStackTest, FiberResumedOnAnotherThread) {
  Heap heap(verified());
  size_t length_after = 0;
  HiddenPtr hidden;
  auto fiber = std::make_unique<Fiber>([&](Fiber& self) {
    Ref<Node> list = make_list(25);
    hidden = HiddenPtr(list.object());
    self.yield_to_caller();  // suspended by thread 1, resumed by thread 2
    length_after = list_length_checked(list);
    asm volatile("" : : "r"(list.object()) : "memory");
  });
  std::thread([&] {
    MutatorScope attach(heap);
    fiber->resume();
  }).join();
  {
    MutatorScope attach(heap);
    churn(heap);  // no thread runs the fiber: its stack is a root of the heap
    EXPECT_TRUE(is_allocated(heap, hidden));
  }
  std::thread([&] {
    MutatorScope attach(heap);
    fiber->resume();
  }).join();
  EXPECT_TRUE(fiber->finished());
  EXPECT_EQ(length_after, 25u);
}

// A thread that detaches while it runs on a fiber stack leaves no record of its own
// stack behind (an exited thread's stack must never be scanned).
TEST(FiberStackTest, DetachingOnAFiberForgetsTheThreadsOwnStack) {
  Heap heap(verified());
  MutatorScope* scope = nullptr;
  auto fiber = std::make_unique<Fiber>([&](Fiber& self) {
    delete scope;  // detach here, on the fiber stack
    self.yield_to_caller();
  });
  std::thread([&] {
    scope = new MutatorScope(heap);
    fiber->resume();  // records this thread's own stack as suspended; detaches inside
  }).join();
  MutatorScope attach(heap);
  EXPECT_EQ(heap.impl().roots.suspended_stack_count(), 0u) << "an exited thread's stack is still a root";
  heap.collect();  // would scan the exited thread's stack
  EXPECT_TRUE(heap.verify().ok);
}

// Attaching while on a fiber stack would make the thread's scanned range run from the
// fiber's stack pointer to the thread's own stack base: refused.
TEST(FiberStackTest, AttachingOnAFiberStackIsRefused) {
  Heap heap(verified());
  bool refused = false;
  auto fiber = std::make_unique<Fiber>([&](Fiber&) {
    try {
      MutatorScope attach(heap);
    } catch (const ThreadStateError&) {
      refused = true;
    }
  });
  fiber->resume();
  EXPECT_TRUE(refused);
}

TEST(FiberStackTest, ForgetAndMisuse) {
  Heap heap;
  EXPECT_THROW(switch_stack(nullptr), NotAttached);
  MutatorScope attach(heap);
  switch_stack(nullptr);  // already on its own stack: nothing to do
  EXPECT_EQ(heap.impl().roots.suspended_stack_count(), 0u);
  EXPECT_THROW(run_native([] { switch_stack(nullptr); }), ThreadStateError);
  int dummy = 0;
  EXPECT_FALSE(heap.forget_stack(&dummy));
}

}  // namespace
}  // namespace shoal::test
