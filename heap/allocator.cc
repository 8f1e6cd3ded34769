// The allocation slow path: TLAB refill, page acquisition, large objects, the heap
// limit. The fast path is inline in include/shoal/internal/allocate.h.
//
// Refill order for size class c: the next free run of the page the TLAB already owns;
// else a page from c's available list (swept, has runs); else a page from the free pool;
// else a fresh page carved from the reservation, if the footprint budget allows. Before
// taking a new page the pacing trigger is checked and may start a collection.
//
// Memory handed to a TLAB is not zeroed here: each cell is zeroed as it is allocated, by
// the fast path or allocate_small_slow, inside the no-preempt region. A run is up to a
// page, more than the first-level cache: zeroing it whole when it was taken wrote each
// cell twice, the second time (the constructor) out of cache, and touched pages the
// TLAB never used (GCBench -15 % wall without it; zeroing a 32 KiB chunk at a time,
// which stays in cache, gained only half of that on GCBench and nothing on
// binary-trees - docs/performance.md, "Zeroing each cell as it is allocated"). So the cells past a TLAB's cursor
// hold whatever they held: no start bit covers them and no conservative lookup reads
// them, but the marker's check of a reference to an unflushed object accepts any cell
// of the run with a non-zero header, stale ones too (Marker::check_unflushed). With
// poisoning on, a dirty run is first checked to still hold the poison pattern the
// sweeper wrote, and then zeroed whole, so that check stays exact in that mode.
//
// Pacing counts: a run is counted toward the pacing trigger kPacingChunk at a time, not
// whole when it is taken. The TLAB's limit is the end of the counted part, so the fast
// path falls into the slow path there, which counts the next chunk. A run is up to a
// page (256 KiB), and every pause retires every TLAB: counted whole at the take, each
// class a thread allocates in counted a run after every cycle however little of it was
// used before the next - on a small heap, with a dozen classes in use, enough to start
// the next cycle at once (a cycle storm: 75 cycles in the first 45 ms of the AST
// loader). Nothing is used uncounted: the slow path counts before it bumps past
// counted_end, and a chunk holds the largest cell.
//
// When the limit is hit: collect and retry (large objects first decommit free-pool pages
// to make room in the footprint, before and after collecting); only then throw
// OutOfMemory. The heap is unchanged by a failed allocation.
//
// Heap-limit collections coalesce (retry_at_limit). Threads that hit the limit together
// are served by one full collection: each reads the collector's FullMark before its
// attempt and asks for a collection with it, and the collector skips the request if a
// full collection newer than that has completed meanwhile. A thread that hits the limit
// while a concurrent cycle marks helps that cycle and waits for it, and in its first
// round that cycle (or any that ended after its FullMark was read) serves it too: a
// stop-the-world collection of the whole heap right after a cycle that freed what it
// could was most of the pauses at the limit (13 of 46 collections in one run, each
// ~12 ms and freeing 0-8 MiB). After any collection the thread retries. It gives up
// (OutOfMemory) only when a full collection that ended after its failed attempt left no
// room: its retry fails and the heap has handed out nothing since that collection's
// pause (no newer one ran either) - if another thread took the memory the collection
// freed, that memory may be garbage again by the next collection, so the thread goes
// round once more. At most kLimitRounds rounds, one (shared) collection each: no
// livelock.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "heap/heap_impl.h"
#include "shoal/errors.h"
#include "shoal/internal/allocate.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

namespace {
constexpr size_t kPagesSweptPerRefill = 32;
constexpr size_t kPacingChunk = size_t{32} << 10;
static_assert(kPacingChunk >= kMaxSmallSize, "the slow path counts one chunk to make room for any cell");
constexpr int kLimitRounds = 8;

// The heap limit: `attempt` (which allocates and returns true, or changes nothing and
// returns false) failed after `seen` was read. Collects and retries as the file comment
// says; false when the allocation should throw OutOfMemory.
template <class Attempt>
bool retry_at_limit(HeapImpl& heap, MutatorThread* self, Collector::FullMark seen, Attempt&& attempt) {
  for (int round = 0; round < kLimitRounds; ++round) {
    heap.collector.collect_for_heap_limit(self, seen, /*any_cycle=*/round == 0);
    const Collector::FullMark served = heap.collector.last_full_collection();  // ours, or a newer one
    const bool full = served.collections > seen.collections;  // (else a concurrent cycle served)
    seen = served;
    if (attempt()) return true;
    const Collector::FullMark now = heap.collector.last_full_collection();
    if (full && now.collections == served.collections && heap.allocated_total() == served.allocated_total)
      return false;
  }
  return false;
}

[[noreturn]] void throw_not_attached() {
  throw NotAttached("allocation on a thread that is not attached to a heap; create a shoal::MutatorScope first");
}

// Returns the first address in [from, to) that does not hold the poison byte, or null.
const char* find_poison_violation(const char* from, const char* to) {
  for (const char* p = from; p < to; ++p)
    if (static_cast<uint8_t>(*p) != kPoisonByte) return p;
  return nullptr;
}
}  // namespace

