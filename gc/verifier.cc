// The heap verifier. See verifier.h for what it checks.
#include "gc/verifier.h"

#include <cstdio>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "gc/marker.h"
#include "gc/stack_scanner.h"
#include "heap/heap_impl.h"

namespace shoal::internal {

namespace {

class Verifier {
 public:
  explicit Verifier(HeapImpl& heap) : heap_(heap), sticky_(heap.collector.generational()) {}

  VerifyReport run() {
    check_pages();
    check_lists();
    check_large_objects();
    check_remembered();
    check_reachable();
    report_.ok = report_.errors.empty() && failures_ == 0;
    return report_;
  }

 private:
  template <class... Args>
  void fail(const char* fmt, Args... args) {
    ++failures_;
    if (report_.errors.size() >= 32) return;
    char buf[256];
    std::snprintf(buf, sizeof buf, fmt, args...);
    report_.errors.emplace_back(buf);
  }

  void check_pages() {
    PageSpace& pages = heap_.pages;
    const bool poison = heap_.options.poison_freed_memory;
    for (size_t i = 0; i < pages.carved_pages(); ++i) {
      PageInfo& p = pages.page_at(i);
      ++report_.pages_checked;
      if (!sticky_) {
        if (p.mark_bits.count() != 0) fail("page %zu: mark bits set outside a cycle", i);
      } else {
        // Sticky marks (generations): marked cells are old objects, so allocated.
        for (size_t g = p.mark_bits.find_next(0); g < kGranulesPerPage; g = p.mark_bits.find_next(g + 1))
          if (!p.alloc_bits.test(g)) {
            fail("page %zu: mark bit %zu on a cell that holds no object (a freed object still old)", i, g);
            break;
          }
      }
      // The sweep turns a cycle's newborns (and those it kept young) young
      // (gc/generations.cc): none is left after it.
      if (p.has_newborn_bits() || !p.newborn_bits.empty())
        fail("page %zu: newborn cells left after the sweep (%zu counted)", i, p.newborn_cells);
      if (p.state == PageState::kFree) {
        if (p.alloc_bits.count() != 0) fail("page %zu: free page has allocated cells", i);
        if (poison && p.dirty) check_poison(i, p.start + sizeof(FreeRun), p.start + kPageSize);
        continue;
      }
      if (p.state == PageState::kOwned) fail("page %zu: still owned by a TLAB in a pause", i);
      if (p.cell_size == 0 || p.cell_size % kGranule != 0) {
        fail("page %zu: bad cell size %u", i, p.cell_size);
        continue;
      }
      for (size_t g = p.alloc_bits.find_next(0); g < kGranulesPerPage; g = p.alloc_bits.find_next(g + 1))
        if (g % p.cell_granules != 0 || g / p.cell_granules >= p.cell_count)
          fail("page %zu: object-start bit %zu is not a cell start", i, g);
      char* last_end = p.start;
      for (FreeRun* r = p.runs; r; r = r->next) {
        char* from = reinterpret_cast<char*>(r);
        if (from < last_end || r->end > p.cells_end() || r->end <= from ||
            static_cast<size_t>(from - p.start) % p.cell_size != 0 ||
            static_cast<size_t>(r->end - p.start) % p.cell_size != 0) {
          fail("page %zu: malformed free run [%p, %p)", i, static_cast<void*>(from), static_cast<void*>(r->end));
          break;
        }
        for (char* c = from; c < r->end; c += p.cell_size)
          if (p.alloc_bits.test(p.granule_of(c))) fail("page %zu: free run overlaps allocated cell %p", i, static_cast<void*>(c));
        if (poison && p.dirty) check_poison(i, from + sizeof(FreeRun), r->end);
        last_end = r->end;
      }
    }
  }

  void check_poison(size_t page, const char* from, const char* to) {
    for (const char* b = from; b < to; ++b)
      if (static_cast<uint8_t>(*b) != kPoisonByte) {
        fail("page %zu: freed memory at %p was written after it was freed", page, static_cast<const void*>(b));
        return;
      }
  }

  void check_lists() {
    std::vector<uint8_t> seen(heap_.pages.carved_pages(), 0);
    heap_.pages.for_each_listed([&](PageInfo& p, bool in_pool) {
      if (seen[p.index]++) fail("page %u is on a free list twice (freed twice)", p.index);
      if (in_pool && p.state != PageState::kFree) fail("page %u is in the free pool but not free", p.index);
      if (!in_pool && p.state != PageState::kAvailable) fail("page %u is on a class list but not available", p.index);
    });
    size_t committed_free = 0;
    for (size_t i = 0; i < seen.size(); ++i) {
      const PageInfo& p = heap_.pages.page_at(i);
      const PageState s = p.state;
      if ((s == PageState::kFree || s == PageState::kAvailable) && !seen[i])
        fail("page %zu is free/available but on no list (leaked)", i);
      // Only a free page may be decommitted (heap/scavenger.cc): memory the heap
      // allocates in is counted in the footprint.
      if (s != PageState::kFree && !p.committed) fail("page %zu is in use but decommitted", i);
      if (s == PageState::kFree && p.committed) ++committed_free;
      if (!p.committed && p.dirty) fail("page %zu is decommitted but marked dirty", i);
    }
    if (committed_free != heap_.pages.committed_free_pages())
      fail("%zu committed free pages, but the pool counts %zu", committed_free, heap_.pages.committed_free_pages());
  }

