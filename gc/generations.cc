// Generations without moving: sticky mark bits and a remembered set (Demers et al.,
// "Combining generational and conservative garbage collection", POPL 1990; WebKit's
// Riptide, ../shared/READING.md).
//
// The old generation is the set of marked objects. A sweep that keeps the marks
// (Collector::sweep_keeps_marks) leaves every survivor marked; objects allocated after
// that carry the header's young bit and no mark. A young cycle is a concurrent cycle
// like any other (gc/collector.h), except that:
//   - the initial pause does not clear marks, so the marker stops at old objects (they
//     are "already marked") and traces only young ones reached from the roots or from
//     the remembered set;
//   - the remembered set's holders - old objects the write barrier saw store a young
//     reference - join the grey list as if the snapshot had reached them: their slots
//     are traced (strong slots marked, weak slots recorded for clearing, ephemerons
//     resolved), and the SATB barrier protects their snapshot edges like any grey
//     object's;
//   - the sweep frees unmarked (dead young) cells and keeps the marks again.
// A full cycle starts with no marks (the previous sweep cleared them, or the initial
// pause does when a full cycle is forced while marks are sticky) and traces everything;
// the remembered set is then stale and its holders' bits are cleared by the marker
// thread, off the pause.
//
// The generational invariant (between cycles, marks sticky): every marked object that
// holds a reference (strong, weak or ephemeron) to an unmarked object has the
// remembered bit and is on the remembered set (a thread's buffer or the collector's
// list). Why it holds:
//   - At the end of any cycle every survivor is marked (the sweep freed the rest), so
//     there are no old-to-young edges; the remembered set may be emptied (it is not:
//     holders recorded while marking stay for the next young cycle - harmless).
//   - Afterwards an old-to-young edge can only be made by a store of a young reference
//     into an old object, and every reference store runs the barrier
//     (include/shoal/write_barrier.h): the holder is young (nothing to do), remembered
//     (done), or old - then it is remembered, in the same no-preempt region as the store,
//     so no pause falls between them. write_weak finds the holder from the slot.
//   - Young means "allocated since the last cycle's final pause and not traced": the
//     header's young bit is set at allocation (MutatorState::alloc_tags) only while no
//     marking runs, and the marker clears it when it traces an object. Objects allocated
//     while marking are black (marked at the final pause) and carry no young bit, so
//     "marked" and "young" never hold together at the end of a cycle.
//   - Stores made while a cycle marks need no entry for that cycle: the stored reference
//     was reachable from the snapshot or allocated black, so it is marked by the end
//     (the SATB argument, barriers/write_barrier.h). The barrier still records them; the
//     entries serve the next cycle.
// The verifier checks the invariant (gc/verifier.cc).
//
// Pacing: young cycles start on the usual trigger (gc_growth x the live estimate). The
// final pause chooses the next kind: full once the old generation (the marked bytes:
// the last full cycle's live bytes plus what young cycles promoted) exceeds
// (1 + full_gc_growth) x what the last full cycle left live; the sweep then clears the
// marks. Explicit collect() is a full stop-the-world cycle.
#include <algorithm>

#include "gc/collector.h"
#include "heap/heap_impl.h"

namespace shoal::internal {

void Collector::hand_over_remembered(MutatorThread* t) {
  if (t->remembered.empty()) return;
  MutexLock lock(work_mu_);
  remembered_.insert(remembered_.end(), t->remembered.begin(), t->remembered.end());
  t->remembered.clear();
}

std::vector<Object*> Collector::take_remembered_in_pause() {
  std::vector<Object*> all;
  {
    MutexLock lock(work_mu_);
    all.swap(remembered_);
  }
  for (MutatorThread* t : heap_.threads.threads_in_pause()) {
    all.insert(all.end(), t->remembered.begin(), t->remembered.end());
    t->remembered.clear();
  }
  return all;
}

void Collector::set_allocation_tags_in_pause(uint64_t tags) {
  alloc_tags_.store(tags, std::memory_order_relaxed);
  for (MutatorThread* t : heap_.threads.threads_in_pause()) t->alloc_tags = tags;
}

void Collector::clear_all_marks_in_pause() {
  for (size_t i = 0; i < heap_.pages.carved_pages(); ++i) heap_.pages.page_at(i).mark_bits.clear_all();
  heap_.large.clear_marks_in_pause();
}

void Collector::begin_generation_in_pause(std::vector<Object*>& remembered_grey) {
  young_ = false;
  remembered_in_cycle_ = 0;
  if (!generational_) return;
  std::vector<Object*> remembered = take_remembered_in_pause();
  young_ = keep_marks_.load(std::memory_order_relaxed) && !full_requested_.exchange(false, std::memory_order_relaxed);
  set_allocation_tags_in_pause(0);  // black allocation: nothing allocated now is young
  if (young_) {
    // Old holders of young references: grey, traced like the snapshot's objects.
    remembered_in_cycle_ = remembered.size();
    remembered_grey = std::move(remembered);
    return;
  }
  // A full cycle requested while the marks are sticky (request_full_cycle): start from
  // no marks. (The pacer's full cycles find them cleared by the last sweep.)
  if (keep_marks_.load(std::memory_order_relaxed)) clear_all_marks_in_pause();
  MutexLock lock(work_mu_);
  stale_remembered_.insert(stale_remembered_.end(), remembered.begin(), remembered.end());
}

void Collector::clear_stale_remembered() {
  std::vector<Object*> stale;
  {
    MutexLock lock(work_mu_);
    stale.swap(stale_remembered_);
  }
  // Holders recorded before a full cycle's initial pause are still allocated (old
  // objects are freed only by a full cycle's sweep, which comes after this). A holder
  // the barrier re-records meanwhile may lose its bit here and be recorded twice later:
  // harmless (traced twice).
  for (Object* o : stale) o->clear_gc_bits(header::kRemembered);
}

size_t Collector::pacing_live(size_t marked) const {
  // The old generation's marked bytes include old garbage a young cycle cannot see; the
  // newest full cycle's live bytes are the better estimate of what is really live, so
  // the trigger (gc_growth x live) does not grow with that garbage.
  const size_t full = live_after_full_.load(std::memory_order_relaxed);
  return full != 0 ? std::min(marked, full) : marked;
}

void Collector::end_generation_in_pause(size_t bytes_marked, size_t black_bytes) {
  if (!generational_) return;
  const size_t marked = bytes_marked + black_bytes;
  if (young_) {
    old_estimate_.fetch_add(marked, std::memory_order_relaxed);
  } else {
    live_after_full_.store(marked, std::memory_order_relaxed);
    old_estimate_.store(marked, std::memory_order_relaxed);
  }
  last_cycle_young_.store(young_, std::memory_order_relaxed);
  const double base = static_cast<double>(std::max(live_after_full_.load(std::memory_order_relaxed),
                                                   heap_.options.min_gc_trigger));
  const bool next_full = static_cast<double>(old_estimate_.load(std::memory_order_relaxed)) >
                         base * (1.0 + heap_.options.full_gc_growth);
  keep_marks_.store(!next_full, std::memory_order_release);
  set_allocation_tags_in_pause(header::kYoung);
  young_ = false;
}

}  // namespace shoal::internal
