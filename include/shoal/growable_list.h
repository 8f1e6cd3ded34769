// GrowableList: a list of Values that grows and shrinks (Dart's List, Java's ArrayList),
// heap-safe under any race.
//
//   shoal::Ref<shoal::GrowableList> l = shoal::GrowableList::create();
//   l->add(Value::from_int(1));
//   shoal::Value v = l->get(0);
//   for (shoal::Value e : *l) { ... }
//
// Two threads may race on one list without a lock - a program bug, never memory
// corruption. Whatever the interleaving, a read returns a value that was stored at that
// position at some point, or throws RangeError (the index is outside the length the read
// saw) or ConcurrentModificationError; it never returns a hole (a null standing in for
// an element), never reads outside the storage and never sees a reference to freed
// memory. Racing writers (add against add, add against remove_last, ...) may lose each
// other's updates, as in any unsynchronised program; the list stays usable. The argument,
// operation by operation, is in objects/growable_list.cc.
//
// Iteration (range-for, or an Iterator) throws ConcurrentModificationError when the list
// is structurally modified (add, insert, remove, clear) after the iteration started.
// A frozen list refuses every mutation with InvalidMutabilityError; another isolate's
// list refuses them with IncorrectDereferenceError (the mutation checks of
// shoal::write, on the list object).
//
// The hot operations (get, set, add, remove_last) are inline: a few loads, one store
// check and the barrier flag test, no read-modify-write instruction. Growth, errors and
// the race fallbacks are out of line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "shoal/builtins.h"
#include "shoal/internal/race_points.h"
#include "shoal/managed.h"

namespace shoal {

namespace internal {
// The "no element here" marker of a removed position in a list's storage (value.h: not
// an object, not null, not an integer; skipped by every heap walker).
inline constexpr uint64_t kHoleBits = 2;
inline constexpr Value kHole = Value::from_raw(kHoleBits);
}  // namespace internal

class GrowableList {
 public:
  // An empty list whose storage holds `capacity` elements before it first grows.
  static Ref<GrowableList> create(size_t capacity = 0);
  static ClassId class_id();

  size_t length() const { return length_.load(std::memory_order_acquire); }
  bool empty() const { return length() == 0; }
  // Elements the current storage holds before the next growth.
  size_t capacity() const { return storage()->length(); }

  // The element at `index` (RangeError when index >= length).
  Value get(size_t index) const;
  Value operator[](size_t index) const { return get(index); }
  // Replaces the element at `index` (RangeError when index >= length).
  void set(size_t index, Value value);
  // Appends.
  void add(Value value);
  // Appends every element of `values` / of `other` (which may be this list: its
  // elements at the call are appended once).
  void add_all(std::span<const Value> values);
  void add_all(std::initializer_list<Value> values) { add_all(std::span<const Value>(values.begin(), values.size())); }
  void add_all(const GrowableList& other);
  // Inserts at `index` (0 <= index <= length), moving later elements up by one.
  void insert(size_t index, Value value);
  // Removes and returns the last element (RangeError when empty).
  Value remove_last();
  // Removes and returns the element at `index`, moving later elements down by one.
  Value remove_at(size_t index);
  // Removes every element (and drops the storage).
  void clear();

  class Iterator {
   public:
    Value operator*() const { return list_->iterator_get(index_, mod_count_); }
    Iterator& operator++() {
      ++index_;
      return *this;
    }
    // The end test: true while index < length; at the end, throws
    // ConcurrentModificationError when the list changed since begin().
    bool operator!=(const Iterator&) const;

   private:
    friend class GrowableList;
    Iterator(const GrowableList* list, uint64_t mod_count) : list_(list), mod_count_(mod_count) {}
    const GrowableList* list_;  // an interior pointer on the stack: a root like a Ref
    uint64_t mod_count_;
    size_t index_ = 0;
  };
  Iterator begin() const { return Iterator(this, mod_count_.load(std::memory_order_acquire)); }
  Iterator end() const { return Iterator(this, 0); }

