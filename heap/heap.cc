// shoal::Heap, thread attachment and the small public entry points; HeapImpl's
// construction, footprint accounting and address lookup.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gc/async_preemption.h"
#include "heap/heap_impl.h"
#include "shoal/internal/parking.h"
#include "shoal/errors.h"
#include "shoal/internal/check.h"

namespace shoal {

#if defined(SHOAL_ENABLE_DCHECKS)
const bool HeapOptions::kPoisonByDefault = true;
#else
const bool HeapOptions::kPoisonByDefault = false;
#endif

namespace internal {

[[noreturn]] void check_failed(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "shoal: internal check failed at %s:%d: %s\n", file, line, condition);
  std::abort();
}

namespace {
size_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{8} << 30;
}

size_t validated_limit(const HeapOptions& o) {
  const size_t limit = o.heap_limit == 0 ? physical_memory() : o.heap_limit;
  if (limit < kPageSize)
    throw InvalidArgument("HeapOptions::heap_limit (" + std::to_string(limit) +
                          " bytes) is smaller than one heap page (" + std::to_string(kPageSize) + " bytes)");
  // The limit is reserved as address space (and sizes side tables): past 2^46 bytes it
  // cannot be a real heap on a 47-bit user address space (and SIZE_MAX would overflow).
  if (limit > kMaxHeapLimit)
    throw InvalidArgument("HeapOptions::heap_limit (" + std::to_string(limit) + " bytes) is larger than " +
                          std::to_string(kMaxHeapLimit) + " bytes (64 TiB), the most a heap can reserve");
  if (!(o.gc_growth > 0.0) || !std::isfinite(o.gc_growth))
    throw InvalidArgument("HeapOptions::gc_growth must be positive and finite");
  if (!(o.full_gc_growth >= 0.0) || !std::isfinite(o.full_gc_growth))
    throw InvalidArgument("HeapOptions::full_gc_growth must be zero or more, and finite");
  if (!(o.idle_gc_fraction >= 0.0) || !std::isfinite(o.idle_gc_fraction))
    throw InvalidArgument("HeapOptions::idle_gc_fraction must be zero or more, and finite");
  if (o.marker_threads > kMaxMarkerThreads)
    throw InvalidArgument("HeapOptions::marker_threads (" + std::to_string(o.marker_threads) + ") is more than " +
                          std::to_string(kMaxMarkerThreads));
  return limit;
}

}  // namespace

HeapImpl::HeapImpl(Heap* facade_in, const HeapOptions& opts)
    : facade(facade_in),
      options(opts),
      model(opts.object_model ? *opts.object_model : default_object_model()),
      limit(validated_limit(opts)),
      pages(limit),
      roots(facade_in),
      collector(*this) {
  soft_limit_.store(opts.soft_heap_limit, std::memory_order_relaxed);
  reset_pacing(0, 0);
  if (opts.async_preemption && async_preemption_available())
    threads.enable_async_preemption(uint64_t{opts.preemption_delay_us} * 1000);
}

HeapImpl::~HeapImpl() = default;

