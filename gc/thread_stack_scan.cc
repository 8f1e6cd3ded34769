// Stacks scanned one thread at a time: a concurrent cycle's initial pause marks the other
// roots (handles, global slots, suspended fiber stacks, the remembered set) and scans
// only the shallowest stacks, while their live parts fit a byte budget
// (HeapOptions::initial_pause_stack_budget, 128 KiB: ~30 us); it switches the barrier on
// and flags every other thread's stack as unscanned. Then a collector thread asks each
// flagged thread by handshake to scan its own stack and registers at its next safepoint
// (a thread in native or blocked is scanned by the collector thread itself, which holds
// the thread's handshake lock meanwhile so it cannot return). So no pause grows with a
// deep stack, and a thread scanning one delays only itself. (Why a budget and not
// always after: a handshake costs each thread a trip to its safepoint and the collector
// a wait for it - on a busy machine a scheduling delay - which for the common shallow
// stack is dearer than the scan itself; measured in docs/performance.md.) This is Go's design since Go 1.8 (the
// "hybrid barrier": Clements and Hudson, "Eliminate STW stack re-scanning", 2016).
//
// The barrier change that makes it sound (include/shoal/write_barrier.h): from the
// initial pause until the last stack is scanned, a reference store shades the stored
// value as well as the overwritten one (Dijkstra insertion plus Yuasa deletion); after
// that, deletion only. Go applies the insertion half only on threads whose own stack is
// unscanned; Shoal applies it on every thread of a heap with any stack unscanned - more
// shading, a simpler test (one flag in the barrier's existing load), and the window is
// short (every thread's time to its next safepoint).
//
// Why nothing reachable is lost. Colour stacks too: a stack is grey until scanned, black
// after. Invariant (weak tricolour, with heap-only protection): every white object that a
// black object or a black stack references is reachable from a grey object through a
// chain of white objects. It holds after the initial pause (no black stack; black objects
// are old ones, whose white young referents are on the remembered set, i.e. grey - and,
// in a full cycle, none; the stacks the pause scanned within its budget are black, with
// every direct referent marked). Each step keeps it:
//   - The marker blackens a grey object after shading its referents: the standard step.
//   - A stack scan shades every word that resolves to an object: the stack turns black
//     with only non-white direct referents.
//   - A store into a heap object: the overwritten referent is shaded (a chain through
//     the deleted edge restarts at it, grey). The stored value is shaded if any stack is
//     grey; otherwise every stack is black, and the value came from one, so it is
//     non-white or protected by the invariant - the new edge needs nothing.
//   - A grey stack gains a reference by allocation: its thread allocates white until its
//     stack is scanned ("White allocation" below) - allowed, a grey stack may reference
//     white objects; the scan shades them.
//   - A black stack gains a reference: by allocation (black: a thread whose stack is
//     scanned allocates marked objects), from a root handle (every value stored into a handle while
//     marking is shaded, and every value present at the initial pause was marked there),
//     or by a load from a heap object Y it already references: Y is non-white (black:
//     its white referent is protected; grey: protects it) or white and protected, and
//     the chain extends through Y.
//   - Grey stacks may drop references freely: protection never runs through a stack.
// Once every stack is black and no object is grey, the invariant says no white object is
// referenced from a stack, a handle or a marked object: everything reachable is marked.
// The final pause does not rescan stacks.
//
// What else a thread's scan covers, and why it must:
//   - its scratch lists (gc/roots.h, ScratchRoots): the owner may move an object from its
//     unscanned stack into one after the initial pause and drop it from the stack;
//   - a fiber stack the thread leaves while its scan is pending (Heap::switch_stack):
//     the leaving stack is recorded as suspended after the initial pause scanned the
//     suspended ones, so the thread scans it (and so itself) before switching.
// What no longer holds, and what replaces it: under a pure snapshot every object a
// mutator touched while marking survived the cycle. Now an object reachable only from a
// grey stack may be touched and then dropped, and die in this cycle. So per-thread
// records that outlive the cycle must not hold such an object: the remembered-set
// entries a thread records while marking shade their holder (remember_slow), else a
// full cycle could free a holder still on a buffer the next cycle traces (the stress
// suites found exactly that). SATB entries are marked by definition.
// White allocation. Objects allocated while marking runs need not all be black: only
// those a black stack can gain. A thread whose stack is still unscanned allocates
// white (HeapImpl::allocates_black: its TLAB flushes set start bits, not mark bits), so
// what it allocates and drops before its scan dies in this cycle instead of floating to
// the next. What it keeps is found: on its own stack or scratch lists by the scan; in a
// heap object or a handle by the insertion barrier and the handle shading (both run
// while any stack is unscanned); in another new object through that one. Just before
// the scan, by the thread itself or by the scanner while the thread cannot run, its
// TLABs are flushed white (HeapImpl::flush_tlabs_before_stack_scan) and go on from
// where they stopped: every object the thread allocated so far has its start bit, so
// the conservative scan resolves it, and from then on the thread allocates black. With
// generations the white objects are newborn like the black ones (the cycle's newborn
// header bit and page bits): marked ones are young again after the sweep, which counts
// the survivors (newborn & mark), not the cells flushed. Large objects stay born black
// (the large-object index a conservative lookup needs is the initial pause's).
// Allocation state: the initial pause flushed every TLAB, so every object that existed
// then has its start bit; a stack word into a TLAB run taken since finds no start bit
// and is skipped - its object is newer: black, or the scanned thread's own white one,
// flushed just before, or another unscanned thread's white one, which this stack can
// only have got through the heap or a handle, whose barriers shaded it. Pages that get a class while marking runs
// are read safely by PageInfo::object_containing (one read of the class, no `state`);
// large objects through the index built in the initial pause (those allocated since are
// born marked). Nothing is freed while marking runs.
//
// Failure: a scan that cannot finish (std::bad_alloc growing a word buffer or a mark
// stack) may have set mark bits on objects it could not push grey, and nothing could
// then trace their children: it stops the process with a message, as a pause does
// (docs/errors.md, "Fatal checks"). So by the final pause every flagged stack has been
// scanned: the marker thread runs the scans (on the scanner thread, or itself if no
// thread can be started) before its termination rounds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <span>

