// shoal::Heap: one garbage-collected heap shared by many threads.
//
// Threads attach with a MutatorScope (RAII) before they allocate or touch heap objects,
// and detach when it ends. While attached, a thread is "running" and must reach a
// safepoint now and then (every allocation slow path is one; shoal::safepoint() is an
// explicit one; on Linux a thread that does not is preempted by a signal -
// HeapOptions::async_preemption). A thread that blocks or runs long native code does so inside
// shoal::run_native(): the collector does not wait for it, and it must not touch heap
// objects until run_native returns. docs/safepoints.md describes the protocol; docs/roots.md what keeps objects alive.
//
//   shoal::Heap heap({.heap_limit = 1 << 30});
//   shoal::MutatorScope attach(heap);
//   auto s = shoal::String::create("hello");   // stays alive: it is on this stack
//   heap.collect();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shoal/value.h"

namespace shoal {

class ObjectModel;
namespace internal {
class HeapImpl;
}

// The largest HeapOptions::heap_limit: the limit is reserved as address space.
inline constexpr size_t kMaxHeapLimit = size_t{1} << 46;
// The most HeapOptions::marker_threads (each is a thread).
inline constexpr unsigned kMaxMarkerThreads = 1024;

struct HeapOptions {
  // Hard limit on the heap's footprint (small-object pages plus large objects), bytes.
  // 0 means "the machine's physical memory". Smaller than one page (256 KiB) or larger
  // than kMaxHeapLimit (64 TiB) is an InvalidArgument.
  size_t heap_limit = 0;
  // Pacing (as GOGC/100): a collection starts once the bytes allocated since the last
  // collection exceed max(min_gc_trigger, gc_growth * live), live being what it kept
  // with floating garbage (what a concurrent cycle allocated while it marked) counted
  // only up to the bytes it marked: min(kept, 2 x marked).
  double gc_growth = 1.0;  // positive and finite
  size_t min_gc_trigger = size_t{4} << 20;
  // GC torture: collect at every Nth safepoint poll (0 = off). With torture on, every
  // allocation takes the slow path, so allocations count as polls.
  uint32_t gc_torture_interval = 0;
  // Mark concurrently with the mutators (SATB write barrier, background marker threads,
  // two short pauses per cycle) and sweep lazily, for collections started by pacing,
  // start_collection() and idle(). Explicit collect() and heap-limit collections stay
  // stop-the-world (a thread at the limit while a cycle marks is served by that cycle
  // first; docs/heap.md, "Exhaustion"). Off: every collection is stop-the-world.
  bool concurrent_marking = true;
  // Generational collection without moving (docs/gc.md, "Generations"; needs
  // concurrent_marking): survivors keep their mark bits ("sticky"), so a young cycle
  // traces only what was allocated since the last cycle, from the roots and the
  // remembered set (old objects the write barrier saw store a young reference), and
  // sweeps what of it died. A full cycle runs once the old generation has grown by
  // full_gc_growth x max(live, min_gc_trigger) since the last full cycle, live as for
  // gc_growth (and for collect()).
  bool generational = true;
  double full_gc_growth = 0.5;  // zero or more, finite
  // Aging (docs/gc.md, "Aging"): a young object becomes old only when it survives its
  // second young cycle; the first one that keeps it leaves it young. A structure that
  // is being built when a young cycle meets it and dies soon after (a parse tree, a
  // batch of requests) is then freed by the next young cycle instead of waiting in the
  // old generation for a full one. Costs a second trace of what does live on. Off: a
  // young object that survives one young cycle is old.
  bool aging = true;
  // Adaptive aging (docs/gc.md, "Adaptive aging"): each young cycle that ages measures
  // how much of what the cycle before kept young it found alive; when that exceeds half,
  // or what of the old generation the newest full cycle found alive (the program's
  // young objects do not die sooner than its old ones), twice in a row, aging is off
  // for the next 4 young cycles, then for twice as long at each further failed sample,
  // up to 64. Off: aging in every young cycle (with `aging`).
  bool adaptive_aging = true;
  // Adaptive generations (docs/gc.md, "Young cycles that do not pay"): every concurrent
  // cycle's sweep measures young survival - of the young bytes it traced or freed, the
  // share traced (for a full cycle, its young part alone: what a young cycle in its
  // place would have found) - and every full cycle the old generation's survival (of
  // its size as the cycle began). Young cycles save collector work per byte freed only while few
  // young objects survive, and cost memory: what they promote waits, dead, for the next
  // full cycle. When young survival exceeds the point where young cycles save a third
  // of the work (0.4 with the default gc_growth and full_gc_growth) and old objects
  // survive no better than young ones (and under 3/4), both in one full cycle's
  // measure - the generational hypothesis fails, as in a program that churns a large
  // live set at random - the pacer starts full cycles only, until young survival falls
  // below 0.8 of that point or old objects survive 1.25 times better, or 0.85 of them
  // survive. A cycle asked for with CollectionScope::kYoung is young as before (unless a full one is due). Off: the
  // pacer's cycles are young unless full_gc_growth (or a heap limit) calls for a full
  // one.
  bool adaptive_generations = true;
  // A soft limit on the footprint, bytes (0 = none), as Go's GOMEMLIMIT: the pacer
  // collects sooner so that what the last cycle kept plus what the heap allocates
  // before the next cycle ends fits under it, and - with generations - makes a cycle
  // full instead of young when old garbage leaves too little room. Memory traded for
  // collector CPU: a cycle is never started after less than a quarter of the budget
  // gc_growth would give (nor below min_gc_trigger), so a live set that needs more
  // than the limit grows the heap past it - at most four times as many cycles, never a
  // collection storm; that is what makes the limit soft (heap_limit is the hard one).
  // Heap::set_soft_heap_limit changes it at run time.
  size_t soft_heap_limit = 0;
  // Stacks in concurrent cycles (docs/gc.md, "Stacks scanned one thread at a time"):
  // the initial pause scans the threads' stacks, shallowest first, while their live
  // parts add up to at most this many bytes (a 128 KiB budget costs ~30 us); every other
  // stack is scanned after the pause, at its own thread's safepoint (or, for a thread in
  // native code, by a collector thread), so no pause grows with a deep stack. 0: every
  // stack after the pause; SIZE_MAX: every stack in the pause.
  size_t initial_pause_stack_budget = size_t{128} << 10;
  // Marker threads for concurrent marking (Shoal's own work-sharing pool,
  // gc/parallel_marker.h). 0 = a quarter of
  // the hardware threads, at least 1 (as Go's 25 % background utilisation). Pauses
  // (stop-the-world cycles and the final pause) mark with every hardware thread. More
  // than kMaxMarkerThreads is an InvalidArgument; if the system refuses a thread, the
  // cycle marks with those it has.
  unsigned marker_threads = 0;
  // Mark assists (as Go's): while a concurrent cycle marks, a thread that takes a page
  // first traces grey objects itself until the cycle's progress keeps pace with its
  // allocation - the forecast work (what the last cycle of the same kind, young or full,
  // traced) spread over the allocation left before the goal - so the cycle ends near
  // the goal even when the marker threads get little CPU, and what is allocated while it
  // marks (floating garbage) stays within the goal. Costs mutator time while marking.
  // Off: only allocation past the goal assists (docs/gc.md, "Mark assists").
  bool mark_assists = true;
  // Asynchronous preemption (docs/safepoints.md): a thread still running
  // preemption_delay_us after a pause asked it to stop - a loop that neither allocates
  // nor calls safepoint() - is interrupted by a signal (SIGURG) and parked where it is,
  // unless it is inside one of Shoal's indivisible sequences or in library code; then
  // the signal is repeated. Off, or where unavailable (not Linux, ThreadSanitizer
  // builds, a process with its own SIGURG handler, a static executable: see
  // Heap::async_preemption_active), such a loop delays every pause until it polls.
  bool async_preemption = true;
  uint32_t preemption_delay_us = 10;
  // idle(): start a cycle early once this fraction of the pacing trigger is allocated.
  double idle_gc_fraction = 0.5;  // zero or more, finite
  // A concurrent heap whose threads have allocated almost nothing for this long (at a
  // rate under the pacing goal per minute, no cycle ending) gets one full cycle
  // from its marker thread, if what it allocated since its last full cycle is at least
  // an eighth of its footprint: the garbage it held when it went quiet is freed, and
  // the scavenger returns the pages (docs/gc.md, "Idle full cycles"). Once per quiet
  // stretch. 0 = never. A stop-the-world heap has no marker thread: call collect().
  std::chrono::milliseconds idle_full_cycle_after{2000};
  // Run the heap verifier after every collection; a failure throws HeapCorruption.
  bool verify_after_gc = false;
  // Fill freed memory with a pattern and check it is intact when reused. Defaults to on
  // in builds of the library with assertions.
  bool poison_freed_memory = kPoisonByDefault;
  // Called (if set) after a collection that queued finalizers, outside any pause, on
  // the thread that ended the cycle: a mutator or the heap's marker thread. It must not
  // block or touch the heap; post a wake-up to the thread that calls run_finalizers().
  std::function<void()> on_finalizers_pending;
  // The object model the collector traces. Null means Shoal's own (class table).
  const ObjectModel* object_model = nullptr;