bool HeapImpl::try_reserve(size_t bytes) {
  size_t cur = footprint_.load(std::memory_order_relaxed);
  do {
    if (cur > limit || bytes > limit - cur) return false;  // (no wrap for huge `bytes`)
  } while (!footprint_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  const size_t now = cur + bytes;
  size_t peak = peak_footprint_.load(std::memory_order_relaxed);
  while (now > peak && !peak_footprint_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return true;
}

void HeapImpl::set_goal(size_t goal) {
  gc_trigger_.store(goal, std::memory_order_relaxed);
  size_t start = goal;
  if (options.concurrent_marking) {
    const size_t runway = std::min(runway_.load(std::memory_order_relaxed), goal);
    start = std::max(static_cast<size_t>(static_cast<double>(goal) * kMinStartFraction), goal - runway);
  }
  gc_start_.store(start, std::memory_order_relaxed);
}

void HeapImpl::set_goal_from(size_t size, size_t survivors) {
  const size_t grown = saturating_size(static_cast<double>(size) * options.gc_growth);
  set_paced_goal(std::max(options.min_gc_trigger, grown), survivors, 0);
}

void HeapImpl::reset_pacing(size_t marked_bytes, size_t survivors) {
  set_goal_from(marked_bytes, survivors);
  allocated_since_gc_.store(0, std::memory_order_relaxed);
}

// Soft limit (HeapOptions::soft_heap_limit). The pacer's budget B is what the heap may
// allocate from the end of one cycle to the end of the next, and the survivors S of the
// last cycle are still there when that cycle ends: the heap then holds about S + B
// (concurrent marking starts a runway early so that it ends near the goal, set_goal).
// The pages holding them hold more, by a factor k: partly filled pages of each size
// class, the unused tails of runs. k is measured at each cycle's peak (its final pause,
// note_peak_in_use: pages in use over S + what was allocated since) and averaged.
// Under a soft limit M the budget is cut to M / k - S, so that pages in use - and the
// footprint, which grows only when they outgrow it - stay near M, not just the bytes
// in objects. The cut stops at a floor, kSoftLimitFloor x B (and
// min_gc_trigger): when live data alone needs more than M the heap grows past it
// rather than collecting without end, at most 1 / kSoftLimitFloor times as often as
// without the limit. With generations, a cut that reaches the floor while the old
// generation holds what only a full cycle frees (it grew by more than the floor since
// the last full cycle) makes the next cycle full (limits_want_full, read by
// Collector::choose_full_before_pause). While a cycle marks, pages in use past the
// limit make allocating threads assist, and past 1.25x it wait
// (Collector::collect_paced), and the scavenger (heap/scavenger.cc) returns the free
// pages above the limit.
//
// Heap limit (HeapOptions::heap_limit). The hard limit is fitted the same way, under
// kLimitPacingFraction of it: a heap whose live data is half its limit or more would
// otherwise reach the limit before the next paced cycle ended, and every such
// collection is a stop-the-world one of the whole heap (with 120 MiB live under a
// 256 MiB limit, every other cycle: 45 ms pauses). With concurrent marking only (a
// paced stop-the-world collection costs what one at the limit does, only sooner). The
// floor is the soft limit's (a quarter of the budget: at most four times as many
// cycles; and min_gc_trigger) but at most the room under the limit itself, or half
// that room if that is more; past it the heap reaches the limit and collects there,
// stop-the-world. With generations, when the old generation has grown since the last
// full cycle by more than the room left, the next cycle is full:
// a young cycle cannot free what it holds (limits_want_full). While a cycle marks,
// pages in use past the target make allocating threads assist, as past a soft limit.
void HeapImpl::set_paced_goal(size_t budget, size_t survivors, size_t old_growth) {
  MutexLock lock(pacing_mu_);
  pacing_ = {budget, survivors, old_growth};
  apply_paced_goal();
}

size_t HeapImpl::note_peak_in_use(bool demand) {
  const size_t in_use = pages_in_use_bytes();
  MutexLock lock(pacing_mu_);
  if (demand) remember_peak(in_use);
  const size_t accounted = pacing_.survivors + allocated_since_cycle();
  if (accounted < 16 * kPageSize) return in_use;  // too little to tell: a page per class is most of it
  const double r = std::clamp(static_cast<double>(in_use) / static_cast<double>(accounted), 1.0, kMaxOverhead);
  overhead_ = (overhead_ + r) / 2;
  return in_use;
}

void HeapImpl::set_soft_limit(size_t bytes) {
  soft_limit_.store(bytes, std::memory_order_relaxed);
  MutexLock lock(pacing_mu_);
  if (pacing_.budget != 0) apply_paced_goal();  // (before the first cycle: reset_pacing applies it)
}

void HeapImpl::apply_paced_goal() {
  const PacingInputs& in = pacing_;
  size_t goal = in.budget;
  const double overhead = overhead_;
  const size_t survivors = in.survivors;
  // What may be allocated before the pages in use reach `m` at the next cycle's peak.
  auto room_under = [&](size_t m) {
    const size_t fits = saturating_size(static_cast<double>(m) / overhead);
    return fits > survivors ? fits - survivors : 0;
  };
  // Cuts the goal to the room under `m` (at least `floor`); returns that room.
  auto fit_under = [&](size_t m, size_t floor) {
    const size_t room = room_under(m);
    goal = std::min(goal, std::max(room, floor));
    return room;
  };
  bool wants_full = false;
  if (const size_t m = soft_limit(); m != 0) {
    const size_t floor =
        std::max(options.min_gc_trigger, saturating_size(static_cast<double>(in.budget) * kSoftLimitFloor));
    const size_t room = fit_under(m, floor);
    wants_full = room < floor && in.old_growth > floor;
  }
  // The heap limit ("Heap limit" above), with concurrent marking only: a paced
  // stop-the-world collection costs what one at the limit does, only sooner. The floor:
  // a quarter of the budget, as the soft limit's (at most four times as many cycles),
  // but no more than the room under the limit itself; min_gc_trigger, half that room,
  // and a page - never a goal of 0, a cycle storm.
  if (options.concurrent_marking) {
    const size_t room_under_limit = room_under(limit);
    const size_t quarter = saturating_size(static_cast<double>(in.budget) * kSoftLimitFloor);
    const size_t floor =
        std::max({options.min_gc_trigger, std::min(quarter, room_under_limit), room_under_limit / 2, kPageSize});
    const size_t room = fit_under(limit_pacing_target(), floor);
    wants_full = wants_full || (room < in.budget && in.old_growth > room);
  }
  limits_want_full_.store(wants_full, std::memory_order_relaxed);
  set_goal(goal);
}

void HeapImpl::note_runway(size_t bytes) {
  const size_t old = runway_.load(std::memory_order_relaxed);
  runway_.store(old == 0 ? bytes : (old + bytes) / 2, std::memory_order_relaxed);
}

Object* HeapImpl::object_containing(uintptr_t a) const {
  if (pages.contains(a)) {
    if (!pages.is_carved(a)) return nullptr;
    return pages.page_of(a).object_containing(a);
  }
  LargeObject* l = large.find_containing(a);
  return l ? l->object() : nullptr;
}

Object* HeapImpl::holder_of_slot(uintptr_t a) const {
  if (pages.contains(a)) {
    if (!pages.is_carved(a)) return nullptr;
    const PageInfo& page = pages.page_of(a);
    const size_t cell = (a - reinterpret_cast<uintptr_t>(page.start)) / page.cell_size;
    if (!page.alloc_bits.test(cell * page.cell_granules)) return nullptr;
    return reinterpret_cast<Object*>(page.start + cell * page.cell_size);
  }
  LargeObject* l = large.find_containing_any(a);
  return l ? l->object() : nullptr;
}

bool HeapImpl::is_allocated_object_start(const Object* o) const {
  const auto a = reinterpret_cast<uintptr_t>(o);
  if (a % kObjectAlignment != 0) return false;
  return object_containing(a) == o;
}

}  // namespace internal

using internal::current_thread;
using internal::HeapImpl;
using internal::MutatorThread;
using internal::NoHeapAccessScope;

OutOfMemory::OutOfMemory(size_t requested, size_t limit, size_t footprint)
    : Error("shoal: out of memory: cannot allocate " + std::to_string(requested) + " bytes; heap limit " +
            std::to_string(limit) + " bytes, footprint " + std::to_string(footprint) + " bytes after a full collection"),
      requested_(requested),
      limit_(limit) {}

OutOfMemory::OutOfMemory(size_t requested, const std::string& reason)
    : Error("shoal: out of memory: cannot reserve " + std::to_string(requested) + " bytes: " + reason),
      requested_(requested),
      limit_(0) {}

Value Value::from_int(int64_t v) {
  if (v < kMinSmallInt || v > kMaxSmallInt)
    throw InvalidArgument("Value::from_int: " + std::to_string(v) + " does not fit in 63 bits");
  return Value((static_cast<uint64_t>(v) << 1) | 1);
}

std::string VerifyReport::summary() const {
  std::string s = ok ? "heap ok" : "heap corrupt";
  s += " (" + std::to_string(objects_checked) + " reachable objects, " + std::to_string(pages_checked) + " pages)";
  for (const auto& e : errors) s += "\n  " + e;
  return s;
}

Heap::Heap(HeapOptions options) : impl_(std::make_unique<HeapImpl>(this, options)) {}
Heap::~Heap() {
  // Checked before any member goes: the marker thread, joined first, may be waiting for
  // the attached thread (a handshake or a final pause), which would hang instead.
  if (const size_t attached = impl_->threads.count(); attached != 0) {
    std::fprintf(stderr, "shoal: heap destroyed while %zu thread(s) are still attached\n", attached);
    std::abort();
  }
  // The teardown joins the collector's threads, which finish what they are doing first:
  // a thread running on another heap waits GC-safe, so that heap's pauses go on.
  internal::block_gc_safe([&] { impl_.reset(); });
}

void Heap::collect() {
  MutatorThread* t = internal::require_running_thread("Heap::collect");
  if (t->heap != impl_.get()) throw NotAttached("Heap::collect: the current thread is attached to another heap");
  impl_->collector.collect(t, "explicit");
}

namespace {
MutatorThread* require_this_heap(HeapImpl* heap, const char* what) {
  MutatorThread* t = internal::require_running_thread(what);
  if (t->heap != heap) throw NotAttached(std::string(what) + ": the current thread is attached to another heap");
  return t;
}
}  // namespace

void Heap::start_collection(CollectionScope scope) {
  internal::NoPreemptScope no_preempt;
  MutatorThread* t = require_this_heap(impl_.get(), "Heap::start_collection");
  if (impl_->options.concurrent_marking)
    impl_->collector.start_concurrent_cycle(
        t, "requested", /*force=*/true,
        scope == CollectionScope::kFull ? internal::Collector::Scope::kFull : internal::Collector::Scope::kYoung);
  else
    impl_->collector.collect(t, "explicit");
}

void Heap::wait_for_collection() {
  internal::NoPreemptScope no_preempt;
  impl_->collector.wait_for_concurrent_cycle(require_this_heap(impl_.get(), "Heap::wait_for_collection"));
}

bool Heap::async_preemption_active() const { return impl_->threads.async_preemption_enabled(); }

std::string Heap::async_preemption_status() const {
  if (impl_->threads.async_preemption_enabled()) return "active";
  if (!impl_->options.async_preemption) return "off (HeapOptions::async_preemption = false)";
  return std::string("unavailable: ") + internal::preemption_unavailable_reason();
}

bool Heap::is_marking() const { return impl_->collector.marking_concurrently(); }

bool Heap::idle(std::chrono::nanoseconds budget) {
  return impl_->collector.idle(require_this_heap(impl_.get(), "Heap::idle"), budget);
}

FinalizerToken Heap::add_finalizer(Value target, std::function<void()> callback) {
  internal::MutatorThread* self = require_this_heap(impl_.get(), "Heap::add_finalizer");
  if (!target.is_object()) throw InvalidArgument("Heap::add_finalizer: the target is not a heap object");
  // (Another heap's object would be looked up in this heap's mark bits at each cycle.)
  internal::check_object_heap(self, target.as_object(), "Heap::add_finalizer");
  if (!callback) throw InvalidArgument("Heap::add_finalizer: empty callback");
  return FinalizerToken{impl_->collector.finalizers().add(target.as_object(), std::move(callback))};
}

bool Heap::cancel_finalizer(FinalizerToken token) { return impl_->collector.finalizers().cancel(token.id); }

size_t Heap::run_finalizers(size_t max) { return impl_->collector.finalizers().run_pending(max); }
size_t Heap::pending_finalizers() const { return impl_->collector.finalizers().pending(); }

VerifyReport Heap::verify() {
  internal::NoPreemptScope no_preempt;
  MutatorThread* t = internal::require_running_thread("Heap::verify");
  if (t->heap != impl_.get()) throw NotAttached("Heap::verify: the current thread is attached to another heap");
  return impl_->collector.verify(t);
}

int PauseHistogram::bucket_of(uint64_t ns) {
  if (ns < kSubBuckets) return static_cast<int>(ns);  // 0..7 ns: exact
  const int top = 63 - __builtin_clzll(ns);           // ns in [2^top, 2^(top+1))
  const int sub = static_cast<int>((ns >> (top - 3)) & (kSubBuckets - 1));
  return std::min(kBuckets - 1, (top - 2) * kSubBuckets + sub);
}

uint64_t PauseHistogram::upper_bound_ns(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  const int top = bucket / kSubBuckets + 2;
  const uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets);
  if (top >= 63) return UINT64_MAX;
  return (uint64_t{1} << top) + ((sub + 1) << (top - 3)) - 1;
}

