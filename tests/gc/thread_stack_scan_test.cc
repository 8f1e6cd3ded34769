// Stacks scanned one thread at a time (gc/thread_stack_scan.cc): deterministic
// interleavings of a concurrent cycle in which one thread's stack has been scanned and
// another's has not, built with the before-stack-scan hook (the marker thread waits in it
// until the test has parked the unscanned thread in a loop that never polls) and with the
// registry's order (the handshake scans the main thread, attached first, before the
// helper). Each test drops the only stack reference to a list for real (own frame, then
// clobber_stack) and checks the list is intact after the cycle, with the verifier and
// freed-memory poisoning on.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/roots.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "runtime/subgraph.h"
#include "shoal/internal/preemption.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr size_t kListLength = 100;

// Phases of the two threads' protocol.
enum Phase : int {
  kStart,
  kHelperHolds,       // the helper holds the list on its stack only
  kOldEnough,         // (generational variant) a young cycle made the list old
  kHelperNotPolling,  // the helper has stopped polling: the marker may scan stacks
  kHelperDropped,     // the helper has moved the list and dropped its stack reference
  kHelperMayPoll,     // the helper may now poll (and so be scanned)
  kHelperScanned,
};

// Waits without polling (a helper waiting here keeps its stack unscanned).
void wait_for(const std::atomic<int>& phase, int value) {
  while (phase.load() < value) std::this_thread::yield();
}

// Helper side: parks (polling) for the cycle's initial pause, then stops polling.
void stop_polling_after_the_initial_pause(Heap& heap, std::atomic<int>& phase) {
  while (!heap.is_marking()) safepoint();  // parks for the initial pause here
  phase = kHelperNotPolling;
}

// The helper thread's body: `hold` (a frame of its own, which makes what the test is
// about, moves it on and returns) and everything up to the helper's scan run in a
// no-preempt region (asynchronous preemption would scan it early) and without a poll.
template <class Hold>
void helper_thread(Heap& heap, std::atomic<int>& phase, Hold&& hold) {
  MutatorScope attach(heap);
  internal::NoPreemptScope no_preempt;
  hold();
  clobber_stack();
  phase = kHelperDropped;
  wait_for(phase, kHelperMayPoll);
  safepoint();  // the scanner's handshake scans this stack here
  phase = kHelperScanned;
}

// Main side: holds the stack scans (the before-stack-scan hook) until the helper has
// stopped polling, for the object's lifetime.
class ScansWaitForTheHelper {
 public:
  ScansWaitForTheHelper(Heap& heap, const std::atomic<int>& phase) : collector_(heap.impl().collector) {
    collector_.set_before_stack_scan_hook_for_testing([&phase] { wait_for(phase, kHelperNotPolling); });
  }
  ~ScansWaitForTheHelper() { collector_.set_before_stack_scan_hook_for_testing(nullptr); }
  ScansWaitForTheHelper(const ScansWaitForTheHelper&) = delete;
  ScansWaitForTheHelper& operator=(const ScansWaitForTheHelper&) = delete;

 private:
  internal::Collector& collector_;
};

void expect_verified(Heap& heap) {
  const VerifyReport r = heap.verify();
  EXPECT_TRUE(r.ok) << r.summary();
}

class ThreadStackScanTest : public ::testing::TestWithParam<bool> {
 protected:
  HeapOptions options() const {
    HeapOptions o;
    o.verify_after_gc = true;
    o.poison_freed_memory = true;
    o.min_gc_trigger = size_t{256} << 20;  // only the cycles the tests start
    o.generational = GetParam();
    o.initial_pause_stack_budget = 0;  // every stack after the initial pause
    return o;
  }
  static bool list_intact(Value head) {
    size_t n = 0;
    for (Ref<Node> node = Ref<Node>::from_value(head); node; node = node->left.get()) {
      if (node->value != static_cast<int64_t>(kListLength - 1 - n)) return false;
      ++n;
    }
    return n == kListLength;
  }
  static bool own_stack_scanned() { return !internal::current_thread()->stack_scan_pending.load(); }
  // The cycle the tests run: full, so the list (old, in the generational variant) is
  // white at its start.
  static void start_full_cycle(Heap& heap) { heap.start_collection(CollectionScope::kFull); }
  // Generational: two young cycles (aging) while the helper still holds the list makes it old,
  // so a later store of it into an old or black object puts nothing on the remembered set
  // (which would shade the holder and hide what the test is after).
  void age_if_generational(Heap& heap) {
    if (!GetParam()) return;
    for (int i = 0; i < 2; ++i) {  // (aging: a young object is old after its second young cycle)
      heap.start_collection(CollectionScope::kYoung);
      heap.wait_for_collection();
    }
  }
};

