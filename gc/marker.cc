// Marking over side bitmaps. See marker.h for the colours and the invariant.
#include "gc/marker.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gc/collector.h"
#include "heap/heap_impl.h"
#include "heap/large_object_space.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

void Marker::mark_conservative(uintptr_t word) {
  if (Object* o = heap_->object_containing(word)) mark_object(o);
}

void Marker::mark_conservative_batch(std::vector<uintptr_t>& words) {
  PageSpace& pages = heap_->pages;
  size_t n = 0;
  for (uintptr_t w : words) {
    if (pages.is_carved(w)) {
      words[n++] = w;
    } else if (heap_->large.index_may_contain(w)) {
      mark_conservative(w);
    }
  }
  words.resize(n);
  for (uintptr_t w : words) __builtin_prefetch(&pages.page_of(w));
  for (uintptr_t w : words) {
    const PageInfo& page = pages.page_of(w);
    __builtin_prefetch(page.alloc_bits.word_address(page.granule_of(reinterpret_cast<const void*>(w))));
  }
  for (uintptr_t w : words) mark_conservative(w);
}

Marker::Marker(HeapImpl& heap) : heap_(&heap), layout_mask_(heap.model.layout_key_mask()) {}

Marker::Mark Marker::mark_inline(HeapImpl& heap, Object* o) {
  // The checks ride on work the unchecked marker did anyway: the page test compares with
  // the end of the carved pages instead of the reservation's (alignment included, see
  // in_carved_pages_aligned), and a white object's start bit sits beside its mark bit.
  const auto a = reinterpret_cast<uintptr_t>(o);
  PageSpace& pages = heap.pages;
  if (!pages.in_carved_pages_aligned(a)) [[unlikely]]
    return mark_outside_pages(heap, o);
  PageInfo& page = pages.page_of(a);
  const size_t g = page.granule_of(o);
  if (!page.mark_bits.test_and_set(g)) return Mark::kAlreadyMarked;  // checked when it was marked
  if (page.alloc_bits.test(g)) [[likely]]
    return Mark::kGrey;
  return check_unflushed(heap, o);
}

Marker::Mark Marker::mark(HeapImpl& heap, Object* o) { return mark_inline(heap, o); }

Marker::Mark Marker::mark_outside_pages(HeapImpl& heap, Object* o) {
  if (heap.pages.contains(o) || !heap.large.is_object_start(o)) [[unlikely]]
    return Mark::kBad;  // misaligned, in a page not carved yet, or not a large object
  LargeObject* l = LargeObject::of(o);
  SHOAL_DCHECK(l->magic == LargeObject::kMagic);
  const bool grey = l->mark.load(std::memory_order_relaxed) == 0 && l->mark.exchange(1, std::memory_order_relaxed) == 0;
  return grey ? Mark::kGrey : Mark::kAlreadyMarked;
}

Marker::Mark Marker::check_unflushed(HeapImpl& heap, const Object* o) {
  // An object allocated during concurrent marking gets its start bit (and its mark bit:
  // black) only when its TLAB flushes the run; until then it lies in the page's TLAB
  // run, at a cell start, with a header (written before any reference to it was
  // published). The flush sets the bits before it clears the run, so if the run is gone
  // the bit is visible now. The run's cells past the TLAB's cursor are not zeroed
  // (heap/allocator.cc) unless poison_freed_memory is on: a stale reference to one of
  // them may read an old header and pass, as one to a reused cell does.
  const PageInfo& page = heap.pages.page_of(o);
  const auto a = reinterpret_cast<uintptr_t>(o);
  if (page.in_tlab_run(a) && page.granule_of(o) % page.cell_granules == 0 && o->header_word() != 0) return Mark::kGrey;
  if (page.alloc_bits.test(page.granule_of(o))) return Mark::kGrey;
  return Mark::kBad;
}