void PauseHistogram::record(uint64_t ns) {
  ++count;
  total_ns += ns;
  if (ns > max_ns) max_ns = ns;
  ++buckets[bucket_of(ns)];
}

uint64_t PauseHistogram::percentile_ns(double p) const {
  if (count == 0) return 0;
  if (p >= 100.0) return max_ns;
  const auto rank = static_cast<uint64_t>(std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(count))));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets[b];
    if (seen >= rank) return std::min(upper_bound_ns(b), max_ns);
  }
  return max_ns;
}

GcStats Heap::stats() const {
  GcStats s = impl_->collector.stats();
  s.bytes_allocated = impl_->allocated_total();
  s.footprint_bytes = impl_->footprint();
  s.peak_footprint_bytes = std::max(impl_->peak_footprint(), s.footprint_bytes);
  s.heap_limit = impl_->limit;
  s.pages_free = impl_->pages.free_pages();
  s.pages_decommitted = s.pages_free - std::min(s.pages_free, impl_->pages.committed_free_pages());
  s.bytes_released = impl_->bytes_released();
  s.pages_in_use = impl_->pages.carved_pages() - s.pages_free;
  s.large_objects = impl_->large.count();
  s.large_bytes = impl_->large.footprint_bytes();
  return s;
}

const HeapOptions& Heap::options() const { return impl_->options; }
void Heap::set_soft_heap_limit(size_t bytes) { impl_->set_soft_limit(bytes); }
size_t Heap::soft_heap_limit() const { return impl_->soft_limit(); }
size_t Heap::release_free_memory() { return impl_->collector.release_free_memory(); }
void Heap::add_root(Slot* slot) { impl_->roots.add_global(slot); }
void Heap::remove_root(Slot* slot) { impl_->roots.remove_global(slot); }
void Heap::store_root(Slot* slot, Value value) {
  if (value.is_object()) internal::require_running(*impl_, "Heap::store_root");
  impl_->roots.store_global(slot, value);
}