Object* allocate_slow(size_t bytes, uint64_t header_word) {
  MutatorThread* self = current_thread();
  if (!self) throw_not_attached();
  check_heap_access(self, "allocation");
  header_word |= self->owner_bits;  // (alloc_tags: at the store - a pause below may change them)
  HeapImpl& heap = *self->heap;
  if (self->poll_word.load(std::memory_order_relaxed) != 0) heap.threads.poll_slow(self);
  if (const uint32_t n = heap.options.gc_torture_interval; n != 0 && ++self->torture_polls % n == 0)
    heap.collector.torture(self);
  if (bytes > kMaxSmallSize) return heap.allocate_large(self, bytes, header_word);
  return heap.allocate_small_slow(self, size_class_of(bytes), header_word);
}

Object* HeapImpl::allocate_small_slow(MutatorThread* self, size_t cls, uint64_t header_word) {
  Tlab& t = self->tlabs[cls];
  const size_t cell = kClassSize[cls];
  if (t.cursor + cell <= t.end) {
    // Room left: we are here because a safepoint request lowered the limit (served
    // above), or at the end of the run's counted part: count the next chunk.
    if (t.cursor + cell > t.counted_end) {
      const uintptr_t next = std::min(t.end, t.counted_end + kPacingChunk);
      count_allocated(self, next - t.counted_end);
      t.counted_end = next;
    }
    t.limit.store(t.counted_end, std::memory_order_relaxed);
  } else if (const Collector::FullMark seen = collector.last_full_collection(); !refill(self, cls)) {
    // (A class found exhausted goes to a larger class at once, until a refill of it
    // succeeds again: another full collection for each of its allocations was 43,000
    // of them in a test's 3 MiB heap - and tied to the newest full collection, two
    // exhausted classes each made the other's collection stale.)
    if (class_exhausted_[cls].load(std::memory_order_relaxed))
      if (Object* o = allocate_without_a_page(self, cls, header_word)) return o;
    if (!retry_at_limit(*this, self, seen, [&] { return refill(self, cls); })) {
      class_exhausted_[cls].store(true, std::memory_order_relaxed);
      if (Object* o = allocate_without_a_page(self, cls, header_word)) return o;
      throw OutOfMemory(cell, limit, footprint());
    }
  }
  // (Here the TLAB has a cell of the class: it is not exhausted.)
  if (class_exhausted_[cls].load(std::memory_order_relaxed)) class_exhausted_[cls].store(false, std::memory_order_relaxed);
  const uintptr_t p = t.cursor;
  t.cursor = p + cell;
  return construct_in_cell(p, cell, header_word | self->alloc_tags);
}

// The heap limit, after its full collections: no page for class `cls` and no room for
// another. A page serves one class until it is empty, so a heap of a few dozen pages
// whose live cells are spread over many classes (a small heap, several threads) can
// hold plenty of free cells and still have no page for one class: 33 classes, one
// live object each, exhausted an 8 MiB heap (32 pages) at 0.4 % live. So before
// OutOfMemory the object goes into a free cell of the smallest larger class that has
// one - in this thread's TLAB, or a page of that class with free runs. The cell is
// bigger than the object (nothing reads an object's size from its cell; the verifier
// checks only that it fits). Null if no larger class has a free cell either; then the
// footprint may still have room for the cell as a large object (less than a page: no
// page for any class) - the last resort before OutOfMemory. Until a
// refill of the class succeeds again, its allocations that find no page come here
// without collecting first (class_exhausted_); they collect once this returns null.
Object* HeapImpl::allocate_without_a_page(MutatorThread* self, size_t cls, uint64_t header_word) {
  if (Object* o = allocate_in_larger_class(self, cls, header_word)) return o;
  // (The largest class in use has no larger one: less than a page of room may still
  // hold the cell as a large object.)
  return allocate_large_now(self, kClassSize[cls], header_word);
}