  // On in builds of the library with assertions (SHOAL_ASSERTIONS, the debug preset).
  // Defined in the library, not from the consumer's macros, so every translation unit
  // sees the same default.
  static const bool kPoisonByDefault;
};

// One collection's record.
struct CycleRecord {
  uint64_t index = 0;
  const char* cause = "";           // "explicit", "allocation", "heap-limit", "torture", "requested", "idle",
                                    // "idle-background" (HeapOptions::idle_full_cycle_after)
  uint64_t pause_ns = 0;            // stop-the-world time: stop request to resume (for a
                                    // concurrent cycle, both pauses together; never the
                                    // wait for another thread's cycle to finish)
  uint64_t time_to_safepoint_ns = 0;
  uint64_t mark_ns = 0, sweep_ns = 0;  // in the pause(s)
  bool concurrent = false;          // marked concurrently between two pauses
  bool young = false;               // a young cycle: traced what was allocated since the
                                    // last cycle, from the roots and remembered set
  size_t remembered = 0;            // young cycles: remembered holders traced as roots
  size_t remembered_cards = 0;      // young cycles: dirty cards of remembered large objects
                                    // traced (their slots only, not the whole object)
  // Aging (HeapOptions::aging; docs/gc.md, "Aging"): whether this young cycle aged (kept
  // young objects young once; adaptive aging turns it off for a while when most of what
  // a cycle keeps young lives on), the bytes it kept young, and the bytes of objects the
  // last cycle kept young that it made old (they lived on).
  bool aging = false;
  size_t bytes_kept_young = 0, bytes_aged_promoted = 0;
  // Generational full cycles: the old generation's size when the cycle started, and the
  // bytes of it the cycle found alive (adaptive aging compares the two).
  size_t old_bytes_before = 0, old_bytes_survived = 0;
  // Generational: a cycle the pacer made full because young cycles were measured not
  // to pay (HeapOptions::adaptive_generations).
  bool full_for_yield = false;
  uint64_t initial_pause_ns = 0;    // concurrent cycles: the root-snapshot pause
  uint64_t final_pause_ns = 0;      // concurrent cycles: the termination pause
  uint64_t final_time_to_safepoint_ns = 0;  // concurrent cycles: of the final pause
  uint64_t concurrent_mark_ns = 0;  // concurrent cycles: marking while mutators ran
  // Concurrent cycles: the stacks the initial pause leaves are scanned after it, each at
  // its thread's own safepoint (or by a collector thread while it is in native):
  // stack_scan_ns from the initial pause's end until the last stack was scanned;
  // max_stack_scan_ns the longest single stack's scan (a scan a thread does itself
  // delays only that thread). Both 0 when every stack fit the initial pause's budget
  // (HeapOptions::initial_pause_stack_budget).
  uint64_t stack_scan_ns = 0, max_stack_scan_ns = 0;
  size_t assist_objects = 0;        // concurrent cycles: objects traced by mutator assists
  size_t throttle_waits = 0;        // concurrent cycles: allocations that waited for the end
  size_t limit_assists = 0;         // concurrent cycles: allocations that assisted (or waited)
                                    // because the pages in use exceeded the soft limit
  size_t allocated_while_marking = 0;  // concurrent cycles: bytes handed out between the
                                      // pauses (allocated black: kept by this cycle)
  size_t mark_assists = 0;          // concurrent cycles: page takes that traced to keep the
                                    // cycle's progress in step with allocation
                                    // (HeapOptions::mark_assists)
  // Timestamps for the event trace, ns since the heap was created: the (first) pause's
  // stop request, the in-pause mark and sweep, and for concurrent cycles the concurrent
  // mark and the final pause.
  uint64_t start_ns = 0, mark_start_ns = 0, sweep_start_ns = 0;
  uint64_t concurrent_mark_start_ns = 0, final_start_ns = 0;
  size_t live_bytes = 0;            // bytes in live objects' cells after the sweep
  size_t freed_bytes = 0;           // (concurrent cycles: large objects at first, pages
                                    // added once the lazy sweep completes)
  bool sweep_complete = true;       // false while a concurrent cycle's pages are unswept
  size_t heap_in_use_bytes = 0;     // pages in use and large objects at the cycle's largest
                                    // point: its (final) pause, before the sweep
  size_t objects_marked = 0;
  size_t bytes_marked = 0;          // size of the objects marked (traced), bytes
  size_t marker_threads = 0;        // concurrent cycles: marker threads in the concurrent phase
  size_t threads = 0;
};

// Every stop-the-world pause of a heap's life (a concurrent cycle's initial and final
// pauses counted separately), in log-linear buckets: 8 per power of two, so a
// percentile is known to within 12.5 % (the bucket's upper bound is reported), and the
// maximum exactly. Unlike GcStats::recent it forgets nothing.
struct PauseHistogram {
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 64 * kSubBuckets;
  uint64_t count = 0;
  uint64_t max_ns = 0;
  uint64_t total_ns = 0;
  uint64_t buckets[kBuckets] = {};
  void record(uint64_t ns);
  // The smallest bucket upper bound below which at least p % of the pauses fall
  // (p in (0, 100]); max_ns for p = 100; 0 when there are none.
  uint64_t percentile_ns(double p) const;
  static int bucket_of(uint64_t ns);
  static uint64_t upper_bound_ns(int bucket);
};

struct GcStats {
  uint64_t collections = 0;
  uint64_t total_pause_ns = 0;      // every pause of every cycle
  uint64_t max_pause_ns = 0;        // the longest single pause (for a concurrent cycle the
                                    // longer of its initial and final pause, not their
                                    // sum), a cycle's or not: verify()'s and the
                                    // runtime's own (a transfer's check) count too
  uint64_t bytes_allocated = 0;     // cumulative, cell sizes (handed-out TLAB space;
                                    // a thread's share counted 64 KiB at a time, and
                                    // in full at every pause)
  uint64_t bytes_freed = 0;         // cumulative
  size_t live_bytes = 0;            // after the last collection
  size_t footprint_bytes = 0;       // committed pages + large objects, now
  size_t heap_limit = 0;
  size_t pages_in_use = 0, pages_free = 0;
  size_t large_objects = 0, large_bytes = 0;
  size_t peak_footprint_bytes = 0;  // the largest footprint_bytes ever reached
  size_t pages_decommitted = 0;     // of pages_free, those given back to the system
                                    // (not in footprint_bytes)
  uint64_t bytes_released = 0;      // cumulative: free pages given back to the system
                                    // (scavenger, release_free_memory, the heap limit)
  PauseHistogram pauses;            // every pause since the heap was created (cycles',
                                    // verify()'s and the runtime's own)
  PauseHistogram time_to_safepoint; // every pause's wait for the threads to stop
  PauseHistogram resume_latency;    // every stopped thread's wait, after a pause ended,
                                    // until it ran again (the scheduler's share: a pause
                                    // ends when the stopper wakes everyone; with more
                                    // runnable threads than cores a woken thread waits)
  uint64_t preemption_signals = 0;  // asynchronous preemption signals sent (cumulative)
  uint64_t young_collections = 0;   // of `collections`, young cycles (generational)
  // Adaptive generations (HeapOptions::adaptive_generations): whether the pacer starts
  // full cycles only now, and the newest measures behind it, from the newest concurrent
  // cycle that measured them (negative: none yet): young survival (a young cycle's, or a
  // full cycle's young part) and the old generation's survival (a full cycle's). Each
  // is read on its own: not one snapshot.
  bool young_cycles_off = false;
  double young_survival = -1, old_survival = -1;
  std::vector<CycleRecord> recent;  // last (up to) 256 cycles, oldest first, in index order;
                                    // the newest index equals `collections`
};

// A finalizer registration (Heap::add_finalizer), for Heap::cancel_finalizer.
struct FinalizerToken {
  uint64_t id = 0;
};

// Result of Heap::verify().
struct VerifyReport {
  bool ok = true;
  size_t objects_checked = 0;
  size_t pages_checked = 0;
  std::vector<std::string> errors;  // first few failures, human readable
  std::string summary() const;
};

// What Heap::start_collection traces. kFull: the whole heap (every unreachable object
// is found). kYoung: with generational collection on and the marks sticky, only what was
// allocated since the last cycle (from the roots and the remembered set; old garbage
// waits for a full cycle); otherwise full.
enum class CollectionScope { kFull, kYoung };

class Heap {
 public:
  explicit Heap(HeapOptions options = {});
  ~Heap();  // every thread must have detached
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  // A full stop-the-world collection. The calling thread must be attached.
  void collect();
  // Starts a concurrent collection now, unless one is under way, and returns after its
  // initial (root-snapshot) pause; marking and sweeping go on in the background. With
  // concurrent_marking off it is collect(). The calling thread must be attached. Full
  // unless `scope` asks for a young cycle (CollectionScope); pacing chooses by itself.
  void start_collection(CollectionScope scope = CollectionScope::kFull);
  // Waits, as a blocked thread (it does not hold up pauses), until no concurrent
  // collection is under way. The calling thread must be attached.
  void wait_for_collection();
  // True between a concurrent collection's two pauses (the write barrier is on).
  bool is_marking() const;
  // Idle-time hook: the embedder has about `budget` of idle time on this (attached)
  // thread. The heap spends it on collection work: marking for a cycle under way,
  // sweeping a finished cycle's pages, or - if at least idle_gc_fraction of the pacing
  // trigger has been allocated - starting a cycle early. On a stop-the-world heap
  // (concurrent_marking off) that cycle is a collection in this call, made only if the
  // heap's last stop-the-world pause (the forecast of this one) fits the budget. Returns
  // true if it did any work. A budget of zero or less (a deadline already passed) does
  // nothing and returns false.
  bool idle(std::chrono::nanoseconds budget);
  // Stops the world and checks the heap: every object reachable from the roots is
  // allocated (not freed) and well formed, every reference field points at a live object
  // start, free memory is free exactly once, page lists are consistent.
  VerifyReport verify();

