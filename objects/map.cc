// Map (include/shoal/map.h): an insertion-ordered hash map, and why no race breaks it.
//
// Layout (the compact dict of CPython 3.6 and Dart's LinkedHashMap):
//   Map       -> store_: the current MapStore; mod_count_; the key mode
//   MapStore  one object (a kCustom class, so a lookup follows no pointer inside it):
//                capacity, bucket count, used (positions taken), live (entries not
//                removed), the key mode; then `capacity` entry slots holding MapEntry
//                objects in insertion order (a removed one is replaced by the hole
//                marker, a never-used one is null); then 2^k uint64 buckets (0 = empty,
//                else entry position + 1, with the hash's high half above it),
//                linear probing, at most half full
//   MapEntry  -> key (set once, before the entry is published), value (replaceable),
//                hash (of the key, set once)
//
// Each entry is an object of its own, so a key and its value can never be torn apart by
// a race: a reader that reaches an entry reads the key and the value of the same entry.
// A store's capacity and bucket count never change (a MapStore is created with both and
// swapped as a whole on rehash), so a reader that loaded a store probes buckets that
// belong to its entries; every bucket value is checked against the store's capacity
// before use. As in GrowableList (objects/growable_list.cc), every array a
// reader holds stays alive while it holds it, and an old store stays readable after a
// swap.
//
// Operation by operation:
//   get(k): load the store; probe buckets from hash(k) (acquire loads) until an empty
//     one, at most every bucket once; for each, load the entry at its position; skip a
//     hole or null; compare hash and key; on a match return the entry's value. A racing
//     remove replaces the entry by a hole after the reader loaded it: the reader returns
//     the value the entry held - stored under k at some point.
//   set(k, v), k present: store v into the entry's value (barriered). Old and new stores
//     share entry objects, so this update survives a racing rehash.
//   set(k, v), k new: allocate the entry (a safepoint) and fill it; then, with no
//     safepoint until the end: rehash first if the entries array is full; the store
//     check again (a freeze may have claimed the map meanwhile); store the entry at
//     position `used` (release); store position + 1 into the first empty bucket of its
//     probe sequence (release: whoever reads the bucket sees the entry); raise used and
//     live; bump mod_count.
//   remove(k): find the entry; replace its slot in the store by the hole (barriered:
//     the entry is shaded while marking); lower live; bump mod_count. The bucket keeps
//     the position (a tombstone, skipped by probes) until the next rehash.
//   rehash: allocate a new store (a safepoint), re-read the current store, copy its
//     live entries in order into the unpublished one (when racing writers added more
//     during the safepoint than it holds, drop it and size again: a rehash loses no
//     entry it copies), index them, and swap it in
//     through write() (store check + barrier: the old store is shaded, so the entries
//     it holds are traced while marking runs).
//   clear: allocate an empty store and swap it in.
//   retiring: after a rehash or clear swapped it out, the old store's entry slots are
//     filled with holes (barriered), so stale pointers to it retain nothing; a lookup
//     that misses in a store that is no longer current looks again in the current one.
//   iteration: by entry position in the current store, checking mod_count (acquire)
//     before each step: ConcurrentModificationError after a structural change.
//
// Racing writers may lose updates (two new keys written to one position: one survives,
// the other's bucket then points at an entry with another key and its lookups miss; two
// rehashes: one store wins). A probe never loops forever (bounded by the bucket count),
// and a store with no empty bucket (possible only under racing writers) forces a
// rehash. Nothing else can happen.
//
// Identity hashes are addresses (objects never move). A deep copy creates new keys, so
// MapStore has an after_copy function (class_table.h) that recomputes each copied
// entry's hash and rebuilds the copy's buckets before the copy is handed out.
#include "shoal/map.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "objects/builtin_class.h"
#include "shoal/errors.h"
#include "shoal/growable_list.h"

static_assert(shoal::internal::kHoleBits == 2, "Map::kAbsent is the hole marker");

namespace shoal {

namespace {

ClassId entry_class();
ClassId store_class();

struct MapEntry {
  static ClassId class_id() { return entry_class(); }
  Slot key;
  Slot value;
  uint64_t hash = 0;
};

struct MapStore {
  static ClassId class_id() { return store_class(); }
  uint64_t capacity = 0;  // entry slots
  uint64_t buckets = 0;   // a power of two, 2 * capacity
  std::atomic<uint64_t> used{0};
  std::atomic<uint64_t> live{0};
  uint64_t keys = 0;  // MapKeys