// The helper's frame that holds the list: it makes the list, waits (polling) for the
// cycle's initial pause, stops polling, then hands the list on with `move` and returns -
// its frame, the list's only stack home, is gone before the helper is scanned.
template <class Move>
[[gnu::noinline]] void hold_then_move(Heap& heap, std::atomic<int>& phase, HiddenPtr& hidden, Move&& move) {
  Ref<Node> list = make_list(kListLength);
  hidden = HiddenPtr(list.object());
  phase = kHelperHolds;
  while (phase.load() < kOldEnough) safepoint();
  stop_polling_after_the_initial_pause(heap, phase);
  move(list);
  list = Ref<Node>();
}

template <class Move>
void helper(Heap& heap, std::atomic<int>& phase, HiddenPtr& hidden, Move&& move) {
  helper_thread(heap, phase, [&] { hold_then_move(heap, phase, hidden, move); });
}

// Unscanned -> scanned: the helper (stack unscanned) stores its only reference into an
// object the main thread allocated after the initial pause - black, never traced - and
// drops it; the main thread's stack was scanned before and holds the black object. Only
// the insertion half of the barrier marks the list.
TEST_P(ThreadStackScanTest, ObjectStoredFromAnUnscannedStackIntoABlackObjectSurvives) {
  Heap heap(options());
  MutatorScope attach(heap);  // attached first: scanned first
  std::atomic<int> phase{kStart};
  std::atomic<Object*> box{nullptr};
  HiddenPtr hidden;
  std::thread t([&] {
    helper(heap, phase, hidden, [&](Ref<Node> list) {
      while (box.load() == nullptr) std::this_thread::yield();
      Ref<Node>::from_object(box.load()).set(&Node::left, list);
    });
  });
  run_native([&] { wait_for(phase, kHelperHolds); });
  age_if_generational(heap);
  ScansWaitForTheHelper hold_scans(heap, phase);
  phase = kOldEnough;
  start_full_cycle(heap);
  while (!own_stack_scanned()) safepoint();
  Ref<Node> holder = make<Node>();  // after the initial pause: black
  box = holder.object();
  wait_for(phase, kHelperDropped);
  phase = kHelperMayPoll;
  heap.wait_for_collection();
  run_native([&] { t.join(); });
  EXPECT_TRUE(is_allocated(heap, hidden));
  EXPECT_TRUE(list_intact(holder->left.get().value()));
  expect_verified(heap);
  EXPECT_EQ(heap.stats().recent.back().young, false);
}

// Scanned -> unscanned: the main thread (scanned) takes the list out of a handle's
// object and puts it into a black object; the helper (unscanned) takes it from there,
// clears the slot and keeps it on its stack until it is scanned. The deletions shade it.
TEST_P(ThreadStackScanTest, ObjectMovedFromAScannedToAnUnscannedStackSurvives) {
  Heap heap(options());
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  std::atomic<Object*> box{nullptr};
  Persistent<Node> anchor(heap, make<Node>());
  HiddenPtr hidden;
  in_own_frame([&] {
    Ref<Node> list = make_list(kListLength);
    hidden = HiddenPtr(list.object());
    anchor.get().set(&Node::left, list);
  });
  clobber_stack();
  age_if_generational(heap);
  std::atomic<bool> helper_has_it{false};
  std::thread t([&] {
    MutatorScope attach_helper(heap);
    internal::NoPreemptScope no_preempt;
    phase = kHelperHolds;  // attached: the cycle's initial pause will flag its stack
    stop_polling_after_the_initial_pause(heap, phase);
    while (box.load() == nullptr) std::this_thread::yield();
    Ref<Node> from = Ref<Node>::from_object(box.load());
    Ref<Node> list = from->left.get();
    from.set(&Node::left, Ref<Node>());  // the slot's deletion
    helper_has_it = list_intact(list.value());
    phase = kHelperDropped;
    wait_for(phase, kHelperMayPoll);
    safepoint();  // scanned here, the list on this stack
    EXPECT_TRUE(list_intact(list.value()));
    phase = kHelperScanned;
    run_native([&] { wait_for(phase, kHelperScanned + 1); });  // (safe: the final pause needs no poll)
    EXPECT_TRUE(list_intact(list.value())) << "after the cycle";
  });
  // (A helper attached only after the initial pause would have no stack to scan and
  // would hold up the final pause in its loop, with this thread parked before it sets
  // the box: wait for it to attach.)
  run_native([&] { wait_for(phase, kHelperHolds); });
  ScansWaitForTheHelper hold_scans(heap, phase);
  start_full_cycle(heap);
  while (!own_stack_scanned()) safepoint();
  in_own_frame([&] {
    Ref<Node> holder = make<Node>();  // black
    holder.set(&Node::left, anchor.get()->left.get());
    anchor.get().set(&Node::left, Ref<Node>());  // the handle's object no longer reaches it
    box = holder.object();
  });
  clobber_stack();
  wait_for(phase, kHelperDropped);
  phase = kHelperMayPoll;
  // (Not later than the helper's own step: the cycle may end before it takes it.)
  run_native([&] { wait_for(phase, kHelperScanned); });
  heap.wait_for_collection();
  EXPECT_TRUE(is_allocated(heap, hidden));
  phase = kHelperScanned + 1;
  run_native([&] { t.join(); });
  EXPECT_TRUE(helper_has_it.load());
  expect_verified(heap);
}