Object* HeapImpl::allocate_in_larger_class(MutatorThread* self, size_t cls, uint64_t header_word) {
  for (size_t c = cls + 1; c < kNumSizeClasses; ++c) {
    Tlab& t = self->tlabs[c];
    const size_t cell = kClassSize[c];
    if (t.cursor + cell > t.end) {
      if (!take_next_run(self, c)) {
        PageInfo* page = pages.take_available(c);
        if (!page) continue;
        t.page = page;
        take_run(self, t, page);
      }
    }
    if (t.cursor + cell > t.counted_end) {  // ("Pacing counts" above)
      const uintptr_t next = std::min(t.end, t.counted_end + kPacingChunk);
      count_allocated(self, next - t.counted_end);
      t.counted_end = next;
      t.limit.store(t.counted_end, std::memory_order_relaxed);
    }
    const uintptr_t p = t.cursor;
    t.cursor = p + cell;
    return construct_in_cell(p, cell, header_word | self->alloc_tags);
  }
  return nullptr;
}

bool HeapImpl::take_next_run(MutatorThread* self, size_t cls) {
  Tlab& t = self->tlabs[cls];
  PageInfo* page = t.page;
  if (!page) return false;
  page->flush_allocated(reinterpret_cast<char*>(t.run_start), reinterpret_cast<char*>(t.cursor),
                        allocates_black(*self), allocates_newborn());
  t.cursor = t.end = t.run_start = t.counted_end = 0;
  t.limit.store(0, std::memory_order_relaxed);
  if (page->runs) {
    take_run(self, t, page);
    return true;
  }
  page->state = PageState::kFull;
  t.page = nullptr;
  return false;
}

bool HeapImpl::refill(MutatorThread* self, size_t cls) {
  if (take_next_run(self, cls)) return true;
  PageInfo* page = acquire_page(self, cls);  // may collect; our TLABs are empty by now
  if (!page) return false;
  self->tlabs[cls].page = page;
  take_run(self, self->tlabs[cls], page);
  return true;
}

PageInfo* HeapImpl::acquire_page(MutatorThread* self, size_t cls) {
  report_allocated(self);  // (a page at a time: the pacer's check below sees it all)
  // (While a cycle marks, every page taken asks: its mark assists are owed from the
  // cycle's start, whether or not pacing started it.)
  if (over_trigger() || collector.marking_concurrently()) collector.collect_paced(self);
  if (PageInfo* p = pages.take_available(cls)) return p;
  PageInfo* p = pages.take_free();
  // Sweep lazily before growing the heap: unswept pages hold the free cells the last
  // cycle found. Between batches this thread polls, so a long sweep never holds up a
  // pause (no page is claimed between batches).
  while (!p && collector.sweeper().unclaimed()) {
    if (PageInfo* swept = collector.sweeper().sweep_for_class(cls, kPagesSweptPerRefill)) return swept;
    p = pages.take_free();  // the sweep may have emptied whole pages
    if (!p && self->poll_word.load(std::memory_order_relaxed) != 0) threads.poll_slow(self);
  }
  if (p && !p->committed) {
    if (!try_reserve(kPageSize)) {
      pages.give_free(p);
      return nullptr;
    }
    p->committed = true;
  }
  if (!p) {
    if (!try_reserve(kPageSize)) return nullptr;
    p = pages.carve();
    if (!p) {
      release(kPageSize);
      return nullptr;
    }
  }
  p->assign_class(cls);
  p->reset_to_single_run();
  return p;
}

void HeapImpl::count_allocated(MutatorThread* self, size_t bytes) {
  self->allocated_unreported += bytes;
  // At once when the heap cannot grow by another page: a thread at the limit decides
  // between another round and OutOfMemory by whether anything was handed out since its
  // collection (retry_at_limit), and a run taken by another thread must count.
  if (self->allocated_unreported >= kAllocationReportBatch || footprint() + kPageSize > limit)
    report_allocated(self);
}

void HeapImpl::report_allocated(MutatorThread* self) {
  if (self->allocated_unreported == 0) return;
  note_allocated(self->allocated_unreported);
  self->allocated_unreported = 0;
}