  Slot* entries() { return reinterpret_cast<Slot*>(this + 1); }
  const Slot* entries() const { return reinterpret_cast<const Slot*>(this + 1); }
  // A bucket: 0 = empty, else (entry position + 1) | (the hash's high 32 bits << 32),
  // so a probe past another key's bucket rarely needs to load its entry.
  std::atomic_ref<uint64_t> bucket(size_t b) const {
    auto* base = reinterpret_cast<uint64_t*>(const_cast<Slot*>(entries()) + capacity);
    return std::atomic_ref<uint64_t>(base[b]);
  }
  static size_t bytes_for(size_t capacity) {
    return kHeaderSize + sizeof(MapStore) + capacity * sizeof(Slot) + capacity * 2 * sizeof(uint64_t);
  }
};

template <class T>
T* payload_of(Value v) {
  return static_cast<T*>(v.as_object()->payload());
}

void after_copy_store(Object* copy);

ClassId entry_class() {
  static const ClassId id = internal::define_fixed_builtin(
      "MapEntry", sizeof(MapEntry),
      {static_cast<uint32_t>(offsetof(MapEntry, key)), static_cast<uint32_t>(offsetof(MapEntry, value))});
  return id;
}

ClassId store_class() {
  static const ClassId id = [] {
    ClassDescriptor d;
    d.name = "MapStore";
    d.layout = Layout::kCustom;
    d.size = [](const Object* o) { return MapStore::bytes_for(static_cast<const MapStore*>(o->payload())->capacity); };
    d.trace = [](const Object* o, SlotVisitor& v) {
      const auto* s = static_cast<const MapStore*>(o->payload());
      v.visit(s->entries(), s->capacity);
    };
    d.after_copy = after_copy_store;
    return define_class(d);
  }();
  return id;
}

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix(h ^ tail);
}

bool is_string(Value v) { return v.is_object() && v.as_object()->class_id() == kStringClassId; }

uint64_t hash_key(Value key, uint64_t keys) {
  if (keys == static_cast<uint64_t>(MapKeys::kStringsByContent) && is_string(key))
    return hash_bytes(payload_of<String>(key)->view());
  return mix(key.raw());
}

bool keys_equal(Value a, Value b, uint64_t keys) {
  if (a == b) return true;
  return keys == static_cast<uint64_t>(MapKeys::kStringsByContent) && is_string(a) && is_string(b) &&
         payload_of<String>(a)->view() == payload_of<String>(b)->view();
}

struct Found {
  MapEntry* entry = nullptr;
  size_t position = 0;
};

Found find(const MapStore* s, Value key, uint64_t h) {
  const size_t n = s->buckets;
  const size_t mask = n - 1;
  const Slot* entries = s->entries();
  for (size_t i = 0, b = h & mask; i < n; ++i, b = (b + 1) & mask) {
    const uint64_t e = s->bucket(b).load(std::memory_order_acquire);
    if (e == 0) break;
    if ((e >> 32) != (h >> 32)) continue;  // another hash
    internal::race_point(internal::RacePoint::kMapGetAfterIndex);
    const size_t pos = static_cast<uint32_t>(e) - 1;
    if (pos >= s->capacity) continue;
    const Value ev = entries[pos].load();
    if (!ev.is_object()) continue;  // removed
    MapEntry* me = payload_of<MapEntry>(ev);
    if (me->hash == h && keys_equal(me->key.load(), key, s->keys)) return {me, pos};
  }
  return {};
}

// Puts position `pos` into the first empty bucket of hash h's probe sequence; false
// when there is none (only after racing writers).
bool place(const MapStore* s, uint64_t h, size_t pos) {
  const size_t n = s->buckets;
  const size_t mask = n - 1;
  for (size_t i = 0, b = h & mask; i < n; ++i, b = (b + 1) & mask) {
    if (s->bucket(b).load(std::memory_order_relaxed) == 0) {
      s->bucket(b).store((pos + 1) | (h >> 32 << 32), std::memory_order_release);
      return true;
    }
  }
  return false;
}

// A new, unpublished store able to hold `capacity` entries, owned like `map`.
Ref<MapStore> new_store(size_t capacity, uint64_t keys, const Object* map) {
  Object* o = allocate_custom(store_class(), MapStore::bytes_for(capacity));  // zeroed
  internal::adopt_owner(o, map);
  auto* store = new (o->payload()) MapStore();
  store->capacity = capacity;  // what the size function reads: before any safepoint
  store->buckets = capacity * 2;
  store->keys = keys;
  return Ref<MapStore>::from_object(o);
}

// Empties a store that is no longer the map's (after a rehash or clear): a stale
// pointer to it - a conservative root, a slow reader - then retains no entry and is no
// outside referrer for a SAFE transfer of the map. Barriered (while marking the old
// store may be an entry's only snapshot path: the new arrays are allocated black). A
// reader that misses in it looks again in the current store (Map::get).
void retire(MapStore* old) {
  Object* oo = Object::from_payload(old);
  const size_t used = std::min<size_t>(old->used.load(std::memory_order_relaxed), old->capacity);
  for (size_t pos = 0; pos < used; ++pos) internal::write_unchecked(oo, old->entries()[pos], internal::kHole);
}

// A bucket holds an entry's position + 1 in its low 32 bits: a store's capacity stays
// below 2^32 - 1 (a map's entries alone would then take 128 GiB).
constexpr size_t kMaxCapacity = size_t{1} << 31;
static_assert(kMaxCapacity + 1 <= UINT32_MAX, "bucket positions are 32-bit");

size_t capacity_for(size_t entries) {
  size_t cap = 8;
  while (cap < entries + entries / 2) cap *= 2;
  if (cap > kMaxCapacity)
    throw OutOfMemory(MapStore::bytes_for(cap), "a Map holds at most " + std::to_string(kMaxCapacity / 3 * 2) +
                                                    " entries (its index positions are 32-bit)");
  return cap;
}

void rebuild_index(MapStore* s) {
  for (size_t b = 0; b < s->buckets; ++b) s->bucket(b).store(0, std::memory_order_relaxed);
  const size_t used = std::min<size_t>(s->used.load(std::memory_order_relaxed), s->capacity);
  for (size_t pos = 0; pos < used; ++pos) {
    const Value ev = s->entries()[pos].load();
    if (ev.is_object()) place(s, payload_of<MapEntry>(ev)->hash, pos);
  }
}

void after_copy_store(Object* copy) {
  auto* s = static_cast<MapStore*>(copy->payload());
  const size_t used = std::min<size_t>(s->used.load(std::memory_order_relaxed), s->capacity);
  for (size_t pos = 0; pos < used; ++pos) {
    const Value ev = s->entries()[pos].load();
    if (ev.is_object()) {
      MapEntry* e = payload_of<MapEntry>(ev);
      e->hash = hash_key(e->key.load(), s->keys);
    }
  }
  rebuild_index(s);
}

}  // namespace