namespace {
// What a bad reference points at, for the report.
std::string describe_target(HeapImpl& heap, const Object* o) {
  const auto a = reinterpret_cast<uintptr_t>(o);
  char buf[256];
  auto object_at = [&](const Object* start, const char* kind) {
    const std::string name = heap.model.class_name(start);
    std::snprintf(buf, sizeof buf, "an interior pointer, %zu bytes into the %s object at %p%s%s%s",
                  static_cast<size_t>(a - reinterpret_cast<uintptr_t>(start)), kind, static_cast<const void*>(start),
                  name.empty() ? "" : " (class ", name.c_str(), name.empty() ? "" : ")");
    return std::string(buf);
  };
  if (heap.pages.contains(a)) {
    if (!heap.pages.is_carved(a)) return "inside the heap's reservation but in no page yet: not an object";
    const PageInfo& page = heap.pages.page_of(a);
    if (page.cell_size == 0 || page.cell_granules == 0) return "in a free heap page: not an object (a stale reference?)";
    const size_t cell = (a - reinterpret_cast<uintptr_t>(page.start)) / page.cell_size;
    if (cell >= page.cell_count) return "in the unused tail of a heap page: not an object";
    const auto* start = reinterpret_cast<const Object*>(page.start + cell * page.cell_size);
    const bool allocated = page.alloc_bits.test(cell * page.cell_granules) ||
                           (page.in_tlab_run(reinterpret_cast<uintptr_t>(start)) && start->header_word() != 0);
    if (start != o) {
      if (allocated) return object_at(start, "small");
      std::snprintf(buf, sizeof buf, "an interior pointer, %zu bytes into the free %u-byte cell at %p",
                    static_cast<size_t>(a - reinterpret_cast<uintptr_t>(start)), page.cell_size,
                    static_cast<const void*>(start));
      return buf;
    }
    if (allocated) return "the start of an allocated object after all (a Shoal bug: please report it)";
    std::snprintf(buf, sizeof buf, "a free %u-byte cell: a freed object (a stale reference) or memory never allocated",
                  page.cell_size);
    return buf;
  }
  if (LargeObject* l = heap.large.find_containing_any(a)) return object_at(l->object(), "large");
  return "outside the heap: not in a heap page, not a large object (a stale, foreign or corrupt pointer)";
}
}  // namespace

void Marker::bad_reference(HeapImpl& heap, const Object* o, const Object* holder, const Slot* slot) {
  const std::string target = describe_target(heap, o);
  if (holder) {
    const std::string name = heap.model.class_name(holder);
    const auto offset = reinterpret_cast<uintptr_t>(slot) - reinterpret_cast<uintptr_t>(holder);
    std::fprintf(stderr,
                 "shoal: fatal: bad reference in object %p (class %s), slot at offset %zu: value %p is %s\n",
                 static_cast<const void*>(holder), name.empty() ? "?" : name.c_str(), static_cast<size_t>(offset),
                 static_cast<const void*>(o), target.c_str());
  } else if (!heap.collector.marking_concurrently()) {
    std::fprintf(stderr, "shoal: fatal: bad reference in a root slot (a persistent handle or global slot): value %p is %s\n",
                 static_cast<const void*>(o), target.c_str());
  } else {  // only the barriers mark without a holder while marking runs
    std::fprintf(stderr,
                 "shoal: fatal: bad reference shaded by a barrier (a value overwritten in a heap slot, read from a "
                 "weak slot or stored into a root): value %p is %s\n",
                 static_cast<const void*>(o), target.c_str());
  }
  std::fprintf(stderr,
               "shoal: a precise slot must hold null, a small integer or the start of an allocated object; "
               "the marker stops rather than write a mark through it (docs/errors.md, \"Fatal checks\")\n");
  std::abort();
}

bool Marker::is_marked(HeapImpl& heap, const Object* o) {
  if (heap.pages.contains(o)) {
    const PageInfo& page = heap.pages.page_of(o);
    return page.mark_bits.test(page.granule_of(o));
  }
  return LargeObject::of(o)->mark.load(std::memory_order_relaxed) != 0;
}

size_t Marker::cell_bytes(HeapImpl& heap, const Object* o) {
  if (heap.pages.contains(o)) return heap.pages.page_of(o).cell_size;
  return LargeObject::of(o)->object_bytes;
}