 private:
  RefArray* storage() const { return static_cast<RefArray*>(storage_.load().as_object()->payload()); }
  Object* self() { return Object::from_payload(this); }
  void bump_mod_count() { mod_count_.store(mod_count_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  Value iterator_get(size_t index, uint64_t mod_count) const;
  [[gnu::cold]] Value get_slow(size_t index) const;
  [[gnu::cold]] void add_slow(Value value);
  [[gnu::cold]] Value remove_last_slow();
  // The removal itself, once element `v` was read from `slot` = position len - 1 of `s`.
  Value take_last(RefArray* s, Slot& slot, uint64_t len, Value v);
  // Makes the storage hold at least `needed` elements (allocates: a safepoint). Returns
  // the storage to use, whose length the caller re-reads.
  RefArray* grow(size_t needed);
  // Fills a storage that is no longer the list's with holes (objects/growable_list.cc).
  static void retire(RefArray* old, size_t count);

  Slot storage_;                       // a RefArray; its length is the capacity
  std::atomic<uint64_t> length_{0};
  std::atomic<uint64_t> mod_count_{0};
};

// --- inline fast paths (objects/growable_list.cc explains the orderings) ---

inline Value GrowableList::get(size_t index) const {
  // Length first (acquire), storage second: a storage published by growth is visible
  // to anyone who sees the length that growth raised.
  if (index < length_.load(std::memory_order_acquire)) [[likely]] {
    internal::race_point(internal::RacePoint::kListGetAfterBoundsCheck);
    const RefArray* s = storage();
    if (index < s->length()) [[likely]] {
      const Value v = s->slots()[index].load();
      if (v.raw() != internal::kHoleBits) [[likely]] return v;
    }
  }
  return get_slow(index);
}

inline void GrowableList::set(size_t index, Value value) {
  internal::check_store(self(), "GrowableList::set");
  if (index < length_.load(std::memory_order_acquire)) [[likely]] {
    internal::race_point(internal::RacePoint::kListSetAfterBoundsCheck);
    RefArray* s = storage();
    if (index < s->length()) [[likely]] {
      internal::write_unchecked(Object::from_payload(s), s->slots()[index], value);
      return;
    }
  }
  (void)get_slow(index);  // throws RangeError (or ConcurrentModificationError)
  set(index, value);      // the length grew back under a racing writer: try again
}

inline void GrowableList::add(Value value) {
  internal::check_store(self(), "GrowableList::add");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  RefArray* s = storage();
  if (len < s->length()) [[likely]] {
    internal::write_unchecked(Object::from_payload(s), s->slots()[len], value);
    internal::race_point(internal::RacePoint::kListAddBeforeLength);
    length_.store(len + 1, std::memory_order_release);
    bump_mod_count();
    return;
  }
  add_slow(value);
}

inline Value GrowableList::remove_last() {
  internal::check_store(self(), "GrowableList::remove_last");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  RefArray* s = storage();
  if (len != 0 && len <= s->length()) [[likely]] {
    internal::race_point(internal::RacePoint::kListRemoveAfterStorageLoad);
    Slot& slot = s->slots()[len - 1];
    const Value v = slot.load();
    if (v.raw() != internal::kHoleBits) [[likely]] return take_last(s, slot, len, v);
  }
  return remove_last_slow();
}

inline Value GrowableList::take_last(RefArray* s, Slot& slot, uint64_t len, Value v) {
  // Length first, then the hole: a reader that meets the hole re-reads the length and
  // sees the removal (objects/growable_list.cc).
  length_.store(len - 1, std::memory_order_release);
  internal::race_point(internal::RacePoint::kListRemoveAfterLength);
  internal::write_unchecked(Object::from_payload(s), slot, internal::kHole);
  bump_mod_count();
  return v;
}

}  // namespace shoal