// A scratch list (gc/roots.h) is scanned with its owner's stack: the helper moves the
// list's head from its unscanned stack into a scratch list registered after the initial
// pause and drops the stack reference.
TEST_P(ThreadStackScanTest, ScratchListRegisteredAfterTheInitialPauseIsScannedWithItsOwner) {
  Heap heap(options());
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  HiddenPtr hidden;
  std::atomic<bool> survived{false};
  std::thread t([&] {
    std::vector<Object*> scratch;  // its buffer is malloc'ed: not a stack root
    std::unique_ptr<internal::ScratchRoots> keep;
    helper(heap, phase, hidden, [&](Ref<Node> list) {
      scratch.push_back(list.object());
      keep = std::make_unique<internal::ScratchRoots>(heap.impl().roots, &scratch);
    });
    wait_for(phase, kHelperScanned + 1);  // the cycle is over; the list still registered
    survived = is_allocated(heap, hidden) && list_intact(Value::from_object(scratch[0]));
    keep.reset();
  });
  run_native([&] { wait_for(phase, kHelperHolds); });
  age_if_generational(heap);
  ScansWaitForTheHelper hold_scans(heap, phase);
  phase = kOldEnough;
  start_full_cycle(heap);
  while (!own_stack_scanned()) safepoint();
  wait_for(phase, kHelperDropped);
  phase = kHelperMayPoll;
  run_native([&] { wait_for(phase, kHelperScanned); });
  heap.wait_for_collection();
  phase = kHelperScanned + 1;
  run_native([&] { t.join(); });
  EXPECT_TRUE(survived.load());
  expect_verified(heap);
}

// The remembered set outlives the cycle: an old holder that a thread with an unscanned
// stack makes point at a young object goes on that thread's remembered buffer, for the
// next cycle. If the holder was reachable only from that stack and is dropped, a full
// cycle would free it and leave the entry dangling - so the barrier shades the holder
// while marking runs, and it survives this cycle.
[[gnu::noinline]] void remember_then_drop(Heap& heap, std::atomic<int>& phase, std::atomic<bool>& young_made,
                                         HiddenPtr& hidden_holder) {
  Ref<Node> holder = make<Node>();
  hidden_holder = HiddenPtr(holder.object());
  phase = kHelperHolds;
  while (phase.load() < kOldEnough) safepoint();  // young cycles make the holder old
  Ref<Node> young = make<Node>();                  // allocated after it: young
  young_made = true;
  stop_polling_after_the_initial_pause(heap, phase);
  EXPECT_FALSE(holder.object()->has_tag(header::kYoung));
  holder.set(&Node::left, young);  // old holder, young value: remembered
  EXPECT_TRUE(holder.object()->has_tag(header::kRememberedBits));  // (for the next cycle: marking runs)
  holder = Ref<Node>();
  young = Ref<Node>();
}

