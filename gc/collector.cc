// The stop-the-world mark-sweep cycle. See collector.h for the phases and invariants.
#include "gc/collector.h"

#include <algorithm>
#include <span>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "barriers/write_barrier.h"

#include "gc/clock.h"
#include "gc/marker.h"
#include "gc/stack_scanner.h"
#include "gc/sweeper.h"
#include "gc/verifier.h"
#include "heap/heap_impl.h"
#include "shoal/errors.h"

namespace shoal::internal {

// Runs work() with `self` safe (its context captured) and the collector lock held;
// work() stops the world itself if it needs to. `self` is running again afterwards.
// With self == nullptr (the marker thread: not a mutator, nothing to make safe) it
// only takes the lock.
template <class F>
void Collector::with_collector_lock(MutatorThread* self, F&& work) {
  auto locked = [&] {
    MutexLock lock(gc_mu_);
    const Collector* outer = t_collector_lock_held_;
    t_collector_lock_held_ = this;
    try {
      work();
    } catch (...) {
      t_collector_lock_held_ = outer;
      throw;
    }
    t_collector_lock_held_ = outer;
  };
  if (self == nullptr) locked();
  else heap_.threads.run_native(self, locked);
}

thread_local const Collector* Collector::t_collector_lock_held_ = nullptr;

// (In this file, beside the thread-local's definition: stored from another translation
// unit, through the TLS wrapper, an ASan+UBSan build reported a store to a null pointer.)
bool Collector::begin_full_cycle_from_marker_thread(const char* cause) {
  bool retry = false;  // (a final pause handed out pages meanwhile: not idle after all)
  try {
    with_collector_lock(nullptr, [&] {
      begin_concurrent_cycle_locked(nullptr, cause, /*force=*/true, Scope::kFull, retry);
    });
  } catch (const std::exception&) {
    retry = true;  // (nothing started; the pause itself never unwinds)
  }
  return !retry;
}

size_t Collector::release_free_memory() SHOAL_NO_THREAD_SAFETY_ANALYSIS {  // (gc_mu_ held or not)
  heap_.large.purge_freed();  // (any thread, any state: no heap lock)
  if (t_collector_lock_held_ == this) return heap_.release_all_free_pages();
  MutatorThread* t = current_thread();
  if (t && t->heap == &heap_) {
    if (t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) {
      NoPreemptScope no_preempt;  // (a pause waits for this thread: none rebuilds the pool)
      return heap_.release_all_free_pages();
    }
    // A handshake operation of this heap that the thread runs itself, on its way out of
    // run_native (as the requester it holds the lock: above): the requester holds gc_mu_
    // until it has run (so no pause rebuilds the pool), and waiting for the lock here
    // would wait for ever.
    if (in_handshake_op()) return heap_.release_all_free_pages();
  }
  auto locked = [&] {
    MutexLock lock(gc_mu_);
    return heap_.release_all_free_pages();
  };
  // Running on another heap: wait for this heap's lock in native there, so that heap's
  // pauses need not wait for this one's cycle.
  if (t && t->heap != &heap_ && t->state.load(std::memory_order_seq_cst) == ThreadState::kRunning) {
    size_t released = 0;
    t->heap->threads.run_native(t, [&] { released = locked(); });
    return released;
  }
  return locked();
}

// See collector.h.
template <class F>
uint64_t Collector::pause(MutatorThread* self, const char* name, F&& body) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  heap_.threads.stop_the_world(self);
  heap_.roots.lock_for_pause();
  try {
    if (pause_fault_for_testing_.exchange(false, std::memory_order_relaxed)) throw std::bad_alloc();
    body();
  } catch (const std::exception& e) {
    fatal_in_pause(name, e.what());
  } catch (...) {
    fatal_in_pause(name, "an exception");
  }
  heap_.roots.unlock_after_pause();
  return heap_.threads.resume_the_world();
}

[[noreturn]] void Collector::fatal_in_pause(const char* pause, const char* what) {
  std::fprintf(stderr,
               "shoal: fatal: %s thrown inside the %s. A pause cannot unwind: every mutator is parked and "
               "the registry and root locks are held, so resuming is impossible; the process stops here "
               "(docs/errors.md, \"Fatal checks\")\n",
               what, pause);
  std::abort();
}

Collector::Collector(HeapImpl& heap)
    : heap_(heap), generational_(heap.options.generational && heap.options.concurrent_marking), sweeper_(heap) {
  alloc_tags_.store(generational_ ? header::kYoung : 0, std::memory_order_relaxed);
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  pause_workers_ = hw;
  concurrent_workers_ = heap.options.marker_threads != 0 ? heap.options.marker_threads : std::max(1u, hw / 4);
}

Collector::~Collector() {
  stopping_.store(true, std::memory_order_relaxed);
  {
    MutexLock lock(work_mu_);
    shutdown_ = true;
  }
  work_cv_.notify_all();
  if (marker_thread_.joinable()) marker_thread_.join();
  if (scanner_thread_.joinable()) scanner_thread_.join();  // (it finishes a scan requested before)
}

void Collector::scanner_thread_main() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    std::function<void()> hook;
    {
      std::unique_lock<Mutex> lock(work_mu_);
      work_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return shutdown_ || scan_requested_; });
      if (!scan_requested_) return;  // shutdown, nothing asked
      scan_requested_ = false;
      hook = std::move(scan_hook_);
      scan_hook_ = nullptr;
    }
    if (hook) hook();
    const uint64_t ns = scan_stacks_by_handshake();
    {
      MutexLock lock(work_mu_);
      scan_ns_ = ns;
      scan_running_ = false;
    }
    work_cv_.notify_all();
  }
}

