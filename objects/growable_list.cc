// GrowableList (include/shoal/growable_list.h): why no race can break the heap.
//
// Layout. The list object holds `storage_` (a RefArray whose length is the capacity,
// fixed for the array's life), `length_` and `mod_count_` (atomic words). Growth
// allocates a bigger array, copies, and swaps `storage_` (a release store through the
// write barrier); the old array is never written again by a correct program and is
// simply dropped. Positions at or beyond the length hold the hole marker kHole (the raw
// word 2: not null, not an integer, not an object - every heap walker skips it), never
// a stale reference.
//
// Why the old storage is safe to read. A reader loads `storage_` into a register and
// indexes that array. Every array is traced in full by the collector (all capacity
// slots; holes are skipped), so as long as the reader holds the array - and a reference
// in a running thread's registers or stack is a root at every pause - the array and
// every object any of its slots refers to stay allocated. A swap does not free the old
// array under a reader; it only stops new readers from finding it. Indexes are always
// checked against the array's own, immutable length before the load, so a read is
// never outside an array whatever the list's length says. Slots are atomic words
// (value.h): a racing read sees the old or the new reference, never a torn one.
//
// The invariant for reads: every position below the length holds an element in the
// single-writer case; with racing writers a position below the length may hold a hole
// (below), never a stale reference and never a null that was not stored. So a read
// either returns a stored element or meets a hole - and a hole is never returned.
//
// Operation by operation (L = the length the operation read):
//   get(i): load length (acquire); i >= L -> RangeError. Load storage (acquire), check
//     i against its capacity, load slot i (acquire). A stored value is returned. A hole
//     (or i beyond a capacity smaller than L, after a racing clear) means a removal ran
//     between the bounds check and the load: retry from the length, which the removal
//     lowered before it wrote the hole (remove_last below), so the retry throws
//     RangeError - or, when an add re-filled the position meanwhile, returns the new
//     element. Bounded retries, then ConcurrentModificationError (only racing writers
//     can leave a hole below the length for good; see "racing writers").
//     Length before storage: growth publishes the storage before raising the length,
//     so whoever sees a length sees a storage at least that big.
//   set(i, v): store check on the list; i < L and i < capacity -> barriered store. A
//     set racing a removal may store into a position just removed (beyond the new
//     length); the value then sits there, traced, until an add overwrites it - a
//     lost update, not a hole below the length.
//   add(v): store check; if L < capacity store the element at L (barriered: the slot
//     held a hole or, after a racing set, some value, which SATB shades), then raise
//     the length to L + 1 (release: the element is visible to whoever sees the length).
//     Otherwise grow first (below) and start again.
//   remove_last(): store check; read slot L - 1 (a hole there: see the slow path
//     below); lower the length to L - 1 (release), THEN write the hole (barriered:
//     the removed element is shaded while marking, as any overwritten reference). A reader that saw L and then loads the hole
//     synchronises with the hole store, so its re-read of the length sees L - 1 (or a
//     later value): RangeError, or a re-added element. Without the hole - storing null,
//     as Dart's _GrowableList does - that reader would return null for an element
//     that was never null: the seed's hole. A hole in slot L - 1 (the slow path) is
//     a racing writer's change between the reads - a growth that swapped the storage
//     read and filled it with holes, a removal that lowered the length - and the
//     removal starts again on the current length and storage, or, when neither moved,
//     one that racing writers left for good (below): dropped, ConcurrentModificationError.
//   insert(i, v): store check; grow if full; move [i, L) up by one from the top (each a
//     barriered store of a value just read), store v at i, raise the length. A reader
//     of a moving position sees the value that was there or the one moved in - both
//     stored at that position.
//   remove_at(i): read slot i; move (i, L) down by one; lower the length; hole at L - 1.
//   clear(): allocate an empty storage; lower the length to 0; swap the storage; fill
//     the old one with holes (as after growth). A reader with the old length and the
//     new storage fails the capacity check and retries into RangeError.
//   growth: allocate the new array (a safepoint: anything may happen meanwhile), then
//     re-read the storage and length, copy [0, min(L, old capacity)) with plain atomic
//     loads and stores into the unpublished array, fill the rest with holes, and swap
//     it in through write() (which repeats the store check: a freeze may have claimed
//     the list during the safepoint, and the caller's element store follows with no
//     safepoint in between). SATB: the copied references stay in the old array until
//     the swap, whose barrier shades the old array, so marking traces them. Then the
//     old array is filled with holes (barriered stores), so that a stale pointer to it
//     - a conservative root, a slow reader - retains no element and is no outside
//     referrer for a SAFE transfer of the list; a reader that still indexes it meets a
//     hole and retries on the current storage, which holds the same elements.
//   iteration: the iterator records mod_count at begin; every element read and the end
//     test compare it (acquire) and throw ConcurrentModificationError when a structural
//     change (add, insert, remove, clear) bumped it.
//
// Racing writers. Writers use plain loads and stores (no read-modify-write on the
// single-threaded fast path), so two unsynchronised writers can lose updates, and one
// interleaving leaves a hole below the length for good: add reads L, remove_last lowers
// the length to L - 1 and writes a hole at L - 1, then add stores at L and raises the
// length to L + 1. Reads of that position throw ConcurrentModificationError until it
// is set or removed; remove_last of it removes it and throws the same error. Nothing
// else can happen: every index is checked against the array it indexes, every value in
// an array is a stored element or a hole, and every array a thread holds stays alive.
#include "shoal/growable_list.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <thread>