TEST(ThreadStackScanGenerationsTest, HolderRememberedFromAnUnscannedStackSurvivesTheCycle) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.poison_freed_memory = true;
  o.min_gc_trigger = size_t{256} << 20;
  o.initial_pause_stack_budget = 0;
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  std::atomic<bool> young_made{false};
  HiddenPtr hidden_holder;
  std::thread t([&] { helper_thread(heap, phase, [&] { remember_then_drop(heap, phase, young_made, hidden_holder); }); });
  run_native([&] { wait_for(phase, kHelperHolds); });
  for (int i = 0; i < 2; ++i) {  // (aging: the holder is old after its second young cycle)
    heap.start_collection(CollectionScope::kYoung);
    heap.wait_for_collection();
  }
  ScansWaitForTheHelper hold_scans(heap, phase);
  phase = kOldEnough;
  run_native([&] {
    while (!young_made.load()) std::this_thread::yield();
  });
  heap.start_collection(CollectionScope::kFull);
  // (The helper is let poll from inside run_native: a pause that begins meanwhile - the
  // final one, once the helper's stack is scanned - waits for the helper, which waits for
  // this; back in running state first, this thread would park for that pause.)
  run_native([&] {
    wait_for(phase, kHelperDropped);
    phase = kHelperMayPoll;
  });
  heap.wait_for_collection();
  run_native([&] { t.join(); });
  EXPECT_TRUE(is_allocated(heap, hidden_holder)) << "a holder on a remembered buffer was freed";
  // The next young cycle traces the entry (a dangling one would stop the marker).
  heap.start_collection(CollectionScope::kYoung);
  heap.wait_for_collection();
  expect_verified(heap);
}

// A deep copy (SendMode::kCopy) copies references to shareable objects with plain stores
// into copies that are black while a cycle marks: the helper (stack unscanned) copies an
// array whose only element is a string, then drops the original; the copy, kept in a
// handle, must still reach an intact string after the cycle (deep_copy shades the
// originals).
[[gnu::noinline]] void copy_then_drop(Heap& heap, std::atomic<int>& phase, PersistentValue& copy, HiddenPtr& hidden) {
  Ref<RefArray> original = RefArray::create(2048);  // large: its copy is born marked (black)
  original->set(0, String::create("shared, immutable, copied by reference").value());
  hidden = HiddenPtr(original->get(0).as_object());
  phase = kHelperHolds;
  while (phase.load() < kOldEnough) safepoint();
  stop_polling_after_the_initial_pause(heap, phase);
  copy = PersistentValue(heap, internal::deep_copy(original.value(), 0));
  original = Ref<RefArray>();
}

TEST_P(ThreadStackScanTest, DeepCopyMadeFromAnUnscannedStackKeepsWhatItShares) {
  Heap heap(options());
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  HiddenPtr hidden_string;
  PersistentValue copy(heap, Value::null());
  std::thread t([&] { helper_thread(heap, phase, [&] { copy_then_drop(heap, phase, copy, hidden_string); }); });
  run_native([&] { wait_for(phase, kHelperHolds); });
  age_if_generational(heap);
  ScansWaitForTheHelper hold_scans(heap, phase);
  phase = kOldEnough;
  start_full_cycle(heap);
  // (The helper is let poll from inside run_native: a pause that begins meanwhile - the
  // final one, once the helper's stack is scanned - waits for the helper, which waits for
  // this; back in running state first, this thread would park for that pause.)
  run_native([&] {
    wait_for(phase, kHelperDropped);
    phase = kHelperMayPoll;
  });
  heap.wait_for_collection();
  run_native([&] { t.join(); });
  EXPECT_TRUE(is_allocated(heap, hidden_string));
  Ref<RefArray> copied = Ref<RefArray>::from_value(copy.get());
  ASSERT_TRUE(copied);
  const Value element = copied->get(0);
  ASSERT_TRUE(element.is_object());
  EXPECT_EQ(Ref<String>::from_value(element)->view(), "shared, immutable, copied by reference");
  expect_verified(heap);
}

// A deep copy keeps a weak slot's shareable target as copied. The copy, made while the
// cycle marks, is black and never traced, so its weak slot is not among those the final
// pause clears: the target must survive the cycle (deep_copy shades it, as a weak read
// would), or the copy's slot would point at a freed string. Here the string is only
// weakly reachable - through the original's WeakCell - and the copy is made while the
// stack scans (and so the cycle) are held.
[[gnu::noinline]] void make_weakly_held(Heap& heap, Persistent<RefArray>& original, Persistent<String>& strong,
                                        HiddenPtr& hidden) {
  Ref<String> target = String::create("weakly held, shareable");
  hidden = HiddenPtr(target.object());
  Ref<RefArray> array = RefArray::create(1);
  array->set(0, WeakCell::create(target.value()).value());
  original = Persistent<RefArray>(heap, array);
  strong = Persistent<String>(heap, target);  // until the cycle (and old, if generational)
}