// (One frame: the block below is the no-preempt region. The finalizer callback runs
// after it - preemptible, as the rest of its thread is.)
void Collector::collect(MutatorThread* self, const char* cause, bool only_if_needed, const FullMark* seen,
                        bool any_cycle) {
  std::string corruption;
  {
    NoPreemptScope no_preempt;  // collector work on a mutator: claimed pages, grey objects
    throw_pending_corruption();
    CycleRecord record;
    bool busy = true;
    while (busy) {
      // (A thread at the heap limit helps the cycle it waits for: it ends sooner.)
      // (Not under a test's concurrent trace hook: see assist_for_allocation.)
      if (seen && marking_.load(std::memory_order_acquire) && !trace_hook_set_.load(std::memory_order_relaxed))
        assist_while_work(self, UINT64_MAX);
      wait_for_concurrent_cycle(self);
      throw_pending_corruption();  // a finished background cycle's verification failed
      sweep_leftovers(self);       // here, not in the pause
      busy = false;
      with_collector_lock(self, [&] {
        {
          MutexLock lock(work_mu_);
          busy = cycle_active_;  // another thread started a concurrent cycle meanwhile
        }
        if (busy) return;
        if (only_if_needed && !heap_.over_trigger()) return;
        // (Every full collection that started has completed: they all hold gc_mu_.)
        if (seen && full_collections_.load(std::memory_order_relaxed) > seen->collections) return;
        if (seen && any_cycle && concurrent_cycles_ended_.load(std::memory_order_relaxed) > seen->concurrent_cycles)
          return;  // (its sweep finished above)
        parallel_marker_.start_helpers(pause_workers_);  // (before the pause)
        const uint64_t t0 = now_ns();
        record.start_ns = since_start(t0);
        record.pause_ns = pause(self, "stop-the-world pause", [&] {
          const uint64_t t1 = now_ns();
          record.cause = cause;
          record.time_to_safepoint_ns = t1 - t0;
          run_cycle_in_pause(self, record);
          const uint64_t allocated = heap_.allocated_total();
          full_allocated_.store(allocated, std::memory_order_relaxed);
          allocated_at_full_start_.store(allocated, std::memory_order_relaxed);
          full_collections_.fetch_add(1, std::memory_order_release);
          if (heap_.options.verify_after_gc) {
            VerifyReport report = verify_heap_in_pause(heap_);
            if (!report.ok) corruption = report.summary();
          }
        }) - t0;
        record.index = cycles_.fetch_add(1, std::memory_order_acq_rel) + 1;
        // Recorded under gc_mu_, as concurrent cycles are: records stay in index order
        // and the newest index equals stats().collections.
        record_cycle(record);
        last_cycle_end_ns_.store(now_ns(), std::memory_order_relaxed);
        // Without a marker thread to do it later, this thread scavenges (a bounded part).
        if (!heap_.options.concurrent_marking) heap_.scavenge_batch(kScavengePagesAfterPause);
      });
    }
  }
  // What the pause's sweep freed, near the limit (in native: a purge is a batch of
  // system calls, and a pause must not wait for it).
  if (heap_.large_purge_due()) heap_.threads.run_native(self, [&] { heap_.large.purge_freed(); });
  notify_finalizers();
  if (!corruption.empty()) throw HeapCorruption(corruption);
}

void Collector::collect_paced(MutatorThread* self) {
  NoPreemptScope no_preempt;  // collector work on a mutator: claimed pages, grey objects
  if (!heap_.options.concurrent_marking) {
    collect(self, "allocation", /*only_if_needed=*/true);
    return;
  }
  if (marking_.load(std::memory_order_acquire)) {  // a cycle is under way: pace ourselves
    const size_t allocated = heap_.allocated_since_cycle();
    assist_for_allocation(self, allocated);  // (and then the bounds below, as before)
    const size_t trigger = heap_.trigger_bytes();
    // The pages in use count too, against the soft limit or the heap limit's pacing
    // target (heap/heap.cc, "Soft limit" and "Heap limit").
    const size_t limit = heap_.assist_limit();
    const size_t in_use = heap_.pages_in_use_bytes();
    const bool over_limit = in_use > limit;
    if (over_limit) limit_assists_.fetch_add(1, std::memory_order_relaxed);
    if (allocated > kThrottleFactor * trigger ||
        (over_limit && static_cast<double>(in_use) > kSoftLimitThrottle * static_cast<double>(limit))) {
      throttle_waits_.fetch_add(1, std::memory_order_relaxed);
      assist_while_work(self, UINT64_MAX);  // the cycle ends sooner if this thread helps
      wait_for_concurrent_cycle(self);
    } else if (over_limit) {
      assist_marking(self, kSoftLimitAssistBudget);
    } else if (allocated > kAssistFactor * trigger) {
      assist_marking(self, kAssistBudget);
    }
    return;
  }
  if (sweeper_.pending()) {  // finish the last cycle's sweep before starting the next
    sweeper_.sweep_some(kPagesSweptPerPacing);
    report_lazy_sweep();
    return;
  }
  report_lazy_sweep();
  start_concurrent_cycle(self, "allocation", /*force=*/false);
}

// Mark assists (docs/gc.md, "Mark assists"; Go's pacer). A concurrent cycle must trace
// about what the last cycle of its kind traced (E, the forecast), and should end by the
// time the heap has allocated its goal G: it started with A0 allocated, so the
// mutators may allocate R = G - A0 while it marks (at least G / kMinAssistRunway). So
// the cycle owes E / R bytes of tracing per byte allocated since its initial pause.
// Whenever a thread takes a page (every allocation of a new page or large object goes
// through collect_paced while marking runs), the debt so far - ratio x allocated since
// the pause - is compared with the progress: bytes the marker pool has traced since the
// pause plus what assists traced. A thread that finds the cycle behind traces grey
// objects until it is not, or until there is no grey object to take (the marker
// threads hold the rest; an assist never waits for them). The marker threads' work is
// credit, so on an idle core they pay the whole debt and no thread assists; on a loaded
// machine, where they are descheduled, the allocating threads do the marking and the
// cycle still ends near the goal instead of letting black allocation run on.
// A forecast is only the last cycle's figure: a young cycle that meets a large
// structure built since (binary-trees' tree in progress) traces far more. Once the
// progress passes the forecast - or with no forecast yet - the debt is the bound on the
// cycle's work instead (everything young at the snapshot: A0 and the last cycle's
// newborns; for a full cycle everything in use), spread over R + G / kHardGoalSlack,
// as Go's pacer does past its expected scan work. Past the goal the assists of
// collect_paced add theirs, and past twice the goal the throttle waits.
void Collector::set_assist_ratio_in_pause() {
  traced_at_start_.store(parallel_marker_.traced_bytes(), std::memory_order_relaxed);
  assist_allocated_at_start_.store(allocated_at_start_, std::memory_order_relaxed);
  const size_t forecast = (young_ ? last_traced_young_ : last_traced_full_).load(std::memory_order_relaxed);
  const size_t in_use = heap_.pages_in_use_bytes();  // (large objects included: the footprint counts them)
  const size_t bound = young_ ? std::min(in_use, allocated_at_start_ + last_black_) : in_use;
  const size_t goal = heap_.trigger_bytes();
  const size_t runway = std::max(goal > allocated_at_start_ ? goal - allocated_at_start_ : 0, goal / kMinAssistRunway);
  const bool on = heap_.options.mark_assists && runway != 0;
  assist_forecast_.store(forecast, std::memory_order_relaxed);
  assist_ratio_.store(on ? static_cast<double>(forecast) / static_cast<double>(runway) : 0.0, std::memory_order_relaxed);
  assist_worst_ratio_.store(on ? static_cast<double>(bound) / static_cast<double>(runway + goal / kHardGoalSlack) : 0.0,
                            std::memory_order_relaxed);
}