namespace {
// Detaches the calling thread (its outermost scope is ending, or it is exiting).
void detach_current_thread(MutatorThread* t) {
  // A pause retires every thread's TLABs and takes its SATB buffer: it must not fall in
  // the middle of this thread doing the same.
  internal::NoPreemptScope no_preempt;
  HeapImpl* h = t->heap;
  // A thread that switched stacks (fibers) may have left its own stack recorded as a
  // suspended root; once it detaches that stack is no root (and may soon be unmapped).
  if (t->switched_stacks) h->roots.forget_stack(t->own_stack_base);
  h->retire_all_tlabs(t);
  h->collector.hand_over_satb(t);  // grey objects in its buffer must not leave with it
  h->collector.hand_over_remembered(t);  // nor old holders of young references
  internal::tls_mutator = nullptr;
  internal::set_store_key_running(false);
  h->threads.detach(t);
}

// A thread that exits while still attached - a MutatorScope leaked with new, or a thread
// ended by means that skip destructors of its frames - would leave a record whose stack
// the next collection scans after it is unmapped (the Boehm GC's most reported crash).
// This thread_local's destructor runs in the exiting thread, after every scope that did
// unwind, and detaches it if it is still attached.
struct DetachAtThreadExit {
  bool armed = false;
  ~DetachAtThreadExit() {
    if (MutatorThread* t = current_thread()) {
      t->attach_depth = 0;
      detach_current_thread(t);
    }
  }
};
thread_local DetachAtThreadExit detach_at_exit;
}  // namespace