#include "barriers/write_barrier.h"
#include "gc/clock.h"
#include "gc/collector.h"
#include "gc/marker.h"
#include "gc/stack_scanner.h"
#include "heap/heap_impl.h"

namespace shoal::internal {

namespace {
[[noreturn]] void fatal_scan_failure(const char* what) {
  // (See "Failure" above.)
  std::fprintf(stderr,
               "shoal: fatal: %s thrown while scanning a thread's stack after a concurrent cycle's initial "
               "pause. Objects it marked may not have reached the grey list, so the cycle could free what they "
               "reference; the process stops here (docs/errors.md, \"Fatal checks\")\n",
               what);
  std::abort();
}

}  // namespace

void Collector::scan_stacks_within_budget_in_pause(Marker& marker) {
  // Shallowest first, so the budget covers as many threads as it can.
  std::vector<MutatorThread*> threads = heap_.threads.threads_in_pause();
  auto depth = [](const MutatorThread* t) { return t->stack_base - std::min(t->stack_base, t->context.sp); };
  std::sort(threads.begin(), threads.end(),
            [&](const MutatorThread* a, const MutatorThread* b) { return depth(a) < depth(b); });
  size_t budget = defer_all_stacks_next_.exchange(false, std::memory_order_relaxed)
                      ? 0
                      : heap_.options.initial_pause_stack_budget;
  bool deferred = false;
  for (MutatorThread* t : threads) {
    const size_t bytes = depth(t);
    if (bytes <= budget) {
      budget -= bytes;
      mark_stack_range(marker, t->context.sp, t->stack_base, t->context.registers);
      t->stack_scan_pending.store(false, std::memory_order_relaxed);
    } else {  // (and so are all the deeper ones after it)
      t->stack_scan_pending.store(true, std::memory_order_relaxed);
      deferred = true;
    }
  }
  max_stack_scan_ns_.store(0, std::memory_order_relaxed);
  if (!deferred) return;
  stacks_unscanned_.store(true, std::memory_order_relaxed);
  g_write_barrier_active.fetch_add(kBarrierStacksUnscanned, std::memory_order_acq_rel);
}

void Collector::end_stack_scan() {
  if (stacks_unscanned_.exchange(false, std::memory_order_acq_rel))
    g_write_barrier_active.fetch_sub(kBarrierStacksUnscanned, std::memory_order_acq_rel);
}

void Collector::mark_stack_range(Marker& marker, uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers) {
  std::vector<uintptr_t> words;
  // Only words in the carved pages or the large-object index's range can be references
  // (mark_conservative_batch's own test); the rest are dropped in the scanning loop.
  uintptr_t large_begin, large_end;
  heap_.large.index_range(large_begin, large_end);
  collect_words_in_ranges(sp, base, heap_.pages.carved_begin(), heap_.pages.carved_end(), large_begin, large_end,
                          words);
  words.insert(words.end(), registers.begin(), registers.end());
  marker.mark_conservative_batch(words);
}

void Collector::scan_thread_roots(MutatorThread& t, uintptr_t sp, uintptr_t base,
                                  std::span<const uintptr_t> registers) {
  const uint64_t start = now_ns();
  heap_.flush_tlabs_before_stack_scan(t);  // ("White allocation" above)
  try {
    Marker marker(heap_);
    mark_stack_range(marker, sp, base, registers);
    heap_.roots.for_each_scratch_object_of(&t, [&](Object* o) { marker.mark_value(Value::from_object(o)); });
    stack_marked_.fetch_add(marker.objects_marked(), std::memory_order_relaxed);
    if (marker.has_grey()) give_grey(marker.take_grey());
  } catch (const std::exception& e) {
    fatal_scan_failure(e.what());
  }
  t.stack_scan_pending.store(false, std::memory_order_relaxed);
  const uint64_t took = now_ns() - start;
  uint64_t seen = max_stack_scan_ns_.load(std::memory_order_relaxed);
  while (took > seen && !max_stack_scan_ns_.compare_exchange_weak(seen, took, std::memory_order_relaxed)) {
  }
}

uint64_t Collector::scan_stacks_by_handshake() {
  if (!stacks_unscanned_.load(std::memory_order_acquire)) return 0;
  const uint64_t start = now_ns();
  {
    MutexLock gc_lock(gc_mu_);  // lock order: gc_mu_ < the registry's locks
    // runs_anywhere: a thread stopped by asynchronous preemption is outside every
    // no-preempt region (no barrier or TLAB bump split), and the handler's context
    // covers the interrupted registers (gc/async_preemption.h) - as for a pause.
    heap_.threads.handshake_all(
        nullptr,
        [&](MutatorThread& t) {
          if (t.stack_scan_pending.load(std::memory_order_relaxed))
            scan_thread_roots(t, t.context.sp, t.stack_base, t.context.registers);
        },
        /*runs_anywhere=*/true,
        // (Only the flagged threads: the others need not come to a safepoint for it.)
        [](const MutatorThread& t) { return t.stack_scan_pending.load(std::memory_order_relaxed); });
  }
  // (The large-object index and the pages' classes that the scans read stay valid
  // because no pause can run meanwhile: this holds gc_mu_, which every pause needs, and a
  // thread scanning itself in switch_stack is running, so no pause can start either.)
  end_stack_scan();
  return now_ns() - start;
}

void Collector::scan_own_stack_before_switch(MutatorThread* self, const CapturedContext& leaving, uintptr_t base) {
  // Running, inside switch_stack's no-preempt region: no handshake can scan this thread
  // meanwhile (it would wait for a poll), so the flag is ours to read and clear.
  if (!self->stack_scan_pending.load(std::memory_order_relaxed)) return;
  scan_thread_roots(*self, leaving.sp, base, leaving.registers);
}

}  // namespace shoal::internal