size_t Collector::assist_for_allocation(MutatorThread* self, size_t allocated) {
  // (Not under a test's concurrent trace hook, which wants the marker thread to trace -
  // as ParallelMarker declines assists then: a test holding the marker after its first
  // object would wait for ever if an allocating thread traced the snapshot first.)
  if (trace_hook_set_.load(std::memory_order_relaxed)) return 0;
  const size_t at_start = assist_allocated_at_start_.load(std::memory_order_relaxed);
  const auto since = static_cast<double>(allocated - std::min(allocated, at_start));
  const size_t base = traced_at_start_.load(std::memory_order_relaxed);
  const size_t forecast = assist_forecast_.load(std::memory_order_relaxed);
  auto progress = [&] {
    const size_t pool = parallel_marker_.traced_bytes();
    return (pool > base ? pool - base : 0) + assist_bytes_.load(std::memory_order_relaxed);
  };
  auto owed = [&](size_t done) {
    const double ratio = (done < forecast ? assist_ratio_ : assist_worst_ratio_).load(std::memory_order_relaxed);
    return static_cast<size_t>(ratio * since);
  };
  size_t traced = 0;
  for (int empty = 0; empty < 2 && marking_.load(std::memory_order_acquire);) {
    const size_t done = progress();
    if (done >= owed(done)) break;
    if (const size_t n = assist_marking(self, kAssistBudget); n != 0) {
      traced += n;
      empty = 0;
    } else if (++empty < 2) {
      std::this_thread::yield();  // (the empty assist asked the marker threads to donate)
    }
    if (self->poll_word.load(std::memory_order_relaxed) != 0) heap_.threads.poll_slow(self);
  }
  if (traced != 0) pacing_assists_.fetch_add(1, std::memory_order_relaxed);
  return traced;
}

void Collector::sweep_leftovers(MutatorThread* self) {
  while (sweeper_.sweep_next()) {
    // Poll between pages: another thread may be stopping the world meanwhile.
    if (self->poll_word.load(std::memory_order_relaxed) != 0) heap_.threads.poll_slow(self);
  }
}

void Collector::torture(MutatorThread* self) {
  if (!heap_.options.concurrent_marking) {
    collect(self, "torture");
    return;
  }
  if (marking_.load(std::memory_order_acquire)) {
    // Interleave this thread's mutations with marking at the finest grain.
    assist_marking(self, kTortureAssistBudget);
    return;
  }
  // Generational: every third torture cycle is full, so both kinds interleave with the
  // mutators at the finest grain; every other one leaves every stack to be scanned after
  // its initial pause (gc/thread_stack_scan.cc), whatever the budget.
  const uint64_t n = torture_cycles_.fetch_add(1, std::memory_order_relaxed);
  const bool full = generational_ && n % 3 == 2;
  defer_all_stacks_next_.store(n % 2 == 1, std::memory_order_relaxed);
  start_concurrent_cycle(self, "torture", /*force=*/true, full ? Scope::kFull : Scope::kYoung);
}

bool Collector::idle(MutatorThread* self, std::chrono::nanoseconds budget) {
  if (budget.count() <= 0) return false;  // no idle time (a deadline already passed)
  NoPreemptScope no_preempt;  // collector work on a mutator: claimed pages, grey objects
  const uint64_t deadline = now_ns() + static_cast<uint64_t>(budget.count());
  bool worked = false;
  const bool due = heap_.allocated_since_cycle() >=
                   saturating_size(heap_.options.idle_gc_fraction * static_cast<double>(heap_.trigger_bytes()));
  if (!heap_.options.concurrent_marking) {
    // A stop-the-world heap collects in the call - when its last pause, the forecast of
    // this one, fits the budget: idle time is not a licence for a longer pause.
    if (!due || last_stw_pause_ns_.load(std::memory_order_relaxed) > static_cast<uint64_t>(budget.count()))
      return false;
    collect(self, "idle");
    return true;
  }
  if (!marking_.load(std::memory_order_acquire) && !sweeper_.pending() && due)
    worked = start_concurrent_cycle(self, "idle", /*force=*/true);  // (false: another thread's began first)
  while (now_ns() < deadline) {
    if (marking_.load(std::memory_order_acquire)) {
      if (!assist_while_work(self, deadline)) break;  // the marker threads have the rest
    } else if (sweeper_.pending()) {
      sweeper_.sweep_some(kPagesSweptPerPacing);
      report_lazy_sweep();
    } else {
      break;
    }
    worked = true;
    // (Between batches nothing is held: a pause or handshake may go ahead.)
    if (self->poll_word.load(std::memory_order_relaxed) != 0) heap_.threads.poll_slow(self);
  }
  return worked;
}

bool Collector::assist_while_work(MutatorThread* self, uint64_t deadline) {
  bool worked = false;
  for (int empty = 0; empty < 2 && marking_.load(std::memory_order_acquire) && now_ns() < deadline;) {
    if (assist_marking(self, kAssistBudget) != 0) {
      worked = true;
      empty = 0;
    } else if (++empty < 2) {
      std::this_thread::yield();  // (the first empty assist asked the workers to donate)
    }
    if (self->poll_word.load(std::memory_order_relaxed) != 0) heap_.threads.poll_slow(self);
  }
  return worked;
}

size_t Collector::assist_marking(MutatorThread* self, size_t budget) noexcept {
  NoPreemptScope no_preempt;  // collector work on a mutator: claimed pages, grey objects
  Marker marker(heap_);
  hand_over_satb(self);  // our own shaded objects are work too
  bool holding = false, gave_back = false;
  {
    MutexLock lock(work_mu_);
    const size_t n = std::min(grey_.size(), budget);
    for (size_t i = 0; i < n; ++i) marker.push_grey(grey_[grey_.size() - 1 - i]);
    grey_.resize(grey_.size() - n);
    // Until they are traced or back: the marker thread waits for them before it
    // decides that the grey list is empty (drain_grey_concurrently).
    if (n != 0) ++assists_holding_grey_;
    holding = n != 0;
  }
  size_t traced = marker.drain_some(budget);
  // The marker threads hold the rest of the work: take a chunk of it.
  if (traced < budget && !marker.has_grey()) traced += parallel_marker_.assist(marker, budget - traced);
  assist_objects_.fetch_add(traced, std::memory_order_relaxed);
  // What the assist marked and traced belongs in the cycle's record and pacing figures,
  // like the marker threads' work (the final pause adds it; see finish_concurrent_cycle).
  assist_marked_.fetch_add(marker.objects_marked(), std::memory_order_relaxed);
  assist_bytes_.fetch_add(marker.bytes_traced(), std::memory_order_relaxed);
  // What is left goes to the marker threads' running drain if there is one, else back
  // on the grey list.
  if (marker.has_grey()) parallel_marker_.give_to_drain(marker);
  {
    MutexLock lock(work_mu_);
    if (marker.has_grey()) {
      std::vector<Object*> left = marker.take_grey();
      grey_.insert(grey_.end(), left.begin(), left.end());
      gave_back = true;
    }
    if (holding) --assists_holding_grey_;
    assist_weak_slots_.insert(assist_weak_slots_.end(), marker.weak_slots().begin(), marker.weak_slots().end());
    assist_ephemerons_.insert(assist_ephemerons_.end(), marker.ephemerons().begin(), marker.ephemerons().end());
  }
  if (holding || gave_back) work_cv_.notify_all();  // (the marker thread may wait for either)
  return traced;
}