MutatorScope::MutatorScope(Heap& heap) {
  HeapImpl* h = &heap.impl();
  if (MutatorThread* t = current_thread()) {
    if (t->heap != h) throw ThreadStateError("MutatorScope: this thread is already attached to another heap");
    ++t->attach_depth;
    return;
  }
  MutatorThread* t = h->threads.attach(h);
  t->attach_depth = 1;
  internal::tls_mutator = t;
  internal::set_store_key_running(true);
  outermost_ = true;
  detach_at_exit.armed = true;  // constructs the exit guard on this thread's first attach
}

MutatorScope::~MutatorScope() {
  MutatorThread* t = current_thread();
  if (!t) return;
  if (--t->attach_depth > 0) return;
  detach_current_thread(t);
}

void run_native(const std::function<void()>& fn) {
  MutatorThread* t = current_thread();
  if (!t) throw NotAttached("run_native on a thread that is not attached to a heap; create a shoal::MutatorScope first");
  // Nested inside run_native, or inside a handshake operation (which runs while the
  // world cannot stop: the handshake holds the collector lock), the thread is already
  // off the heap: just run fn. (Going through the native transition again from a
  // handshake operation would try to serve the same handshake and deadlock on itself.)
  if (t->native_depth > 0 || t->no_heap_depth > 0) {
    fn();
    return;
  }
  std::exception_ptr error;
  t->native_depth = 1;
  t->heap->threads.run_native(t, [&] {
    try {
      NoHeapAccessScope no_heap(t);
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t->native_depth = 0;
  if (error) std::rethrow_exception(error);
}

[[gnu::noinline]] void switch_stack(void* new_stack_base, const void* save_area, size_t save_bytes) {
  internal::NoPreemptScope no_preempt;  // the recorded stack and the real one change apart
  MutatorThread* t = internal::require_running_thread("switch_stack");
  internal::check_heap_access(t, "switch_stack");
  const uintptr_t entering = new_stack_base ? reinterpret_cast<uintptr_t>(new_stack_base) : t->own_stack_base;
  if (entering == t->stack_base) return;
  internal::SuspendedStack leaving;
  leaving.base = t->stack_base;
  leaving.save_area = reinterpret_cast<uintptr_t>(save_area);
  leaving.save_bytes = save_area ? save_bytes : 0;
  t->switched_stacks = true;
  // The leaving stack's live part starts at this frame: the callers' frames and the
  // callee-saved registers they left in registers (captured here) are what the
  // suspended fiber holds.
  internal::with_captured_context(leaving.registers, [&] {
    leaving.sp = leaving.registers.sp;
    // The stack pointer must lie below the stack being left; if not, the last switch
    // was not announced (its scan range would span unrelated memory).
    if (leaving.sp >= leaving.base)
      throw InvalidArgument("switch_stack: the stack pointer is above the current stack's base: a stack "
                            "switch was made without switch_stack");
    // A concurrent cycle scanned the suspended stacks in its initial pause; one suspended
    // now must already be scanned (gc/thread_stack_scan.cc): scan it - and so this
    // thread - first, if the cycle has not done so yet.
    t->heap->collector.scan_own_stack_before_switch(t, leaving.registers, leaving.base);
    t->heap->roots.switch_stacks(&leaving, entering);
    t->stack_base = entering;
  });
}

bool Heap::forget_stack(void* stack_base) {
  return impl_->roots.forget_stack(reinterpret_cast<uintptr_t>(stack_base));
}

void safepoint() {
  MutatorThread* t = internal::require_running_thread("safepoint");
  HeapImpl& h = *t->heap;
  if (t->poll_word.load(std::memory_order_relaxed) != 0) h.threads.poll_slow(t);
  if (const uint32_t n = h.options.gc_torture_interval; n != 0 && ++t->torture_polls % n == 0)
    h.collector.torture(t);
}

Heap* current_heap() {
  MutatorThread* t = current_thread();
  return t ? t->heap->facade : nullptr;
}

void handshake_all(Heap& heap, const std::function<void(size_t)>& fn) {
  MutatorThread* t = internal::require_running_thread("handshake_all");
  if (t->heap != &heap.impl()) throw NotAttached("handshake_all: the current thread is attached to another heap");
  heap.impl().collector.handshake_all(t, [&](MutatorThread& target) { fn(target.index); });
}

}  // namespace shoal