  GcStats stats() const;
  const HeapOptions& options() const;
  // Changes HeapOptions::soft_heap_limit (0: none) from any thread, attached or not,
  // including finalizer and handshake callbacks: the goal is refitted at once from the
  // last cycle's figures and every later cycle uses the new limit. options() keeps
  // the value the heap was created with; soft_heap_limit() says the current one.
  void set_soft_heap_limit(size_t bytes);
  size_t soft_heap_limit() const;
  // Gives every free heap page back to the system now (madvise MADV_DONTNEED; Go's
  // debug.FreeOSMemory): the footprint and RSS drop by the returned byte count, and a
  // page is faulted back in, zeroed by the kernel, when the heap needs it again. Without
  // this call the scavenger returns free pages beyond what recent cycles needed, after
  // each cycle and when the heap is idle (docs/gc.md, "Scavenger"). From any thread,
  // attached or not, including finalizer and handshake callbacks.
  size_t release_free_memory();
  // True when threads that do not poll are preempted by signal (HeapOptions::
  // async_preemption, and available in this process); otherwise why not, in
  // async_preemption_status().
  bool async_preemption_active() const;
  std::string async_preemption_status() const;

  // The last (up to 4096) cycles as Chrome trace-event JSON: pauses, time-to-safepoint,
  // marking (in the pause and concurrent), sweeping, on two tracks: the pauses (phases
  // nested) and the marker thread's concurrent marking. From any thread.
  // Open it in Perfetto (ui.perfetto.dev) or chrome://tracing.
  std::string chrome_trace_json() const;