void Collector::mark_roots(Marker& marker, bool stacks) {
  auto scan_stack = [&](uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers) {
    mark_stack_range(marker, sp, base, registers);
  };
  if (stacks)
    for (MutatorThread* t : heap_.threads.threads_in_pause())
      scan_stack(t->context.sp, t->stack_base, t->context.registers);
  heap_.roots.for_each_suspended_range(scan_stack);
  // (Every scratch list, also those of threads whose stack is scanned later: harmless,
  // and those threads rescan theirs with their stack.)
  heap_.roots.for_each_root([&](Value v) { marker.mark_value(v); });
}

void Collector::take_assist_results(MarkTotals& totals) {
  MutexLock lock(work_mu_);
  totals.weak_slots.insert(totals.weak_slots.end(), assist_weak_slots_.begin(), assist_weak_slots_.end());
  assist_weak_slots_.clear();
  totals.ephemerons.insert(totals.ephemerons.end(), assist_ephemerons_.begin(), assist_ephemerons_.end());
  assist_ephemerons_.clear();
}

void Collector::resolve_ephemerons(MarkTotals& totals) {
  // Fixpoint: an ephemeron whose key has been marked since it was traced gets its value
  // marked and traced - which may mark more keys. Each round either marks something or
  // ends, so it terminates; a round costs O(waiting ephemerons) plus the tracing. The
  // first rounds trace in parallel (a weak map's values behind live keys: possibly
  // large graphs); a fixpoint still going after them is a chain - a value that reaches
  // the next key - and finishes in one serial pass linear in the chain
  // (resolve_ephemeron_chains), not a round per link (40,000 links took 2.5 s).
  for (int round = 0; !totals.ephemerons.empty(); ++round) {
    if (round == kParallelEphemeronRounds) {
      resolve_ephemeron_chains(totals);
      break;
    }
    std::vector<Object*> grey;
    std::vector<Marker::EphemeronSlots> waiting;
    for (const Marker::EphemeronSlots& e : totals.ephemerons) {
      const Value k = e.key->load();
      if (k.is_object() && !Marker::is_marked(heap_, k.as_object())) {
        waiting.push_back(e);
        continue;
      }
      const Value v = e.value->load();
      if (v.is_object() && Marker::try_mark(heap_, v.as_object(), e.holder, e.value)) {
        grey.push_back(v.as_object());
        ++totals.objects_marked;
      }
    }
    totals.ephemerons = std::move(waiting);
    if (grey.empty()) break;  // no progress: the fixpoint
    parallel_marker_.drain(std::move(grey), pause_workers_, totals);  // may add ephemerons
  }
  // The keys still white are dead: clear both halves (the holders are marked).
  for (const Marker::EphemeronSlots& e : totals.ephemerons) {
    SlotAccess::store(*e.key, Value::null());
    SlotAccess::store(*e.value, Value::null());
  }
  totals.ephemerons.clear();
}

// One marker traces what is left, with the waiting ephemerons indexed by key: after it
// traces an object it takes the ephemerons that trace found (their value is marked now
// if the key already is, else they wait under their key), then marks the values of those
// waiting under the object itself - it is marked, so their key is alive. Every object
// this pass marks is traced by it, so no key marked here goes unnoticed; keys marked
// before it are found marked when their ephemeron is taken. What is left waiting under
// a white key goes back to `totals` (dead: the caller clears it).
void Collector::resolve_ephemeron_chains(MarkTotals& totals) {
  Marker m(heap_);
  std::unordered_map<const Object*, std::vector<Marker::EphemeronSlots>> waiting;
  auto take = [&](const Marker::EphemeronSlots& e) {
    const Value k = e.key->load();
    if (k.is_object() && !Marker::is_marked(heap_, k.as_object())) waiting[k.as_object()].push_back(e);
    else m.mark_slot(e.value->load(), e.holder, e.value);
  };
  for (const Marker::EphemeronSlots& e : totals.ephemerons) take(e);
  totals.ephemerons.clear();
  const std::function<void(Object*)> after_each = [&](Object* traced) {
    std::vector<Marker::EphemeronSlots>& found = m.ephemerons();
    for (const Marker::EphemeronSlots& e : found) take(e);
    found.clear();
    if (waiting.empty()) return;
    const auto it = waiting.find(traced);
    if (it == waiting.end()) return;
    for (const Marker::EphemeronSlots& e : it->second) m.mark_slot(e.value->load(), e.holder, e.value);
    waiting.erase(it);
  };
  m.drain(&after_each);
  totals.add(m);
  for (auto& [key, list] : waiting) totals.ephemerons.insert(totals.ephemerons.end(), list.begin(), list.end());
}

void Collector::process_weak_in_pause(MarkTotals& totals) {
  heap_.roots.for_each_weak([&](Slot& slot) {
    const Value v = slot.load();
    if (v.is_object() && !Marker::is_marked(heap_, v.as_object())) SlotAccess::store(slot, Value::null());
  });
  for (Slot* slot : totals.weak_slots) {  // their holders are marked, so still allocated
    const Value v = slot->load();
    if (v.is_object() && !Marker::is_marked(heap_, v.as_object())) SlotAccess::store(*slot, Value::null());
  }
  totals.weak_slots.clear();
  finalizers_queued_ += finalizers_.queue_dead_in_pause(heap_);
}

void Collector::notify_finalizers() {
  if (finalizers_queued_.exchange(0) != 0 && heap_.options.on_finalizers_pending)
    heap_.options.on_finalizers_pending();
}

void Collector::finish_lazy_sweep_in_pause() {
  sweeper_.finish();
  report_lazy_sweep();
}