ClassId Map::class_id() {
  static const ClassId id =
      internal::define_fixed_builtin("Map", sizeof(Map), {static_cast<uint32_t>(offsetof(Map, store_))});
  return id;
}

Ref<Map> Map::create(MapKeys keys) {
  const ClassId id = class_id();
  Object* o = allocate_instance(id);
  Ref<Map> map = Ref<Map>::from_object(o);
  auto* m = new (o->payload()) Map();
  m->keys_ = static_cast<uint64_t>(keys);
  Ref<MapStore> store = new_store(capacity_for(0), m->keys_, o);
  internal::write_unchecked(o, m->store_, store.value());
  return map;
}

size_t Map::size() const {
  const auto* s = payload_of<MapStore>(store_.load());
  return s->live.load(std::memory_order_acquire);
}

Value Map::lookup(Value key) const {
  const uint64_t h = hash_key(key, keys_);
  Value store = store_.load();
  for (;;) {
    const Found f = find(payload_of<MapStore>(store), key, h);
    if (f.entry) return f.entry->value.load();
    // A miss in a store a rehash has retired (and emptied) meanwhile says nothing:
    // look again in the current one.
    const Value now = store_.load();
    if (now == store) return Value::from_raw(kAbsent);
    store = now;
  }
}

void Map::set(Value key, Value value) {
  internal::check_store(self(), "Map::set");
  const uint64_t h = hash_key(key, keys_);
  {
    const Found f = find(payload_of<MapStore>(store_.load()), key, h);
    if (f.entry) {
      internal::write_unchecked(Object::from_payload(f.entry), f.entry->value, value);
      return;
    }
  }
  // A new key: the entry first (a safepoint; key and value are held by this frame).
  Object* eo = allocate_instance(entry_class());
  const Ref<MapEntry> entry = Ref<MapEntry>::from_object(eo);  // held across the rehash's safepoints
  internal::adopt_owner(eo, self());
  auto* e = new (eo->payload()) MapEntry();
  e->hash = h;
  internal::write_unchecked(eo, e->key, key);
  internal::write_unchecked(eo, e->value, value);
  size_t at_least = 0;  // entries a rehash must hold, after one found too little room
  for (;;) {
    auto* s = payload_of<MapStore>(store_.load());
    const uint64_t pos = s->used.load(std::memory_order_relaxed);
    if (pos >= s->capacity) {
      // Full: rehash into a store with room for one more live entry (a safepoint).
      const size_t live = std::max<size_t>(s->live.load(std::memory_order_relaxed), at_least);
      Ref<MapStore> fresh = new_store(capacity_for(live + 1), keys_, self());
      MapStore* ns = fresh.operator->();
      internal::race_point(internal::RacePoint::kMapRehashAfterAllocate);
      auto* cur = payload_of<MapStore>(store_.load());  // re-read after the safepoint
      const size_t used = std::min<size_t>(cur->used.load(std::memory_order_relaxed), cur->capacity);
      size_t n = 0;
      // Plain stores into the unpublished store, in no-preempt stretches that each start
      // by remembering it if a pause made it old (see GrowableList::grow).
      std::optional<internal::NoPreemptScope> stretch;
      bool fits = true;
      for (size_t p = 0; p < used; ++p) {
        if (p % 4096 == 0) {
          stretch.reset();
          stretch.emplace();
          // (The stretch writes entries n.. at most: a large store is remembered by
          // their cards.)
          internal::remember_before_plain_stores(fresh.object(), ns->entries() + n,
                                                 std::min<size_t>(4096, ns->capacity - n));
        }
        const Value ev = cur->entries()[p].load();
        if (!ev.is_object()) continue;
        if (n == ns->capacity) {
          fits = false;
          break;
        }
        internal::SlotAccess::store_relaxed(ns->entries()[n], ev);  // unpublished
        place(ns, payload_of<MapEntry>(ev)->hash, n);
        ++n;
      }
      stretch.reset();
      // Racing writers added entries during the safepoint (the live count is theirs to
      // race on too): drop the unpublished store and size again - a rehash loses no entry.
      if (!fits) {
        at_least = used;
        continue;
      }
      ns->used.store(n, std::memory_order_relaxed);
      ns->live.store(n, std::memory_order_relaxed);
      internal::race_point(internal::RacePoint::kMapRehashAfterCopy);
      write(self(), store_, fresh.value());  // store check + barrier (old store shaded)
      retire(cur);
      continue;
    }
    // No safepoint from here to the end.
    internal::check_store(self(), "Map::set");
    internal::write_unchecked(Object::from_payload(s), s->entries()[pos], Value::from_object(eo));
    if (!place(s, h, pos)) {
      // No empty bucket (racing writers filled them): force a rehash and try again.
      s->used.store(s->capacity, std::memory_order_relaxed);
      continue;
    }
    s->used.store(pos + 1, std::memory_order_release);
    s->live.store(s->live.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    mod_count_.store(mod_count_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    keep_alive(entry);
    return;
  }
}

Value Map::remove_key(Value key) {
  internal::check_store(self(), "Map::remove");
  auto* s = payload_of<MapStore>(store_.load());
  const Found f = find(s, key, hash_key(key, keys_));
  if (!f.entry) return Value::from_raw(kAbsent);
  const Value v = f.entry->value.load();
  internal::write_unchecked(Object::from_payload(s), s->entries()[f.position], internal::kHole);
  internal::race_point(internal::RacePoint::kMapRemoveAfterUnlink);
  const uint64_t live = s->live.load(std::memory_order_relaxed);
  s->live.store(live == 0 ? 0 : live - 1, std::memory_order_release);
  mod_count_.store(mod_count_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  return v;
}

void Map::clear() {
  internal::check_store(self(), "Map::clear");
  Ref<MapStore> fresh = new_store(capacity_for(0), keys_, self());  // safepoints
  internal::check_store(self(), "Map::clear");
  auto* old = payload_of<MapStore>(store_.load());
  mod_count_.store(mod_count_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  write(self(), store_, fresh.value());
  retire(old);
}

bool Map::next_entry(size_t& pos, uint64_t mod, Value& key, Value& value) const {
  if (mod_count_.load(std::memory_order_acquire) != mod)
    throw ConcurrentModificationError("Map iteration: a key was added or removed, or the map cleared, after the "
                                      "iteration started");
  internal::race_point(internal::RacePoint::kIteratorAfterCheck);
  const auto* s = payload_of<MapStore>(store_.load());
  const size_t used = std::min<size_t>(s->used.load(std::memory_order_acquire), s->capacity);
  for (; pos < used; ++pos) {
    const Value ev = s->entries()[pos].load();
    if (!ev.is_object()) continue;
    const MapEntry* e = payload_of<MapEntry>(ev);
    key = e->key.load();
    value = e->value.load();
    return true;
  }
  return false;
}

}  // namespace shoal