  // Finalizers (gc/finalizers.h; docs/gc.md): `callback` runs once, some time after a
  // collection has found `target` unreachable - never during a pause, never on a
  // collector thread, but on whichever thread calls run_finalizers(). The callback does
  // not get the object (it has been freed by then): capture what the cleanup needs.
  // The calling thread must be attached; target must be a heap object. Returns a token
  // for cancel_finalizer.
  FinalizerToken add_finalizer(Value target, std::function<void()> callback);
  // Cancels a registration whose callback has not started yet (the target still alive,
  // or dead with the callback pending); returns true if it did. Any thread.
  bool cancel_finalizer(FinalizerToken token);
  // Runs up to `max` pending finalizer callbacks on the calling thread (attached or
  // not); returns how many ran. An exception from a callback propagates to the caller;
  // the callbacks behind it stay pending.
  size_t run_finalizers(size_t max = SIZE_MAX);
  size_t pending_finalizers() const;

  // Registered global root slots: the slot's value is kept alive until removed. Write
  // such a slot with store_root (under the heap's root lock, shaded while marking runs;
  // from any thread, but a reference value needs a running thread of this heap, like
  // Persistent::set), read it with Slot::load. store_root works on unregistered slots
  // too, so a slot may be initialised before it is added; a slot inside a heap object
  // (a field) is refused with InvalidArgument: fields are written through the barrier.
  void add_root(Slot* slot);
  void remove_root(Slot* slot);
  void store_root(Slot* slot, Value value);