[[gnu::noinline]] void copy_while_marking(Heap& heap, PersistentValue& copy, const Persistent<RefArray>& original) {
  copy = PersistentValue(heap, internal::deep_copy(original.get().value(), 0));
}

TEST_P(ThreadStackScanTest, DeepCopyKeepsAWeakSlotsShareableTarget) {
  Heap heap(options());
  MutatorScope attach(heap);
  Persistent<RefArray> original(heap, Ref<RefArray>());
  Persistent<String> strong(heap, Ref<String>());
  PersistentValue copy(heap, Value::null());
  HiddenPtr hidden;
  make_weakly_held(heap, original, strong, hidden);
  clobber_stack();
  age_if_generational(heap);
  strong.reset();  // from here on only the WeakCell reaches the string
  std::atomic<int> phase{kStart};
  {
    ScansWaitForTheHelper hold_scans(heap, phase);  // (no helper: the test releases them)
    start_full_cycle(heap);
    ASSERT_TRUE(heap.is_marking());
    copy_while_marking(heap, copy, original);
    clobber_stack();
    phase = kHelperNotPolling;
  }
  heap.wait_for_collection();
  ASSERT_TRUE(is_allocated(heap, hidden)) << "the copy's weakly held target was freed";
  Ref<RefArray> copied = Ref<RefArray>::from_value(copy.get());
  ASSERT_TRUE(copied);
  Ref<WeakCell> cell = Ref<WeakCell>::from_value(copied->get(0));
  ASSERT_TRUE(cell);
  const Value target = cell->get();
  ASSERT_TRUE(target.is_object());
  EXPECT_EQ(Ref<String>::from_value(target)->view(), "weakly held, shareable");
  expect_verified(heap);
}

// A thread blocked in native code never polls: the marker thread scans its stack for it
// (from the context captured when it entered native code), and it cannot return meanwhile.
TEST_P(ThreadStackScanTest, StackOfAThreadInNativeIsScannedByTheMarker) {
  Heap heap(options());
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  std::atomic<bool> intact{false};
  std::thread t([&] {
    MutatorScope attach_helper(heap);
    Ref<Node> list = make_list(kListLength);  // only this stack holds it
    phase = kHelperHolds;
    run_native([&] { wait_for(phase, kHelperMayPoll); });
    intact = list_intact(list.value());
  });
  run_native([&] { wait_for(phase, kHelperHolds); });
  age_if_generational(heap);
  start_full_cycle(heap);
  heap.wait_for_collection();
  const CycleRecord r = heap.stats().recent.back();
  phase = kHelperMayPoll;
  run_native([&] { t.join(); });
  EXPECT_TRUE(intact.load());
  EXPECT_GT(r.stack_scan_ns, 0u);
  EXPECT_GE(r.stack_scan_ns, r.max_stack_scan_ns);
  expect_verified(heap);
}

// The initial pause scans stacks within its budget: with no budget limit every stack
// is scanned there, nothing is left for a handshake and the insertion barrier stays off.
TEST_P(ThreadStackScanTest, StacksInTheInitialPauseWithinTheBudget) {
  HeapOptions o = options();
  o.initial_pause_stack_budget = SIZE_MAX;
  Heap heap(o);
  MutatorScope attach(heap);
  Persistent<Node> kept(heap, make_list(kListLength));
  heap.start_collection();
  EXPECT_TRUE(own_stack_scanned());
  EXPECT_FALSE(heap.impl().collector.stacks_unscanned());
  heap.wait_for_collection();
  EXPECT_EQ(heap.stats().recent.back().stack_scan_ns, 0u);
  EXPECT_TRUE(list_intact(kept.get().value()));
}

// The default budget: a shallow stack is scanned in the pause, a deep one (here 1 MiB of
// frames, blocked in native code) after it - so it is that one's scan that takes time.
[[gnu::noinline]] int deep_then(int frames, const std::function<void()>& f) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(frames);
  asm volatile("" : : "r"(pad) : "memory");  // the whole array lives in the frame
  if (frames == 0) {
    f();
    return pad[0];
  }
  return deep_then(frames - 1, f) + pad[0];
}