void HeapImpl::take_run(MutatorThread* self, Tlab& t, PageInfo* page) {
  FreeRun* run = page->runs;
  char* start = reinterpret_cast<char*>(run);
  char* end = run->end;
  FreeRun* next = run->next;
  if (options.gc_torture_interval != 0 && static_cast<size_t>(end - start) > page->cell_size) {
    // Torture: hand out one cell at a time, so every allocation is a slow-path poll.
    auto* rest = reinterpret_cast<FreeRun*>(start + page->cell_size);
    rest->next = next;
    rest->end = end;
    next = rest;
    end = start + page->cell_size;
  }
  page->runs = next;
  if (page->dirty && options.poison_freed_memory) {
    if (const char* bad = find_poison_violation(start + sizeof(FreeRun), end)) {
      page->runs = run;  // leave the heap as it was, corruption visible to the verifier
      run->next = next;
      run->end = end;
      char msg[160];
      std::snprintf(msg, sizeof msg, "freed memory at %p was written after it was freed (use after free)",
                    static_cast<const void*>(bad));
      throw HeapCorruption(msg);
    }
    // (Zero after all in this debugging mode: a stale reference into the run's unused
    // part then reads a zero header, and the marker reports it - Marker::check_unflushed.)
    std::memset(start, 0, static_cast<size_t>(end - start));
  }
  page->set_tlab_run(start, end);
  t.cursor = t.run_start = reinterpret_cast<uintptr_t>(start);
  t.end = reinterpret_cast<uintptr_t>(end);
  t.counted_end = std::min(t.end, t.run_start + kPacingChunk);  // ("Pacing counts" above)
  t.limit.store(t.counted_end, std::memory_order_relaxed);
  count_allocated(self, t.counted_end - t.run_start);
}

void HeapImpl::retire_tlab(Tlab& t, bool black) {
  PageInfo* page = t.page;
  if (!page) return;
  page->flush_allocated(reinterpret_cast<char*>(t.run_start), reinterpret_cast<char*>(t.cursor), black,
                        allocates_newborn());
  // The unused tail [cursor, end) stays free but unlisted until the next sweep.
  if (page->runs) pages.give_available(page);
  else page->state = PageState::kFull;
  t.reset();
}

void HeapImpl::retire_all_tlabs(MutatorThread* thread) {
  const bool black = allocates_black(*thread);
  for (Tlab& t : thread->tlabs) retire_tlab(t, black);
  report_allocated(thread);
}

bool HeapImpl::allocates_black(const MutatorThread& thread) const {
  return collector.marking_concurrently() && !thread.stack_scan_pending.load(std::memory_order_relaxed);
}

bool HeapImpl::allocates_newborn() const { return collector.marking_concurrently() && collector.generational(); }

void HeapImpl::flush_tlabs_before_stack_scan(MutatorThread& thread) {
  if (!collector.marking_concurrently()) return;
  for (Tlab& t : thread.tlabs) {
    if (!t.page || t.cursor == t.run_start) continue;
    t.page->record_allocated(reinterpret_cast<char*>(t.run_start), reinterpret_cast<char*>(t.cursor),
                             /*black=*/false, allocates_newborn());
    t.run_start = t.cursor;
  }
}

Object* HeapImpl::allocate_large(MutatorThread* self, size_t bytes, uint64_t header_word) {
  // (Before any size arithmetic: allocation_size wraps for sizes near SIZE_MAX.)
  if (bytes > limit) throw OutOfMemory(bytes, limit, footprint());
  if (over_trigger() || collector.marking_concurrently()) collector.collect_paced(self);
  Object* o = nullptr;
  auto attempt = [&] { return (o = allocate_large_now(self, bytes, header_word)) != nullptr; };
  const Collector::FullMark seen = collector.last_full_collection();
  if (!attempt() && !retry_at_limit(*this, self, seen, attempt)) throw OutOfMemory(bytes, limit, footprint());
  return o;
}

Object* HeapImpl::allocate_large_now(MutatorThread* self, size_t bytes, uint64_t header_word) {
  // (kCarded, with generations: the barrier remembers a large object by card,
  // gc/generations.cc; the cards follow the object.)
  const uint64_t carded = collector.generational() ? header::kCarded : 0;
  const size_t total = LargeObjectSpace::allocation_size(bytes, carded != 0);
  for (int decommitted = 0; decommitted < 2; ++decommitted) {
    if (try_reserve(total)) {
      // (No newborn bit: a large object allocated while a cycle marks stays marked -
      // old - after the sweep, so it must not look young to the barrier.)
      if (Object* o = large.allocate(bytes, header_word | carded | (self->alloc_tags & ~header::kNewbornBits))) {
        if (collector.marking_concurrently()) LargeObject::of(o)->mark.store(1, std::memory_order_relaxed);  // black
        note_allocated(total);
        return o;
      }
      release(total);
    }
    if (decommitted == 0) release_all_free_pages();  // free pages give their footprint back
  }
  return nullptr;
}

}  // namespace shoal::internal