  void check_large_objects() {
    std::unordered_set<LargeObject*> seen;
    heap_.large.for_each([&](LargeObject& l) {
      if (!seen.insert(&l).second) fail("large object %p registered twice", static_cast<void*>(l.object()));
      if (l.magic != LargeObject::kMagic) fail("large object %p has a bad record", static_cast<void*>(l.object()));
      if (!sticky_ && l.mark.load(std::memory_order_relaxed))
        fail("large object %p marked outside a cycle", static_cast<void*>(l.object()));
      check_cards(l);
    });
  }

  // Cards (gc/generations.cc, "Cards"): a set with a dirty card is listed; outside
  // generations no card is ever dirty; and the set nobody consumes next is clean (the
  // cycle that consumed it cleaned it, and the barrier records into it only from the
  // next initial pause on).
  void check_cards(LargeObject& l) {
    const unsigned pending = heap_.collector.card_pending_set();
    for (unsigned set = 0; set < kCardSets; ++set) {
      const bool dirty = l.any_dirty(set);
      const bool listed = l.listed[set].load(std::memory_order_relaxed) != 0;
      if (dirty && (!sticky_ || set != pending))
        fail("large object %p has dirty cards in card set %u, which no cycle will consume", static_cast<void*>(l.object()), set);
      else if (dirty && !listed)
        fail("large object %p has dirty cards in card set %u but is not on the remembered set", static_cast<void*>(l.object()), set);
    }
  }

  void visit_root_word(uintptr_t w) {
    if (Object* o = heap_.object_containing(w)) push(o);
  }
  void visit_root_value(Value v, const char* what) {
    if (!v.is_object()) return;
    if (!heap_.is_allocated_object_start(v.as_object())) {
      fail("%s root points at %p, which is not an allocated object", what, static_cast<void*>(v.as_object()));
      return;
    }
    push(v.as_object());
  }
  void push(Object* o) {
    if (visited_.insert(o).second) work_.push_back(o);
  }

  // The next young cycle traces every remembered holder: each must be an allocated
  // object (an entry left on a holder that was freed would have it trace freed memory).
  void check_remembered() {
    heap_.collector.for_each_remembered_in_pause([&](Object* o) {
      const bool allocated = heap_.pages.contains(o) ? heap_.is_allocated_object_start(o) : heap_.large.is_object_start(o);
      if (!allocated)
        fail("remembered-set entry %p is not an allocated object (a freed holder)", static_cast<void*>(o));
    });
  }

  void check_reachable() {
    auto scan_stack = [&](uintptr_t sp, uintptr_t base, std::span<const uintptr_t> registers) {
      scan_words(sp, base, [](void* v, uintptr_t w) { static_cast<Verifier*>(v)->visit_root_word(w); }, this);
      for (uintptr_t r : registers) visit_root_word(r);
    };
    for (MutatorThread* t : heap_.threads.threads_in_pause())
      scan_stack(t->context.sp, t->stack_base, t->context.registers);
    heap_.roots.for_each_suspended_range(scan_stack);
    heap_.roots.for_each_root([&](Value v) { visit_root_value(v, "persistent/global"); });
    heap_.roots.for_each_weak([&](Slot& s) {
      const Value v = s.load();
      if (v.is_object() && !heap_.is_allocated_object_start(v.as_object()))
        fail("weak handle points at %p, which is not an allocated object (not cleared)", static_cast<void*>(v.as_object()));
    });

    struct SlotCheck final : SlotVisitor {
      Verifier* v;
      Object* holder;
      void visit(const Slot* slots, size_t n) override {
        for (size_t i = 0; i < n; ++i) {
          const Value val = slots[i].load();
          if (!val.is_object()) continue;
          if (!v->heap_.is_allocated_object_start(val.as_object())) {
            v->fail("object %p slot %zu points at %p, which is not an allocated object (freed or garbage)",
                    static_cast<void*>(holder), i, static_cast<void*>(val.as_object()));
            continue;
          }
          v->check_generation(holder, &slots[i], val, "strong");
          v->push(val.as_object());
        }
      }
      // A weak slot is not followed, but it must never point at freed memory: the
      // collector clears it in the pause that finds its target dead.
      void visit_weak(const Slot& slot) override {
        const Value val = slot.load();
        if (val.is_object() && !v->heap_.is_allocated_object_start(val.as_object())) {
          v->fail("object %p has a weak slot pointing at %p, which is not an allocated object (not cleared when "
                  "its target died)",
                  static_cast<void*>(holder), static_cast<void*>(val.as_object()));
          return;
        }
        v->check_generation(holder, &slot, val, "weak");
      }
      // (Ephemerons: SlotVisitor's default reports the key as weak and the value as
      // strong, which is what the checks above need.)
    } slot_check;
    slot_check.v = this;

    const ObjectModel& model = heap_.model;
    while (!work_.empty()) {
      Object* o = work_.back();
      work_.pop_back();
      ++report_.objects_checked;
      std::string why;
      if (!model.is_well_formed(o, &why)) {
        fail("object %p is malformed: %s", static_cast<void*>(o), why.c_str());
        continue;
      }
      const size_t size = model.size_of(o);
      if (heap_.pages.contains(o)) {
        const PageInfo& p = heap_.pages.page_of(o);
        if (size > p.cell_size) fail("object %p (%zu bytes) overflows its %u-byte cell", static_cast<void*>(o), size, p.cell_size);
      } else if (size > LargeObject::of(o)->object_bytes) {
        fail("large object %p (%zu bytes) overflows its allocation", static_cast<void*>(o), size);
      }
      slot_check.holder = o;
      check_generation_bits(o);
      model.trace(o, slot_check);
    }
  }