std::vector<Object*> Marker::split_off(size_t n) {
  n = std::min(n, stack_.size());
  std::vector<Object*> out(stack_.begin(), stack_.begin() + static_cast<std::ptrdiff_t>(n));
  stack_.erase(stack_.begin(), stack_.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

// The hot loop of marking. A bad reference's report context (holder, slot) is touched
// only on the cold path.
void Marker::mark_slots(const Slot* first, size_t count, const Object* holder) {
  HeapImpl& heap = *heap_;
  for (size_t i = 0; i < count; ++i) {
    const Value v = first[i].load();
    if (!v.is_object()) continue;
    const Mark r = mark_inline(heap, v.as_object());
    if (r == Mark::kAlreadyMarked) continue;
    if (r == Mark::kBad) [[unlikely]]
      bad_reference(heap, v.as_object(), holder, &first[i]);
    ++marked_;
    stack_.push_back(v.as_object());
  }
}

// Marks every reference in the visited slots (pushing newly grey objects); records weak
// slots without following them.
class MarkingVisitor final : public SlotVisitor {
 public:
  explicit MarkingVisitor(Marker& m) : m_(m) {}
  void set_holder(const Object* o) { holder_ = o; }
  void visit(const Slot* slots, size_t count) override { m_.mark_slots(slots, count, holder_); }
  void visit_weak(const Slot& slot) override { m_.weak_slots_.push_back(const_cast<Slot*>(&slot)); }
  void visit_ephemeron(const Slot& key, const Slot& value) override {
    const Value k = key.load();
    if (!k.is_object() || Marker::is_marked(*m_.heap_, k.as_object()))
      m_.mark_slot(value.load(), holder_, &value);  // the key is alive (or there is none): a plain edge
    else
      m_.ephemerons_.push_back({const_cast<Slot*>(&key), const_cast<Slot*>(&value), holder_});
  }

 private:
  Marker& m_;
  const Object* holder_ = nullptr;  // the object being traced
};

namespace {
// Passes on only the slots that lie in dirty cards of one card set of a large object:
// a slot range is cut at card boundaries (a memchr for the next dirty card, so clean
// stretches cost a byte each); an ephemeron counts if its key or its value slot is in a
// dirty card (the barrier dirties the card of the slot it wrote).
class DirtyCardVisitor final : public SlotVisitor {
 public:
  DirtyCardVisitor(SlotVisitor& inner, LargeObject& holder, unsigned set)
      : inner_(inner), holder_(holder), cards_(holder.cards(set)) {}
  size_t dirty_cards() const {
    return static_cast<size_t>(std::count(cards_, cards_ + holder_.card_count, uint8_t{1}));
  }
  void visit(const Slot* slots, size_t count) override {
    if (count == 0) return;
    const auto begin = reinterpret_cast<uintptr_t>(slots);
    const uintptr_t end = begin + count * sizeof(Slot);
    const uintptr_t base = holder_.begin();
    size_t card = holder_.card_of(begin);
    const size_t last = holder_.card_of(end - 1);
    while (card <= last) {
      const void* next = std::memchr(cards_ + card, 1, last + 1 - card);
      if (!next) return;
      card = static_cast<size_t>(static_cast<const uint8_t*>(next) - cards_);
      size_t run_end = card + 1;
      while (run_end <= last && cards_[run_end] != 0) ++run_end;
      const uintptr_t from = std::max(begin, base + (card << kCardShift));
      const uintptr_t to = std::min(end, base + (run_end << kCardShift));
      inner_.visit(reinterpret_cast<const Slot*>(from), (to - from) / sizeof(Slot));
      card = run_end;
    }
  }
  void visit_weak(const Slot& slot) override {
    if (dirty(&slot)) inner_.visit_weak(slot);
  }
  void visit_ephemeron(const Slot& key, const Slot& value) override {
    if (dirty(&key) || dirty(&value)) inner_.visit_ephemeron(key, value);
  }

 private:
  bool dirty(const Slot* s) const { return cards_[holder_.card_of(reinterpret_cast<uintptr_t>(s))] != 0; }
  SlotVisitor& inner_;
  LargeObject& holder_;
  const uint8_t* cards_;
};
}  // namespace

// Aging: remembers a holder whose slots reference objects that stay young (Marker::
// remember_if_holding_young). A small holder is remembered once, a large one by the
// card of every such slot.
class KeptYoungFinder final : public SlotVisitor {
 public:
  KeptYoungFinder(Marker& m, Object* holder, bool carded) : m_(m), holder_(holder), carded_(carded) {}
  void visit(const Slot* slots, size_t count) override {
    for (size_t i = 0; i < count && !done_; ++i) check(slots[i]);
  }
  void visit_weak(const Slot& slot) override { check(slot); }
  void visit_ephemeron(const Slot& key, const Slot& value) override {
    check(key);
    check(value);
  }

 private:
  void check(const Slot& slot) {
    if (done_ || !m_.stays_young(slot.load())) return;
    m_.remember_for_next_cycle(holder_, &slot);
    done_ = !carded_;
  }
  Marker& m_;
  Object* holder_;
  bool carded_;
  bool done_ = false;
};

size_t Marker::trace_dirty_cards(LargeObject& holder, unsigned set) {
  read_aging_bits();
  MarkingVisitor marking(*this);
  Object* o = holder.object();
  marking.set_holder(o);
  DirtyCardVisitor cards(marking, holder, set);
  heap_->model.trace(o, cards);
  if (aged_by_this_cycle_ != 0) {
    // Cards of this set are cleaned after this: a slot whose object stays young dirties
    // its card in the set the barrier records into.
    KeptYoungFinder finder(*this, o, true);
    DirtyCardVisitor dirty(finder, holder, set);
    heap_->model.trace(o, dirty);
    flush_remembered();
  }
  return cards.dirty_cards();
}

void Marker::read_aging_bits() {
  const Collector& c = heap_->collector;
  aged_by_this_cycle_ = c.aged_by_this_cycle();
  aged_to_promote_ = c.aged_to_promote();
  count_old_ = c.counting_old_survivors();
  aged_counted_ = c.aged_counted();
  marker_keeps_ = c.marker_keeps();
}

void Marker::keep_young(Object* o, uint64_t header_word, uint64_t clear_bits) {
  // Young stays set throughout (the barrier's value test and stays_young read it); the
  // rest of what the marker clears on a traced object goes.
  o->set_gc_bits(header::kYoung | aged_by_this_cycle_);
  const uint64_t drop = clear_bits & ~header::kYoung;
  if ((header_word & drop) != 0) o->clear_gc_bits(drop);
  PageInfo& page = heap_->pages.page_of(o);
  const size_t g = page.granule_of(o);
  if (&page != kept_young_page_ || (g >> 6) != kept_young_word_) {
    flush_kept_young();
    kept_young_page_ = &page;
    kept_young_word_ = g >> 6;
    if (!page.kept_young.load(std::memory_order_relaxed)) page.kept_young.store(true, std::memory_order_relaxed);
  }
  kept_young_bits_ |= uint64_t{1} << (g & 63);
}

void Marker::flush_kept_young() {
  if (kept_young_bits_ != 0) kept_young_page_->newborn_bits.or_word(kept_young_word_, kept_young_bits_);
  kept_young_bits_ = 0;
  kept_young_page_ = nullptr;
}

void Marker::remember_if_holding_young(Object* o, const SlotLayout* l) {
  const char* base = reinterpret_cast<const char*>(o);
  const bool small = heap_->pages.contains(o);
  if (small && l != nullptr && l->kind != SlotLayout::Kind::kTrace) {
    auto scan = [&](const Slot* first, size_t count) {
      for (size_t i = 0; i < count; ++i)
        if (stays_young(first[i].load())) {
          remember_for_next_cycle(o, &first[i]);
          return true;
        }
      return false;
    };
    if (l->kind == SlotLayout::Kind::kRuns) {
      for (size_t r = 0; r < l->run_count; ++r)
        if (scan(reinterpret_cast<const Slot*>(base + l->runs[r].offset), l->runs[r].count)) return;
    } else {
      const uint64_t n = *reinterpret_cast<const uint64_t*>(base + l->length_offset);
      scan(reinterpret_cast<const Slot*>(base + l->runs[0].offset), static_cast<size_t>(n));
    }
    return;
  }
  KeptYoungFinder finder(*this, o, !small);
  heap_->model.trace(o, finder);
}

void Marker::remember_for_next_cycle(Object* holder, const Slot* slot) {
  if (heap_->pages.contains(holder)) {
    // As the barrier's marking rule does (remember_while_marking_slow): the bit decides
    // who lists it, and the marker of this cycle never clears it.
    const uint64_t next = marker_keeps_ & header::kRememberedNextBits;
    SHOAL_DCHECK(next != 0);
    if ((holder->set_gc_bits(next) & next) == 0) remembered_.push_back(holder);
    return;
  }
  // A large holder (marked: old): by card, in the set the barrier records into now - the
  // set the next cycle consumes (remember_cards in barriers/write_barrier.cc).
  LargeObject* l = LargeObject::of(holder);
  const unsigned set = heap_->collector.card_record_set();
  std::atomic_ref<uint8_t> card(l->cards(set)[l->card_of(reinterpret_cast<uintptr_t>(slot))]);
  if (card.load(std::memory_order_relaxed) == 0) card.store(1, std::memory_order_relaxed);
  std::atomic<uint8_t>& listed = l->listed[set];
  if (listed.load(std::memory_order_relaxed) == 0 && listed.exchange(1, std::memory_order_relaxed) == 0)
    remembered_.push_back(holder);
}

void Marker::flush_remembered() {
  if (!remembered_.empty()) heap_->collector.add_marker_remembered(remembered_);
}

const SlotLayout& Marker::layout_of(const Object* o, uint64_t key) {
  CachedLayout& e = layouts_[(key * 0x9E3779B97F4A7C15ull) >> (64 - kLayoutCacheBits)];
  if (!e.filled || e.key != key) [[unlikely]] {
    e.layout = heap_->model.slot_layout(o);
    e.key = key;
    e.filled = true;
  }
  return e.layout;
}

// Objects popped from the stack wait in a small FIFO, prefetched, before they are
// traced (Boehm GC's prefetch-on-pop; Cher, Hosking and Vijaykumar, "Software
// prefetching for mark-sweep garbage collection", ASPLOS 2004): by the time an object
// reaches the head of the FIFO its cache line has arrived, so the marker overlaps
// kPrefetchDepth cache misses instead of stalling on each.
size_t Marker::drain_some(size_t max_objects, const std::function<void(Object*)>* after_each) {
  MarkingVisitor visitor(*this);
  const ObjectModel& model = heap_->model;
  read_aging_bits();
  const uint64_t clear_bits = header::kGenerationBits & ~marker_keeps_;
  const uint64_t newborn_now = marker_keeps_ & header::kNewbornBits;  // this cycle's
  Object* fifo[kPrefetchDepth];
  size_t head = 0, count = 0, traced = 0;
  while (traced < max_objects) {
    while (count < kPrefetchDepth && !stack_.empty()) {
      Object* o = stack_.back();
      stack_.pop_back();
      __builtin_prefetch(o);
      fifo[(head + count) % kPrefetchDepth] = o;
      ++count;
    }
    if (count == 0) break;
    Object* o = fifo[head];
    head = (head + 1) % kPrefetchDepth;
    --count;
    const size_t bytes = cell_bytes(*heap_, o);
    bytes_traced_ += bytes;
    // Traced: no longer young, and off the remembered set if it was on it (the
    // generational bits; the header line is being read for the trace anyway) - except
    // the marking cycle's newborn and remembered-next bits (gc/generations.cc) - unless
    // aging keeps it young (see the file comment).
    const uint64_t h = o->header_word();
    if ((h & aged_counted_) != 0) aged_promoted_bytes_ += bytes;  // (the last cycle's cohort, alive)
    if (count_old_ && (h & header::kYoungBits) == 0) old_traced_bytes_ += bytes;  // (young cycles: remembered holders)
    bool old_after = false;  // aging: old after this cycle, its slots to be checked
    if (aged_by_this_cycle_ != 0 && (h & newborn_now) == 0) {
      if ((h & header::kYoungBits) != 0 && (h & aged_to_promote_) == 0 && heap_->pages.contains(o)) {
        keep_young(o, h, clear_bits);
        kept_young_bytes_ += bytes;
      } else {
        if ((h & clear_bits) != 0) o->clear_gc_bits(clear_bits);
        old_after = true;
      }
    } else {
      if ((h & clear_bits) != 0) o->clear_gc_bits(clear_bits);
    }
    // The layout cache (marker.h): the same slots trace() would visit. (None: trace().)
    const SlotLayout* l = layout_mask_ != 0 ? &layout_of(o, h & layout_mask_) : nullptr;
    const char* base = reinterpret_cast<const char*>(o);
    if (l != nullptr && l->kind == SlotLayout::Kind::kRuns) {
      for (size_t r = 0; r < l->run_count; ++r)
        mark_slots(reinterpret_cast<const Slot*>(base + l->runs[r].offset), l->runs[r].count, o);
    } else if (l != nullptr && l->kind == SlotLayout::Kind::kArray) {
      const uint64_t n = *reinterpret_cast<const uint64_t*>(base + l->length_offset);
      mark_slots(reinterpret_cast<const Slot*>(base + l->runs[0].offset), static_cast<size_t>(n), o);
    } else {
      visitor.set_holder(o);
      model.trace(o, visitor);
    }
    // (Not an unmarked object - a young holder from the remembered set that nothing
    // else reached so far: the sweep frees it unless it is marked and traced again.)
    if (old_after && is_marked(*heap_, o)) remember_if_holding_young(o, l);
    ++traced;
    if (after_each && *after_each) (*after_each)(o);
  }
  // Objects still waiting go back on the stack (still grey).
  for (; count > 0; --count, head = (head + 1) % kPrefetchDepth) stack_.push_back(fifo[head]);
  flush_kept_young();
  flush_remembered();
  if ((kept_young_bytes_ | aged_promoted_bytes_ | old_traced_bytes_) != 0) {
    heap_->collector.note_aging(kept_young_bytes_, aged_promoted_bytes_, old_traced_bytes_);
    kept_young_bytes_ = aged_promoted_bytes_ = old_traced_bytes_ = 0;
  }
  return traced;
}

}  // namespace shoal::internal