  // Fibers (see shoal::switch_stack): a finished fiber's suspended stack is no longer a
  // root. Call it before the stack's memory is freed or reused. Any thread. Returns false
  // if no suspended stack has that base.
  bool forget_stack(void* stack_base);

  internal::HeapImpl& impl() { return *impl_; }

 private:
  std::unique_ptr<internal::HeapImpl> impl_;
};

// Attaches the current thread to `heap` for the scope's lifetime. Nested scopes on the
// same heap are allowed; attaching to a second heap throws ThreadStateError.
class MutatorScope {
 public:
  explicit MutatorScope(Heap& heap);
  ~MutatorScope();
  MutatorScope(const MutatorScope&) = delete;
  MutatorScope& operator=(const MutatorScope&) = delete;

 private:
  bool outermost_ = false;
};

// Runs `fn` with the current (attached) thread in the "in native / blocked" state:
// collections and handshakes proceed without waiting for it. `fn` must not read or write
// heap objects; references the caller holds stay alive (the caller's registers and stack
// are captured on entry). Use it around blocking calls (locks, I/O, joins) and long
// native computations. An exception from fn propagates after the thread is running again.
void run_native(const std::function<void()>& fn);

// Fibers, green threads and stackful coroutines (docs/roots.md, "Fibers"). Call it right
// before switching the current thread (attached, running) to another stack - with the
// highest address of the stack it switches to, or null to switch back to the thread's
// own stack - and name where the switch will save the registers of the stack being left
// (`save_area`: for swapcontext, the ucontext_t it saves into; it must stay valid while
// that stack is suspended). From then on the heap scans the new stack for this thread, and the stack
// being left (its live part and the registers) is a root until some thread switches
// back onto it, so objects that only a suspended fiber refers to stay alive; a fiber
// may resume on another thread of the heap. Nothing between this call and the switch
// itself may allocate or reach a safepoint. Throws NotAttached on an unattached thread
// and ThreadStateError inside run_native.
void switch_stack(void* new_stack_base, const void* save_area = nullptr, size_t save_bytes = 0);

// An explicit safepoint poll: parks here if a collection or handshake is pending.
void safepoint();

// The heap the current thread is attached to, or null.
Heap* current_heap();

// Runs `fn(thread_index)` for every attached thread, each at a point where that thread
// is safe (parked at a safepoint or in native), without stopping the world as a whole:
// a per-thread handshake. Returns when every thread's operation has run. The caller
// must be attached.
void handshake_all(Heap& heap, const std::function<void(size_t thread_index)>& fn);

}  // namespace shoal