  // The generational invariant (gc/generations.cc), checked on every reachable object
  // while marks are sticky: a marked (old) object is not young, an unmarked one is; an
  // old object with a reference to an unmarked (young) object is remembered.
  // A large holder is remembered by card: the slot's card must be dirty in the card
  // set the next young cycle consumes, and the holder listed for that set.
  void check_generation(Object* holder, const Slot* slot, Value target, const char* kind) {
    if (!holder_old_ || holder_remembered_ || !target.is_object()) return;
    if (Marker::is_marked(heap_, target.as_object())) return;
    if (heap_.pages.contains(holder)) {
      fail("old object %p has a %s reference to young object %p but is not on the remembered set",
           static_cast<void*>(holder), kind, static_cast<void*>(target.as_object()));
      return;
    }
    LargeObject* l = LargeObject::of(holder);
    const unsigned set = heap_.collector.card_pending_set();
    const size_t card = l->card_of(reinterpret_cast<uintptr_t>(slot));
    if (l->cards(set)[card] == 0 || l->listed[set].load(std::memory_order_relaxed) == 0)
      fail("old large object %p has a %s reference to young object %p in card %zu, which is not %s",
           static_cast<void*>(holder), kind, static_cast<void*>(target.as_object()), card,
           l->cards(set)[card] == 0 ? "dirty" : "on the remembered set");
  }
  void check_generation_bits(Object* o) {
    holder_old_ = sticky_ && Marker::is_marked(heap_, o);
    const uint64_t h = o->header_word();
    holder_remembered_ = (h & header::kRememberedBits) != 0;
    if (!sticky_) return;
    if (holder_old_ && (h & header::kYoungBits) != 0)
      fail("object %p is marked (old) but still has a young or newborn bit", static_cast<void*>(o));
    if (!holder_old_ && (h & header::kYoungBits) == 0)
      fail("object %p is unmarked (young) but has no young bit: a barrier would miss it", static_cast<void*>(o));
    // Aging: only a young object kept young by one young cycle has an aged bit, of that
    // cycle's parity.
    if ((h & header::kAgedBits) != 0 && ((h & header::kYoung) == 0 || (h & header::kAgedBits) == header::kAgedBits))
      fail("object %p has %s", static_cast<void*>(o),
           (h & header::kYoung) == 0 ? "an aged bit but no young bit" : "both aged bits");
    // Large objects are remembered by card, and only they (gc/generations.cc, "Cards").
    const bool large = !heap_.pages.contains(o);
    if (large != ((h & header::kCarded) != 0))
      fail("%s object %p %s the carded bit", large ? "large" : "small", static_cast<void*>(o), large ? "lacks" : "has");
    if (large && holder_remembered_)
      fail("large object %p has a remembered bit: it must be remembered by card", static_cast<void*>(o));
  }

  HeapImpl& heap_;
  const bool sticky_;
  bool holder_old_ = false, holder_remembered_ = false;
  VerifyReport report_;
  size_t failures_ = 0;
  std::unordered_set<Object*> visited_;
  std::vector<Object*> work_;
};

}  // namespace

VerifyReport verify_heap_in_pause(HeapImpl& heap) { return Verifier(heap).run(); }

}  // namespace shoal::internal