void Collector::report_lazy_sweep(CycleRecord* current) {
  MutexLock report_lock(report_mu_);
  SweepResult r;
  if (!sweeper_.take_result(r)) return;
  // The survivors include what was allocated (black) while the cycle marked: the goal
  // grows from them only as far as HeapImpl::pacing_size allows.
  const size_t survivors = r.live_bytes + heap_.large.footprint_bytes();
  if (generational_) {
    note_old_generation(survivors - r.newborn_bytes, r.newborn_bytes);  // (newborns: young now)
    note_cycle_yield(r.freed_bytes);
  }
  else heap_.set_goal_from(HeapImpl::pacing_size(survivors, last_marked_bytes_.load(std::memory_order_relaxed)), survivors);
  MutexLock lock(stats_mu_);
  // (Counted under stats_mu_, with the figures in place: a test that sees the count
  // change and then reads stats() finds the record complete.)
  sweep_reports_.fetch_add(1, std::memory_order_release);
  // Swept between the final pause and record_cycle (allocating threads sweep as soon as
  // the world resumes): the figures go into the record when it is recorded.
  if (!current && cycle_unrecorded_) {
    early_sweep_ = r;
    early_sweep_pending_ = true;
    return;
  }
  // A record still in its final pause (`current`) adds its freed bytes to the totals
  // when record_cycle records it; adding them here too would count them twice.
  if (!current) totals_.bytes_freed += r.freed_bytes;
  totals_.live_bytes = r.live_bytes + heap_.large.footprint_bytes();
  // The sweep belongs to the newest concurrent cycle: `current` if that cycle is still
  // in its final pause, else the newest record (a later cycle finishes the sweep before
  // it records itself). Complete that record with the pages' figures.
  CycleRecord* c = current ? current : (recent_.empty() ? nullptr : &recent_.back());
  if (c && c->concurrent && !c->sweep_complete) {
    c->live_bytes += r.live_bytes;
    c->freed_bytes += r.freed_bytes;
    c->sweep_complete = true;
  }
}

void Collector::run_cycle_in_pause(MutatorThread* self, CycleRecord& record) {
  (void)self;
  finish_lazy_sweep_in_pause();
  record.heap_in_use_bytes = heap_.note_peak_in_use();  // (before this cycle's sweep: its largest heap; large objects included)
  const auto& threads = heap_.threads.threads_in_pause();
  record.threads = threads.size();
  for (MutatorThread* t : threads) heap_.retire_all_tlabs(t);
  heap_.large.build_index_in_pause();
  if (generational_) {
    // Always full: from no marks (cleared here: this pause sweeps every page anyway),
    // and the remembered set is moot.
    clear_all_marks();
    for (Object* o : take_remembered_in_pause()) forget_remembered(o, 0, (1u << kCardSets) - 1);
    clear_stale_remembered();
    young_ = false;
  }

  const uint64_t mark_start = now_ns();
  record.mark_start_ns = since_start(mark_start);
  Marker roots(heap_);
  mark_roots(roots);
  MarkTotals totals;
  totals.add(roots);
  parallel_marker_.drain(roots.take_grey(), pause_workers_, totals);
  take_assist_results(totals);
  resolve_ephemerons(totals);
  process_weak_in_pause(totals);
  const uint64_t sweep_start = now_ns();
  record.sweep_start_ns = since_start(sweep_start);
  record.mark_ns = sweep_start - mark_start;
  record.objects_marked = totals.objects_marked;
  record.bytes_marked = totals.bytes_traced;
  last_traced_full_.store(record.bytes_marked, std::memory_order_relaxed);
  end_generation_in_pause(record);  // (the sweep keeps the marks)

  const SweepResult swept = sweep_in_pause(heap_);
  record.sweep_ns = now_ns() - sweep_start;
  record.live_bytes = swept.live_bytes;
  record.freed_bytes = swept.freed_bytes;
  heap_.reset_pacing(record.bytes_marked, record.bytes_marked);  // (no black allocation here: the same as the survivors)
  if (generational_) note_old_generation(swept.live_bytes, 0);
}

// ---- Concurrent cycles -------------------------------------------------------------

bool Collector::start_concurrent_cycle(MutatorThread* self, const char* cause, bool force, Scope scope) {
  // The initial pause needs the last cycle's sweep finished (mark bits clear). Sweep what
  // is left here, on the requesting thread, not in the pause - and again if a final
  // pause handed out new pages to sweep while this thread waited for the lock.
  bool started = false;
  for (bool retry = true; retry;) {
    sweep_leftovers(self);
    retry = false;
    started = start_concurrent_cycle_locked(self, cause, force, scope, retry);
  }
  return started;
}

bool Collector::start_concurrent_cycle_locked(MutatorThread* self, const char* cause, bool force, Scope scope,
                                              bool& retry) {
  bool started = false;
  with_collector_lock(self, [&] { started = begin_concurrent_cycle_locked(self, cause, force, scope, retry); });
  return started;
}

bool Collector::begin_concurrent_cycle_locked(MutatorThread* self, const char* cause, bool force, Scope scope,
                                              bool& retry) {
  {
    MutexLock lock(work_mu_);
    if (cycle_active_ || (!force && !heap_.over_trigger())) return false;
  }
  if (sweeper_.unclaimed()) {
    retry = true;
    return false;
  }
  // A page claimed by another thread (the marker thread's background sweep) may still
  // be in flight; wait for it here, not in the pause. No new claims can appear: every
  // page is claimed, and only a final pause (which needs gc_mu_) hands out new ones.
  while (sweeper_.pending()) std::this_thread::yield();
  report_lazy_sweep();  // (the exact old-generation size, if nobody reported it yet)
  const bool full_cycle = choose_full_before_pause(scope);  // a full one's marks cleared here
  CycleRecord record;
  record.cause = cause;
  record.concurrent = true;
  record.marker_threads = concurrent_workers_;
  // Threads are started before the pause: starting one can fail, and a pause must not
  // throw. (The marker thread waits for cycle_ready_.)
  if (!marker_thread_.joinable()) {
    marker_thread_ = std::thread([this] { marker_thread_main(); });
    name_thread(marker_thread_, "shoal-marker");
  }
  const uint64_t t0 = now_ns();
  record.start_ns = since_start(t0);
  record.initial_pause_ns = pause(self, "initial pause", [&] {
    record.time_to_safepoint_ns = now_ns() - t0;
    finish_lazy_sweep_in_pause();  // mark bits clear again (or sticky: the old objects)
    const auto& threads = heap_.threads.threads_in_pause();
    record.threads = threads.size();
    for (MutatorThread* t : threads) heap_.retire_all_tlabs(t);
    heap_.large.build_index_in_pause();
    const uint64_t mark_start = now_ns();
    std::vector<Object*> remembered;
    record.remembered = begin_generation_in_pause(full_cycle, remembered);
    if (full_cycle) allocated_at_full_start_.store(heap_.allocated_total(), std::memory_order_relaxed);
    record.young = young_;
    record.full_for_yield = full_for_yield_;
    if (young_ && heap_.options.verify_after_gc) {
      // The generational invariant is only interesting here, before a young cycle
      // relies on it (right after a sweep every allocated object is marked).
      VerifyReport report = verify_heap_in_pause(heap_);
      if (!report.ok) {
        MutexLock lock(stats_mu_);
        pending_corruption_ = "before a young cycle: " + report.summary();
      }
    }
    Marker roots(heap_);
    mark_roots(roots, /*stacks=*/false);  // the snapshot, but for the stacks:
    scan_stacks_within_budget_in_pause(roots);  // the shallow ones now, the rest after
    record.mark_ns = now_ns() - mark_start;
    record.objects_marked = roots.objects_marked();
    marking_.store(true, std::memory_order_release);
    g_write_barrier_active.fetch_add(kBarrierMarking, std::memory_order_acq_rel);
    allocated_at_start_ = heap_.allocated_since_cycle();
    set_assist_ratio_in_pause();
    {
      MutexLock lock(work_mu_);
      cycle_active_ = true;
      std::vector<Object*> grey = roots.take_grey();
      if (grey_.empty()) grey_.swap(remembered);  // (no copy of a large remembered set)
      grey_.insert(grey_.end(), remembered.begin(), remembered.end());
      grey_.insert(grey_.end(), grey.begin(), grey.end());
    }
  }) - t0;
  {
    MutexLock lock(work_mu_);
    cycle_started_ns_ = now_ns();
    record.concurrent_mark_start_ns = since_start(cycle_started_ns_);
    pending_record_ = record;
    cycle_ready_ = true;  // the marker thread may take the cycle over now
  }
  work_cv_.notify_all();
  return true;
}