#include "objects/builtin_class.h"
#include "shoal/errors.h"
#include "shoal/internal/size_classes.h"

namespace shoal {

namespace internal {
std::atomic<RaceHook> g_race_hook{nullptr};
}  // namespace internal

namespace {
constexpr int kHoleRetries = 64;
// Elements copied per no-preempt stretch when a list grows (a pause waits at most this).
constexpr size_t kPlainStoreStretch = 4096;

[[noreturn]] void list_range_error(const char* what, size_t index, size_t length) {
  throw RangeError(std::string("GrowableList::") + what + ": index " + std::to_string(index) +
                   " out of range for length " + std::to_string(length));
}

[[noreturn]] void list_hole_error(const char* what, size_t index) {
  throw ConcurrentModificationError(std::string("GrowableList::") + what + ": position " + std::to_string(index) +
                                    " holds no element - unsynchronised writers raced on this list (an add and "
                                    "a removal from different threads) and one of them removed it");
}

Ref<RefArray> new_storage(size_t capacity, size_t filled_from) {
  Ref<RefArray> a = RefArray::create(capacity);
  Slot* slots = a->slots();
  for (size_t i = filled_from; i < capacity; ++i) internal::SlotAccess::store(slots[i], internal::kHole);
  return a;
}
}  // namespace

ClassId GrowableList::class_id() {
  static const ClassId id = internal::define_fixed_builtin(
      "GrowableList", sizeof(GrowableList), {static_cast<uint32_t>(offsetof(GrowableList, storage_))});
  return id;
}

Ref<GrowableList> GrowableList::create(size_t capacity) {
  const ClassId id = class_id();
  Ref<RefArray> storage = new_storage(capacity, 0);
  Object* o = allocate_instance(id);
  auto* list = new (o->payload()) GrowableList();
  // The list is fresh and unpublished: an initialising store.
  internal::write_unchecked(o, list->storage_, storage.value());
  return Ref<GrowableList>::from_object(o);
}

Value GrowableList::get_slow(size_t index) const {
  for (int attempt = 0; attempt < kHoleRetries; ++attempt) {
    const uint64_t len = length_.load(std::memory_order_acquire);
    if (index >= len) list_range_error("get", index, len);
    const RefArray* s = storage();
    if (index < s->length()) {
      const Value v = s->slots()[index].load();
      if (v.raw() != internal::kHoleBits) return v;
    }
    if (attempt >= 8) std::this_thread::yield();
  }
  list_hole_error("get", index);
}

// A capacity of at least `wanted` elements that fills its size-class cell exactly (a
// RefArray is 16 bytes of header and length plus 8 per element), so growth never
// leaves slack in the cell; past the largest small cell, `wanted` itself.
static size_t fitted_capacity(size_t wanted) {
  const size_t bytes = 16 + 8 * wanted;
  if (bytes > internal::kMaxSmallSize) return wanted;
  return (internal::kClassSize[internal::size_class_of(bytes)] - 16) / 8;
}

RefArray* GrowableList::grow(size_t needed) {
  const size_t old_capacity = storage()->length();
  const size_t capacity = fitted_capacity(std::max<size_t>({needed, old_capacity * 2, 6}));
  Ref<RefArray> fresh = RefArray::create(capacity);  // a safepoint
  internal::adopt_owner(fresh.object(), self());
  // Anything may have happened during the allocation: re-read.
  RefArray* old = storage();
  if (old->length() >= needed) return old;  // a racing writer grew it
  const size_t count = std::min<size_t>(length_.load(std::memory_order_acquire), old->length());
  // The fresh array is unpublished, so no other thread can touch it yet: plain stores
  // (the hole fill vectorises). The old array may be read and written by racing threads:
  // atomic loads. The copy runs in no-preempt stretches: none can be split by a pause,
  // and each starts by remembering the fresh array if a pause in between made it old
  // (generations; internal::remember_before_plain_stores). While marking, the copied
  // references are reachable from the old array, which retire() below shades.
  uint64_t* to = reinterpret_cast<uint64_t*>(fresh->slots());
  const Slot* from = old->slots();
  for (size_t begin = 0; begin < count; begin += kPlainStoreStretch) {
    internal::NoPreemptScope no_preempt;
    const size_t end = std::min(count, begin + kPlainStoreStretch);
    internal::remember_before_plain_stores(fresh.object(), fresh->slots() + begin, end - begin);
    for (size_t i = begin; i < end; ++i) to[i] = from[i].load_relaxed_raw();
  }
  std::fill(to + count, to + capacity, internal::kHoleBits);
  internal::race_point(internal::RacePoint::kListGrowAfterCopy);
  write(self(), storage_, fresh.value());  // the store check again, and the barrier
  retire(old, count);
  return fresh.operator->();
}

void GrowableList::retire(RefArray* old, size_t count) {
  // The dropped storage keeps nothing alive: a stale pointer to it (a conservative root,
  // a slow reader) must not retain the elements - nor make a SAFE transfer of the list
  // see an outside referrer. Barriered: while marking, the old array may be the only
  // snapshot path to an element (the new array is allocated black), so each cleared
  // reference is shaded. A reader still holding the old array meets a hole and retries
  // on the current storage.
  Object* oo = Object::from_payload(old);
  Slot* slots = old->slots();
  internal::NoPreemptScope no_preempt;  // the flag test decides for the whole loop
  if (internal::g_write_barrier_active.load(std::memory_order_relaxed) != 0) {
    for (size_t i = 0; i < count; ++i) internal::write_unchecked(oo, slots[i], internal::kHole);
  } else {
    // Not marking, and no safepoint in this loop for marking to start at: no shading.
    for (size_t i = 0; i < count; ++i) internal::SlotAccess::store_relaxed(slots[i], internal::kHole);
  }
}

void GrowableList::add_slow(Value value) {
  grow(length_.load(std::memory_order_relaxed) + 1);
  add(value);  // checks again: the growth was a safepoint
}

Value GrowableList::remove_last_slow() {
  // The fast path met a hole at the last position, or a length beyond the storage. A
  // racing writer may have changed the list between its reads - a growth swapped the
  // storage and filled the one it read with holes (the element is in the new one), a
  // removal lowered the length - so try again on what is there now while something
  // moved; only a hole that stays put (racing writers left it for good) is dropped.
  for (int attempt = 0;; ++attempt) {
    const uint64_t len = length_.load(std::memory_order_acquire);
    if (len == 0) throw RangeError("GrowableList::remove_last: the list is empty");
    RefArray* s = storage();
    if (len <= s->length()) {
      Slot& slot = s->slots()[len - 1];
      const Value v = slot.load();
      if (v.raw() != internal::kHoleBits) return take_last(s, slot, len, v);
    }
    const bool moved = length_.load(std::memory_order_acquire) != len || storage() != s;
    if (moved && attempt < kHoleRetries) {
      if (attempt >= 8) std::this_thread::yield();
      continue;
    }
    if (len > s->length()) {
      // Racing writers left a length beyond the storage: cut it back.
      length_.store(s->length(), std::memory_order_release);
      bump_mod_count();
      list_hole_error("remove_last", len - 1);
    }
    // The last position holds a hole (racing writers): drop it.
    length_.store(len - 1, std::memory_order_release);
    bump_mod_count();
    list_hole_error("remove_last", len - 1);
  }
}

void GrowableList::add_all(std::span<const Value> values) {
  if (values.empty()) return;
  internal::check_store(self(), "GrowableList::add_all");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  RefArray* s = storage();
  if (len + values.size() > s->length()) s = grow(len + values.size());
  const uint64_t at = std::min<uint64_t>(length_.load(std::memory_order_relaxed), s->length());
  const size_t n = std::min<size_t>(values.size(), s->length() - at);
  Object* so = Object::from_payload(s);
  for (size_t i = 0; i < n; ++i) internal::write_unchecked(so, s->slots()[at + i], values[i]);
  internal::race_point(internal::RacePoint::kListAddBeforeLength);
  length_.store(at + n, std::memory_order_release);
  bump_mod_count();
}

void GrowableList::add_all(const GrowableList& other) {
  const size_t n = other.length();
  if (n == 0) return;
  internal::check_store(self(), "GrowableList::add_all");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  RefArray* s = storage();
  if (len + n > s->length()) s = grow(len + n);
  const uint64_t at = std::min<uint64_t>(length_.load(std::memory_order_relaxed), s->length());
  // `other` may be this list: its first n elements are below `at` and unchanged.
  const size_t room = std::min<size_t>(n, s->length() - at);
  Object* so = Object::from_payload(s);
  size_t done = 0;
  for (; done < room; ++done) {
    Value v;
    try {
      v = other.get(done);
    } catch (const RangeError&) {
      break;  // `other` shrank under a racing writer: append what it still had
    }
    internal::write_unchecked(so, s->slots()[at + done], v);
  }
  length_.store(at + done, std::memory_order_release);
  bump_mod_count();
}

void GrowableList::insert(size_t index, Value value) {
  internal::check_store(self(), "GrowableList::insert");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  if (index > len) list_range_error("insert", index, len);
  RefArray* s = storage();
  if (len >= s->length()) {
    grow(len + 1);
    insert(index, value);  // checks again after the safepoint
    return;
  }
  Object* so = Object::from_payload(s);
  Slot* slots = s->slots();
  for (size_t j = len; j > index; --j) internal::write_unchecked(so, slots[j], slots[j - 1].load());
  internal::write_unchecked(so, slots[index], value);
  internal::race_point(internal::RacePoint::kListAddBeforeLength);
  length_.store(len + 1, std::memory_order_release);
  bump_mod_count();
}

Value GrowableList::remove_at(size_t index) {
  internal::check_store(self(), "GrowableList::remove_at");
  const uint64_t len = length_.load(std::memory_order_relaxed);
  if (index >= len) list_range_error("remove_at", index, len);
  RefArray* s = storage();
  if (len > s->length()) {
    length_.store(s->length(), std::memory_order_release);
    bump_mod_count();
    list_hole_error("remove_at", index);
  }
  Object* so = Object::from_payload(s);
  Slot* slots = s->slots();
  const Value v = slots[index].load();
  for (size_t j = index; j + 1 < len; ++j) internal::write_unchecked(so, slots[j], slots[j + 1].load());
  length_.store(len - 1, std::memory_order_release);
  internal::race_point(internal::RacePoint::kListRemoveAfterLength);
  internal::write_unchecked(so, slots[len - 1], internal::kHole);
  bump_mod_count();
  if (v.raw() == internal::kHoleBits) list_hole_error("remove_at", index);
  return v;
}

void GrowableList::clear() {
  internal::check_store(self(), "GrowableList::clear");
  Ref<RefArray> empty = RefArray::create(0);  // a safepoint; write() below checks again
  internal::adopt_owner(empty.object(), self());
  internal::check_store(self(), "GrowableList::clear");
  RefArray* old = storage();
  const size_t count = std::min<size_t>(length_.load(std::memory_order_relaxed), old->length());
  length_.store(0, std::memory_order_release);
  bump_mod_count();
  write(self(), storage_, empty.value());
  retire(old, count);
}

Value GrowableList::iterator_get(size_t index, uint64_t mod_count) const {
  if (mod_count_.load(std::memory_order_acquire) != mod_count)
    throw ConcurrentModificationError("GrowableList iteration: the list was modified (add, insert, remove or clear) "
                                      "after the iteration started");
  internal::race_point(internal::RacePoint::kIteratorAfterCheck);
  try {
    return get(index);
  } catch (const RangeError&) {
    throw ConcurrentModificationError("GrowableList iteration: the list shrank under the iteration (at index " +
                                      std::to_string(index) + ")");
  }
}

bool GrowableList::Iterator::operator!=(const Iterator&) const {
  if (index_ < list_->length()) return true;
  if (list_->mod_count_.load(std::memory_order_acquire) != mod_count_)
    throw ConcurrentModificationError("GrowableList iteration: the list was modified (add, insert, remove or clear) "
                                      "after the iteration started");
  return false;
}

}  // namespace shoal
