// Marking: the transitive closure from the roots, over side mark bitmaps.
//
// Tri-colour view: white = mark bit clear; grey = mark bit set and on some mark stack
// (a marker's local stack, a work chunk of the parallel marker, the collector's grey
// list or a mutator's SATB buffer); black = mark bit set, popped and traced. Marking an
// object sets its bit with an atomic test-and-set (heap/page.h), so any number of
// markers share the bitmaps and exactly one of them pushes each object; the object
// header is never written. Each mark stack is an explicit vector, so deep structures
// (long lists) cannot overflow the C stack.
//
// A Marker is one marking worker's state: its local stack and its counters. The
// parallel marker (gc/parallel_marker.h) runs one per worker thread and moves chunks of
// grey objects between them.
//
// Invariant when every marker's stack and every work list is empty: every object
// reachable from a marked object is marked (no black object points at a white one).
// Conservative words are first resolved to the allocated object containing them
// (interior pointers count); precise slots must hold null, a small integer, or the start
// of an allocated object.
//
// Bad references are diagnosed, not written through (release builds too). A precise
// slot or root holding anything else - an address outside the heap, an interior or
// misaligned pointer, a freed cell, a freed large object - would otherwise have the
// marker set a mark bit off a cell start (which the sweep turns into a phantom object)
// or write a mark word before arbitrary memory. try_mark checks every reference before
// it writes anything and stops the process (stderr, abort: a pause cannot unwind) with
// a report naming the slot's holder (address and class), the slot's offset and the bad
// value. The check rides on the marker's own work, so its cost is one rotate and one
// bit test: the page test compares with the end of the carved pages rather than of the
// reservation, the alignment folded into the same compare (PageSpace::
// in_carved_pages_aligned); a white-to-grey transition then tests the object-start bit
// beside the mark bit it just set - an object already marked was checked when it was
// marked. A large object costs a search of the large-object registry
// (heap/large_object_space.h). An object allocated during concurrent marking has no
// start bit until its TLAB flushes the run; the slow path (check_unflushed) accepts it
// by the page's TLAB run instead. Not checked: weak slots and ephemeron keys (never
// marked through), a stale reference to a cell reused for a new object, and (unless
// poison_freed_memory is on) one to a cell of a TLAB run not allocated yet, which may
// still hold its old header (heap/allocator.cc).
//
// Tracing an object: where the object model offers slot layouts
// (ObjectModel::slot_layout - Shoal's own model does, for every class but kCustom), a
// marker keeps each layout it has asked for in a small cache keyed by the header's
// layout-key bits and reads the slots of objects with that key itself; otherwise, and
// for kTrace layouts, it calls ObjectModel::trace with a visitor. Either way the same
// slots are marked; the cache saves two virtual calls and the class lookup per object.
//
// Aging (gc/generations.cc, "Aging"): in a young cycle with aging, a young object
// traced for the first time is kept young (its header gets the cycle's aged bit, its
// page's newborn bitmap a bit that tells the sweep to clear its mark), and one with the
// last cycle's aged bit is made old. Every object that will be old after the cycle and
// that the marker traces - a remembered holder, or one made old - is then checked for
// slots (strong, weak or ephemeron) referencing young objects the cycle will not make
// old, and remembered for the next cycle if it has any: with this cycle's
// remembered-next bit, or, a large one, by the card of each such slot in the set the
// barrier records into. That keeps the generational invariant for the edges that
// existed before the cycle; the barrier's marking rule covers the stores made while it
// marks.
//
// Weak slots (SlotVisitor::visit_weak) are not followed: the marker records their
// addresses, and the collector clears those whose target is still white when marking
// has terminated (gc/collector.cc, process_weak_in_pause). An ephemeron's value is
// marked when its key already is; otherwise the pair is recorded and the collector
// iterates to a fixpoint after the drain (resolve_ephemerons).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "shoal/object.h"
#include "shoal/object_model.h"
#include "shoal/value.h"

namespace shoal::internal {

class HeapImpl;
struct LargeObject;
struct PageInfo;

class Marker {
 public:
  explicit Marker(HeapImpl& heap);