void Collector::shade(MutatorThread* self, Object* o) {
  if (!marking_.load(std::memory_order_acquire)) return;
  if (!Marker::try_mark(heap_, o)) return;
  // (No preemption from the mark to the grey list: a batch taken out of the buffer must
  // reach the grey list before a pause can stop this thread, and the buffer's lock is
  // never held by a stopped thread. The write barrier's callers are in such a region
  // already; this one covers the other callers.)
  NoPreemptScope no_preempt;
  std::vector<Object*> batch;
  {
    MutexLock lock(self->satb_mu);
    self->satb.push_back(o);
    if (self->satb.size() < kSatbBatch) return;
    batch.swap(self->satb);
  }
  give_grey(std::move(batch));
}

void Collector::shade_root(Object* o) {
  if (!marking_.load(std::memory_order_acquire)) return;
  if (!Marker::try_mark(heap_, o)) return;
  give_grey({o});
}

void Collector::hand_over_satb(MutatorThread* t) {
  NoPreemptScope no_preempt;  // (as in shade)
  std::vector<Object*> batch;
  {
    MutexLock lock(t->satb_mu);
    batch.swap(t->satb);
  }
  if (!batch.empty()) give_grey(std::move(batch));
}

void Collector::give_grey(std::vector<Object*>&& objects) {
  {
    MutexLock lock(work_mu_);
    grey_.insert(grey_.end(), objects.begin(), objects.end());
  }
  work_cv_.notify_all();
}

void Collector::set_concurrent_trace_hook(std::function<void(Object*)> hook) {
  MutexLock lock(work_mu_);
  trace_hook_set_.store(static_cast<bool>(hook), std::memory_order_relaxed);
  trace_hook_ = std::move(hook);
}

void Collector::set_before_stack_scan_hook_for_testing(std::function<void()> hook) {
  MutexLock lock(work_mu_);
  before_stack_scan_hook_ = std::move(hook);
}

void Collector::set_before_concurrent_mark_hook_for_testing(std::function<void()> hook) {
  MutexLock lock(work_mu_);
  before_concurrent_mark_hook_ = std::move(hook);
}

void Collector::marker_thread_main() SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  // (Normal priority, unlike the marking helpers: a pause waits for the page this thread
  // may be sweeping, so it must not be starved by the mutators - priority inversion.)
  for (;;) {
    std::function<void(Object*)> hook;
    std::function<void()> before_stack_scan, before_mark;
    {
      std::unique_lock<Mutex> lock(work_mu_);
      // Idle: scavenge now and then, so that a heap whose threads stopped allocating
      // still gives back what its last peaks no longer justify (heap/scavenger.cc).
      // A heap that has gone quiet gets one full cycle (gc/idle_cycle.cc).
      while (!work_cv_.wait_for(lock, idle_wake_interval(),
                                [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return shutdown_ || cycle_ready_; })) {
        lock.unlock();  // (gc_mu_ before work_mu_)
        scavenge_in_background();
        maybe_start_idle_cycle();
        lock.lock();
      }
      if (shutdown_) {
        end_stack_scan();
        if (marking_.exchange(false)) g_write_barrier_active.fetch_sub(kBarrierMarking, std::memory_order_acq_rel);
        return;
      }
      hook = trace_hook_;
      before_stack_scan = before_stack_scan_hook_;
      before_mark = before_concurrent_mark_hook_;
      cycle_ready_ = false;
    }
    if (before_mark) before_mark();
    clear_stale_remembered();  // a full cycle's remembered set (gc/generations.cc)
    MarkTotals totals;
    size_t remembered_cards = 0;
    uint64_t stack_scan_ns = 0;
    {
      // The threads' stacks are scanned by handshake on a thread of its own while this
      // one traces what the initial pause marked: a mutator slow to reach its safepoint
      // (descheduled on a busy machine) then delays its own stack's scan, not marking.
      // The scanner thread is started by the first cycle that needs it and kept.
      bool scanning = false;
      if (stacks_unscanned_.load(std::memory_order_acquire)) {
        if (!scanner_thread_.joinable()) {
          try {
            scanner_thread_ = std::thread([this] { scanner_thread_main(); });
            name_thread(scanner_thread_, "shoal-scanner");
          } catch (const std::system_error&) {
          }
        }
        if (scanner_thread_.joinable()) {
          {
            MutexLock lock(work_mu_);
            scan_requested_ = true;
            scan_running_ = true;
            scan_hook_ = before_stack_scan;
          }
          work_cv_.notify_all();
          scanning = true;
        } else {
          // No thread to be had: scan first, then trace.
          if (before_stack_scan) before_stack_scan();
          stack_scan_ns = scan_stacks_by_handshake();
        }
      }
      // A young cycle's large remembered holders: their dirty cards (after the scan has
      // been requested - the stacks' scan ends the insertion barrier's stretch).
      remembered_cards = trace_remembered_cards(totals);
      drain_grey_concurrently(totals, &hook);
      if (scanning) {
        std::unique_lock<Mutex> lock(work_mu_);
        work_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return !scan_running_; });
        stack_scan_ns = scan_ns_;
      }
    }
    // Concurrent marking, then termination rounds: take the SATB buffers by handshake
    // and drain again until little is left for the final pause.
    for (int round = 0;; ++round) {
      drain_grey_concurrently(totals, &hook);
      if (round == kTerminationRounds || stopping_.load(std::memory_order_relaxed)) break;
      if (flush_satb_buffers() < kFinalPauseGreyLimit) {
        drain_grey_concurrently(totals, &hook);
        break;
      }
    }
    CycleRecord record;
    {
      MutexLock lock(work_mu_);
      record = pending_record_;
      record.concurrent_mark_ns = now_ns() - cycle_started_ns_;
    }
    record.stack_scan_ns = stack_scan_ns;
    record.remembered_cards = remembered_cards;
    record.max_stack_scan_ns = max_stack_scan_ns_.load(std::memory_order_relaxed);
    finish_concurrent_cycle(totals, record);
    notify_finalizers();
    // Background sweep of what the allocators have not swept yet.
    while (!stopping_.load(std::memory_order_relaxed) && sweeper_.sweep_next()) step_aside_while_stopping(heap_.threads);
    report_lazy_sweep();
    if (heap_.large_purge_due()) heap_.large.purge_freed();  // (what the final pause's sweep freed)
    scavenge_in_background();
  }
}