TEST_P(ThreadStackScanTest, DeepStackIsScannedAfterThePauseAndShallowOnesInIt) {
  HeapOptions o = options();
  o.initial_pause_stack_budget = HeapOptions().initial_pause_stack_budget;
  Heap heap(o);
  MutatorScope attach(heap);
  std::atomic<int> phase{kStart};
  std::atomic<bool> intact{false};
  std::thread t([&] {
    MutatorScope attach_helper(heap);
    Ref<Node> list = make_list(kListLength);  // only this (deep) stack holds it
    deep_then(1024, [&] {
      phase = kHelperHolds;
      run_native([&] { wait_for(phase, kHelperMayPoll); });
    });
    intact = list_intact(list.value());
  });
  run_native([&] { wait_for(phase, kHelperHolds); });
  heap.start_collection(CollectionScope::kFull);
  EXPECT_TRUE(own_stack_scanned()) << "a shallow stack fits the initial pause's budget";
  heap.wait_for_collection();
  const CycleRecord r = heap.stats().recent.back();
  phase = kHelperMayPoll;
  run_native([&] { t.join(); });
  EXPECT_TRUE(intact.load());
  EXPECT_GT(r.stack_scan_ns, 0u) << "the deep stack was left for after the pause";
  expect_verified(heap);
}

// White allocation (gc/thread_stack_scan.cc): until its own stack has been scanned a
// thread allocates white, so what it allocates and drops in that stretch dies in the
// cycle, while what its stack, a heap object or another new object holds survives. The
// scans wait (the before-stack-scan hook) until the main thread has allocated; then its
// stack is scanned at its own safepoint (`self_scan`) or, while it waits for the cycle
// in the blocked state, by the collector's scanner thread - which must first give the
// main thread's unflushed objects their start bits, or the kept list dies with the rest.
class WhiteAllocationTest : public ThreadStackScanTest {
 protected:
  void run(bool self_scan) {
    Heap heap(options());
    MutatorScope attach(heap);
    Persistent<Node> root(heap, make<Node>());  // in the snapshot
    std::atomic<bool> allocated{false};
    heap.impl().collector.set_before_stack_scan_hook_for_testing([&allocated] {
      while (!allocated.load()) std::this_thread::yield();
    });
    constexpr size_t kGarbage = 20000;  // 640 KiB: TLAB runs fill and flush before the scan
    std::vector<HiddenPtr> garbage;
    garbage.reserve(kGarbage);
    HiddenPtr stored;
    start_full_cycle(heap);
    ASSERT_FALSE(own_stack_scanned());
    Ref<Node> kept = make_list(kListLength);  // on this stack only
    in_own_frame([&] {
      for (size_t i = 0; i < kGarbage; ++i) garbage.emplace_back(make<Node>().object());
      Ref<Node> into_heap = make_list(kListLength);
      root.get().set(&Node::left, into_heap);  // the insertion barrier shades it
      stored = HiddenPtr(into_heap.object());
    });
    clobber_stack();
    allocated = true;
    if (self_scan) {
      while (!own_stack_scanned()) safepoint();
    }
    heap.wait_for_collection();
    heap.impl().collector.set_before_stack_scan_hook_for_testing(nullptr);
    EXPECT_TRUE(list_intact(kept.value()));
    EXPECT_TRUE(list_intact(root.get()->left.get().value()));
    EXPECT_EQ(root.get()->left.get().object(), stored.get<Object>());
    size_t freed = 0;
    for (const HiddenPtr& g : garbage) freed += is_allocated(heap, g) ? 0 : 1;
    // (A conservative word or two may keep an object; with black allocation none dies.)
    EXPECT_GE(freed, kGarbage * 9 / 10) << "objects allocated before the thread's stack scan were kept";
    keep_alive(kept);
    expect_verified(heap);
  }
};

TEST_P(WhiteAllocationTest, ScannedAtItsOwnSafepoint) { run(/*self_scan=*/true); }
TEST_P(WhiteAllocationTest, ScannedByTheScannerWhileBlocked) { run(/*self_scan=*/false); }

INSTANTIATE_TEST_SUITE_P(Generations, WhiteAllocationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Generational") : std::string("NotGenerational");
                         });

INSTANTIATE_TEST_SUITE_P(Generations, ThreadStackScanTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Generational") : std::string("NotGenerational");
                         });

}  // namespace
}  // namespace shoal::test