  void mark_conservative(uintptr_t word);
  // The same for a batch of words (a stack): filters the words that can point into the
  // heap and prefetches each candidate's page record and bitmap word
  // before resolving it, so the cache misses overlap instead of adding up. `words` is
  // used as scratch space.
  // Also while other threads allocate (a stack scanned outside a pause): pages are
  // resolved with PageInfo::object_containing, which allows it, large objects with the
  // index built in the last pause (those allocated since, while marking, are black).
  void mark_conservative_batch(std::vector<uintptr_t>& words);
  // A root's value (a persistent handle or a global slot): a bad reference is reported
  // as a root slot.
  void mark_value(Value v) {
    if (v.is_object()) mark_object(v.as_object(), nullptr, nullptr);
  }
  // The value of `slot`, a precise slot of `holder` (the object being traced).
  void mark_slot(Value v, const Object* holder, const Slot* slot) {
    if (v.is_object()) mark_object(v.as_object(), holder, slot);
  }
  // `holder` and `slot` only name the reference's origin in a bad-reference report.
  void mark_object(Object* o, const Object* holder = nullptr, const Slot* slot = nullptr) {
    if (try_mark(*heap_, o, holder, slot)) {
      ++marked_;
      stack_.push_back(o);
    }
  }
  // Sets o's mark bit; true if this call turned it from white to grey. Thread-safe.
  // o must be the start of an allocated object: anything else stops the process with a
  // report (see above) that names `holder` and `slot` if given - else the reference is
  // reported as coming from a root, or from a barrier when marking runs concurrently.
  static bool try_mark(HeapImpl& heap, Object* o, const Object* holder = nullptr, const Slot* slot = nullptr) {
    const Mark m = mark(heap, o);
    if (m == Mark::kBad) [[unlikely]]
      bad_reference(heap, o, holder, slot);
    return m == Mark::kGrey;
  }
  static bool is_marked(HeapImpl& heap, const Object* o);
  // The size of o's cell (small objects) or of the large object: what marking it keeps.
  static size_t cell_bytes(HeapImpl& heap, const Object* o);
  void push_grey(Object* o) { stack_.push_back(o); }
  // Makes `objects` grey on this marker's stack (moved, not copied, onto an empty one).
  void adopt_grey(std::vector<Object*>&& objects) {
    if (stack_.empty()) stack_.swap(objects);
    else stack_.insert(stack_.end(), objects.begin(), objects.end());
  }
  std::vector<Object*> take_grey() { return std::move(stack_); }
  bool has_grey() const { return !stack_.empty(); }
  size_t grey_count() const { return stack_.size(); }
  // Moves the `n` oldest grey objects (the bottom of the stack: roots of untraced
  // subgraphs, the work most worth giving away) into a new vector.
  std::vector<Object*> split_off(size_t n);
  // Traces grey objects until none is left; after_each (if set) runs after every object
  // with that object (a test hook for interleaving mutations with concurrent marking).
  void drain(const std::function<void(Object*)>* after_each = nullptr) { drain_some(SIZE_MAX, after_each); }
  // A young cycle's remembered large object (gc/generations.cc, "Cards"): marks what the
  // slots in its dirty cards of card set `set` reference, as tracing it would for those
  // slots (weak slots recorded, ephemerons resolved or recorded), and leaves the rest
  // alone. The holder is black already (old). Returns the dirty cards.
  size_t trace_dirty_cards(LargeObject& holder, unsigned set);
  // Traces at most max_objects grey objects; returns how many it traced.
  size_t drain_some(size_t max_objects, const std::function<void(Object*)>* after_each = nullptr);
  size_t objects_marked() const { return marked_; }
  static constexpr size_t kPrefetchDepth = 8;
  size_t bytes_traced() const { return bytes_traced_; }
  // Weak slots of the objects traced so far (their holders are black).
  std::vector<Slot*>& weak_slots() { return weak_slots_; }
  // Ephemerons traced while their key was still white: (key slot, value slot). Their
  // values are marked once the key is (Collector::resolve_ephemerons).
  struct EphemeronSlots {
    Slot* key;
    Slot* value;
    const Object* holder;  // for bad-reference reports
  };
  std::vector<EphemeronSlots>& ephemerons() { return ephemerons_; }