void Collector::scavenge_in_background() {
  // A batch at a time under gc_mu_ (no pause rebuilds the free pool meanwhile), and
  // never while a cycle is due: the threads that want to start it need the lock, and
  // the pages they are about to allocate.
  for (;;) {
    if (stopping_.load(std::memory_order_relaxed) || heap_.over_trigger()) return;
    if (heap_.pages.committed_free_pages() == 0) return;
    MutexLock lock(gc_mu_);
    if (heap_.scavenge_batch(kScavengeBatchPages) == 0) return;
  }
}

void Collector::drain_grey_concurrently(MarkTotals& totals, const std::function<void(Object*)>* hook)
    SHOAL_NO_THREAD_SAFETY_ANALYSIS {  // (a condition wait: std::unique_lock)
  for (;;) {
    std::vector<Object*> grey;
    {
      // An assist that took objects off the grey list gives back what it did not trace
      // (one assist budget at most, and an assist never waits for this thread): wait
      // for it, or a cycle could reach its final pause with a large untraced subgraph.
      std::unique_lock<Mutex> lock(work_mu_);
      work_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return !grey_.empty() || assists_holding_grey_ == 0; });
      grey.swap(grey_);
    }
    if (grey.empty()) return;
    parallel_marker_.drain(std::move(grey), concurrent_workers_, totals, hook, &heap_.threads);
  }
}

size_t Collector::flush_satb_buffers() {
  // Taken under each buffer's lock while the threads run: no handshake, so a thread that
  // is descheduled on a busy machine delays nothing (a handshake waited for every
  // thread's next safepoint: a scheduling delay each round). An object a thread marks
  // but has not yet pushed (it is between the two, inside its no-preempt region) is
  // taken by a later round or by the final pause, which waits for that region to end.
  std::vector<Object*> flushed;
  heap_.threads.for_each_thread([&](MutatorThread& t) {
    MutexLock lock(t.satb_mu);
    flushed.insert(flushed.end(), t.satb.begin(), t.satb.end());
    t.satb.clear();
  });
  const size_t n = flushed.size();
  if (n != 0) give_grey(std::move(flushed));
  return n;
}

void Collector::finish_concurrent_cycle(MarkTotals& totals, CycleRecord& record) {
  MutexLock gc_lock(gc_mu_);
  parallel_marker_.start_helpers(pause_workers_);  // (before the pause)
  const uint64_t t0 = now_ns();
  record.final_start_ns = since_start(t0);
  record.final_pause_ns = pause(nullptr, "final pause", [&] {
    record.final_time_to_safepoint_ns = now_ns() - t0;
    const auto& threads = heap_.threads.threads_in_pause();
    std::vector<Object*> grey;
    for (MutatorThread* t : threads) {
      MutexLock lock(t->satb_mu);  // (uncontended: the threads are stopped)
      grey.insert(grey.end(), t->satb.begin(), t->satb.end());
      t->satb.clear();
    }
    {
      MutexLock lock(work_mu_);
      grey.insert(grey.end(), grey_.begin(), grey_.end());
      grey_.clear();
    }
    const uint64_t mark_start = now_ns();
    record.mark_start_ns = since_start(mark_start);
    parallel_marker_.drain(std::move(grey), pause_workers_, totals);
    // Still marking: the flush colours everything the TLABs handed out since the snapshot.
    for (MutatorThread* t : threads) heap_.retire_all_tlabs(t);
    // After the black flush: objects allocated during marking count as marked.
    take_assist_results(totals);
    resolve_ephemerons(totals);
    process_weak_in_pause(totals);
    marking_.store(false, std::memory_order_release);
    // (Before the sweep; large objects included: the footprint counts them.)
    record.heap_in_use_bytes = heap_.note_peak_in_use(/*demand=*/std::strcmp(record.cause, kIdleCycleCause) != 0);
    g_write_barrier_active.fetch_sub(kBarrierMarking, std::memory_order_acq_rel);
    const uint64_t sweep_start = now_ns();
    record.sweep_start_ns = since_start(sweep_start);
    record.mark_ns += sweep_start - mark_start;
    // (Assists have all returned: their threads are parked.)
    const size_t assist_bytes = assist_bytes_.exchange(0, std::memory_order_relaxed);
    record.objects_marked += totals.objects_marked + assist_marked_.exchange(0, std::memory_order_relaxed) +
                             stack_marked_.exchange(0, std::memory_order_relaxed);
    record.bytes_marked = totals.bytes_traced + assist_bytes;
    (young_ ? last_traced_young_ : last_traced_full_).store(record.bytes_marked, std::memory_order_relaxed);
    assist_ratio_.store(0, std::memory_order_relaxed);
    assist_worst_ratio_.store(0, std::memory_order_relaxed);
    end_generation_in_pause(record);  // before the sweeps: they keep the marks
    // Large objects are swept here; pages are handed to the lazy sweeper, so this pause
    // does not grow with the heap. The cycle record's live/freed bytes cover the large
    // objects; the pages' figures reach GcStats when their sweep completes.
    const auto large = heap_.large.sweep_in_pause(heap_.options.poison_freed_memory, generational_);
    heap_.release(large.freed_bytes);
    last_marked_bytes_.store(record.bytes_marked, std::memory_order_relaxed);  // (read by the sweep's report)
    last_large_freed_.store(large.freed_bytes, std::memory_order_relaxed);
    {
      MutexLock lock(stats_mu_);
      cycle_unrecorded_ = true;  // until record_cycle: see report_lazy_sweep
    }
    sweeper_.begin_in_pause();
    concurrent_cycles_ended_.fetch_add(1, std::memory_order_release);  // (FullMark)
    record.sweep_ns = now_ns() - sweep_start;
    record.live_bytes = large.live_bytes;
    record.freed_bytes = large.freed_bytes;
    record.sweep_complete = false;
    const size_t black = heap_.allocated_since_cycle() - std::min(allocated_at_start_, heap_.allocated_since_cycle());
    heap_.note_runway(black);
    record.allocated_while_marking = black;
    last_black_ = black;
    // An estimate until the sweep reports: what was marked, allocated black, and (young)
    // the old generation before it.
    heap_.reset_pacing(record.bytes_marked, record.bytes_marked + black);
    if (generational_)
      set_generational_goal((last_cycle_young_.load(std::memory_order_relaxed) ? old_generation_bytes() : 0) + record.bytes_marked,
                            black);
    if (heap_.options.verify_after_gc) {
      sweeper_.finish();  // the verifier needs exact allocation state
      report_lazy_sweep(&record);
      VerifyReport report = verify_heap_in_pause(heap_);
      if (!report.ok) {
        MutexLock lock(stats_mu_);
        pending_corruption_ = report.summary();
      }
    }
  }) - t0;
  record.pause_ns = record.initial_pause_ns + record.final_pause_ns;
  record.assist_objects = assist_objects_.exchange(0, std::memory_order_relaxed);
  record.throttle_waits = throttle_waits_.exchange(0, std::memory_order_relaxed);
  record.limit_assists = limit_assists_.exchange(0, std::memory_order_relaxed);
  record.mark_assists = pacing_assists_.exchange(0, std::memory_order_relaxed);
  record.index = cycles_.fetch_add(1, std::memory_order_acq_rel) + 1;
  record_cycle(record);
  last_cycle_end_ns_.store(now_ns(), std::memory_order_relaxed);
  // The cycle ends (for waiters and for collect()'s check under gc_mu_) only once its
  // record is in the statistics.
  {
    MutexLock lock(work_mu_);
    cycle_active_ = false;
  }
  work_cv_.notify_all();
}