 private:
  friend class MarkingVisitor;
  // try_mark without the report: the hot part, which carries no report context (the
  // caller has it), so the marking loop pays for the check and nothing else.
  enum class Mark : uint8_t { kAlreadyMarked, kGrey, kBad };
  static Mark mark(HeapImpl& heap, Object* o);
  // The same, inlined into the marking loops (defined and used in marker.cc only).
  [[gnu::always_inline]] static inline Mark mark_inline(HeapImpl& heap, Object* o);
  // A large object, or kBad.
  [[gnu::noinline]] static Mark mark_outside_pages(HeapImpl& heap, Object* o);
  // A white o in a page has no object-start bit or is misaligned: fine only for an
  // object a TLAB has not flushed yet, during concurrent marking (kGrey), else kBad.
  [[gnu::cold]] static Mark check_unflushed(HeapImpl& heap, const Object* o);
  // The bad-reference report: prints what is wrong with o to stderr and aborts.
  [[noreturn, gnu::cold]] static void bad_reference(HeapImpl& heap, const Object* o, const Object* holder,
                                                    const Slot* slot);
  // The layout cache (see the file comment): direct-mapped by layout key, filled on a
  // miss; in place (a marker made for one assist allocates nothing), unused when the
  // model's layout_key_mask is 0.
  struct CachedLayout {
    uint64_t key = 0;
    bool filled = false;
    SlotLayout layout;
  };
  static constexpr size_t kLayoutCacheBits = 4;
  const SlotLayout& layout_of(const Object* o, uint64_t key);
  // Marks what `count` slots from `first` reference, pushing newly grey objects.
  void mark_slots(const Slot* first, size_t count, const Object* holder);
  // Aging (see the file comment). The bits of the cycle under way (0 when it does not
  // age), read from the collector when a drain starts.
  void read_aging_bits();
  // The traced object o, young, is kept young: this cycle's aged bit, the page's record.
  void keep_young(Object* o, uint64_t header_word, uint64_t clear_bits);
  // Whether v references an object this cycle will not make old (a young one without
  // the last cycle's aged bit; conservatively, also a young one the cycle has not
  // reached yet and may never mark).
  bool stays_young(Value v) const {
    if (!v.is_object()) return false;
    const uint64_t h = v.as_object()->header_word();
    return (h & header::kYoungBits) != 0 && (h & aged_to_promote_) == 0;
  }
  // o, old after this cycle, is remembered for the next one if a slot of it references
  // an object that stays young; `l` is o's layout, if the marker had one.
  void remember_if_holding_young(Object* o, const SlotLayout* l);
  // Remembers `holder` for the next cycle because `slot` references a young object.
  void remember_for_next_cycle(Object* holder, const Slot* slot);
  void flush_remembered();
  // keep_young's bits for a page's newborn bitmap, gathered a word at a time (objects
  // traced one after another mostly share a word: one atomic OR per word, not per
  // object) and written when the word changes and before a drain returns.
  void flush_kept_young();
  friend class KeptYoungFinder;
  HeapImpl* heap_;
  uint64_t layout_mask_ = 0;
  std::array<CachedLayout, size_t{1} << kLayoutCacheBits> layouts_{};
  std::vector<Object*> stack_;
  std::vector<Slot*> weak_slots_;
  std::vector<EphemeronSlots> ephemerons_;
  size_t marked_ = 0;
  size_t bytes_traced_ = 0;
  uint64_t aged_by_this_cycle_ = 0;  // (aging: see read_aging_bits)
  uint64_t aged_to_promote_ = 0;
  uint64_t marker_keeps_ = 0;
  std::vector<Object*> remembered_;  // holders remembered for the next cycle, until flushed
  PageInfo* kept_young_page_ = nullptr;  // (flush_kept_young)
  size_t kept_young_word_ = 0;
  uint64_t kept_young_bits_ = 0;
  // Adaptive aging's samples (Collector::note_aging): cell bytes kept young, and of young
  // objects with the last cycle's aged bit made old, until a drain returns.
  size_t kept_young_bytes_ = 0;
  size_t aged_promoted_bytes_ = 0;
  // In a generational full cycle: cell bytes of old objects traced (the old generation's
  // survivors), until a drain returns.
  bool count_old_ = false;
  size_t old_traced_bytes_ = 0;
  uint64_t aged_counted_ = 0;  // the last cycle's aged bit, if it kept objects young
};

}  // namespace shoal::internal