void Collector::wait_for_concurrent_cycle(MutatorThread* self) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  if (!heap_.options.concurrent_marking) return;
  heap_.threads.run_native(self, [&] {
    std::unique_lock<Mutex> lock(work_mu_);
    work_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return !cycle_active_; });
  });
}

void Collector::throw_pending_corruption() {
  std::string corruption;
  {
    MutexLock lock(stats_mu_);
    corruption.swap(pending_corruption_);
  }
  if (!corruption.empty()) throw HeapCorruption(corruption);
}

VerifyReport Collector::verify(MutatorThread* self) {
  throw_pending_corruption();
  VerifyReport report;
  exclusive_pause(self, "verifier's pause", [&] { report = verify_heap_in_pause(heap_); });
  throw_pending_corruption();  // (a background cycle's, found while this one waited for it)
  return report;
}

void Collector::exclusive_pause(MutatorThread* self, const char* name, const std::function<void()>& body) {
  bool busy = true;
  while (busy) {
    wait_for_concurrent_cycle(self);
    with_collector_lock(self, [&] {
      {
        MutexLock lock(work_mu_);
        busy = cycle_active_;
      }
      if (busy) return;
      const uint64_t t0 = now_ns();
      uint64_t ttsp = 0;
      const uint64_t end = pause(self, name, [&] {
        ttsp = now_ns() - t0;
        finish_lazy_sweep_in_pause();
        for (MutatorThread* t : heap_.threads.threads_in_pause()) heap_.retire_all_tlabs(t);
        heap_.large.build_index_in_pause();
        body();
      });
      record_pause_outside_cycles(end - t0, ttsp);
    });
  }
}

void Collector::record_pause_outside_cycles(uint64_t pause_ns, uint64_t time_to_safepoint_ns) {
  MutexLock lock(stats_mu_);
  totals_.pauses.record(pause_ns);
  totals_.time_to_safepoint.record(time_to_safepoint_ns);
  if (pause_ns > totals_.max_pause_ns) totals_.max_pause_ns = pause_ns;
}

void Collector::handshake_all(MutatorThread* self, const HandshakeOp& op) {
  with_collector_lock(self, [&] { heap_.threads.handshake_all(self, op); });
}

void Collector::record_cycle(const CycleRecord& cycle) {
  MutexLock lock(stats_mu_);
  CycleRecord record = cycle;
  if (early_sweep_pending_) {  // its sweep completed before it was recorded
    record.live_bytes += early_sweep_.live_bytes;
    record.freed_bytes += early_sweep_.freed_bytes;
    record.sweep_complete = true;
    early_sweep_pending_ = false;
  }
  cycle_unrecorded_ = false;
  totals_.collections++;
  totals_.total_pause_ns += record.pause_ns;
  const uint64_t longest =
      record.concurrent ? std::max(record.initial_pause_ns, record.final_pause_ns) : record.pause_ns;
  if (longest > totals_.max_pause_ns) totals_.max_pause_ns = longest;
  if (record.young) totals_.young_collections++;
  if (!record.concurrent) last_stw_pause_ns_.store(record.pause_ns, std::memory_order_relaxed);
  if (record.concurrent) {
    totals_.pauses.record(record.initial_pause_ns);
    totals_.pauses.record(record.final_pause_ns);
    totals_.time_to_safepoint.record(record.time_to_safepoint_ns);
    totals_.time_to_safepoint.record(record.final_time_to_safepoint_ns);
  } else {
    totals_.pauses.record(record.pause_ns);
    totals_.time_to_safepoint.record(record.time_to_safepoint_ns);
  }
  totals_.bytes_freed += record.freed_bytes;
  totals_.live_bytes = record.live_bytes;
  recent_.push_back(record);
  if (recent_.size() > kCycleLogSize) recent_.pop_front();
}

GcStats Collector::stats() const {
  MutexLock lock(stats_mu_);
  GcStats s = totals_;
  s.preemption_signals = heap_.threads.preemption_signals();
  s.resume_latency = heap_.threads.resume_latency();
  s.young_cycles_off = young_cycles_off_.load(std::memory_order_relaxed);
  s.young_survival = young_survival_.load(std::memory_order_relaxed);
  s.old_survival = old_survival_measured_.load(std::memory_order_relaxed);
  s.recent.assign(recent_.size() > 256 ? recent_.end() - 256 : recent_.begin(), recent_.end());
  return s;
}

std::vector<CycleRecord> Collector::cycle_log() const {
  MutexLock lock(stats_mu_);
  return {recent_.begin(), recent_.end()};
}

}  // namespace shoal::internal
