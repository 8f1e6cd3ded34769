// Map: a hash map from Value to Value that remembers insertion order (Dart's default
// Map, Python's dict), heap-safe under any race.
//
//   shoal::Ref<shoal::Map> m = shoal::Map::create();
//   m->set(shoal::String::create("x").value(), Value::from_int(1));
//   std::optional<shoal::Value> v = m->get(key);
//   m->for_each([](Value k, Value v) { ... });       // in insertion order
//
// Keys are any Values: small integers and null compare by value, objects by identity -
// except Strings, which compare by content unless the map was created with
// MapKeys::kIdentity. (Shoal never moves objects, so an identity hash is the address;
// a deep copy rehashes its copy.)
//
// Races: as for GrowableList, two threads may race on one map without a lock and the
// heap stays intact. A lookup returns a value that was stored under that key at some
// point, or nothing; never a value stored under another key, never a torn entry, never
// a read outside the table. Racing writers may lose updates. Iteration (for_each,
// range-for) throws ConcurrentModificationError when a key is added or removed or the
// map cleared after it started (replacing the value of an existing key is not a
// structural change). objects/map.cc has the argument. Frozen maps refuse every
// mutation with InvalidMutabilityError. A map holds at most 2^31 * 2/3 entries (its
// index positions are 32-bit); set of one more throws OutOfMemory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "shoal/builtins.h"
#include "shoal/managed.h"

namespace shoal {

enum class MapKeys : uint8_t {
  kStringsByContent,  // Strings equal when their bytes are; other objects by identity
  kIdentity,          // every object by identity
};

class Map {
 public:
  static Ref<Map> create(MapKeys keys = MapKeys::kStringsByContent);
  static ClassId class_id();

  size_t size() const;
  bool empty() const { return size() == 0; }
  MapKeys key_mode() const { return static_cast<MapKeys>(keys_); }

  // The value stored under `key`, or nothing.
  std::optional<Value> get(Value key) const {
    const Value v = lookup(key);
    if (v.raw() == kAbsent) return std::nullopt;
    return v;
  }
  // The value stored under `key`, or `fallback` - the fast form: no std::optional (GCC
  // builds an optional<Value> result on the stack, and reading it back costs a
  // store-forwarding stall of ~10 ns in a tight loop: docs/performance.md).
  Value get_or(Value key, Value fallback) const {
    const Value v = lookup(key);
    return v.raw() == kAbsent ? fallback : v;
  }
  bool contains(Value key) const { return lookup(key).raw() != kAbsent; }
  // Stores `value` under `key` (a new key goes last in the iteration order; an existing
  // key keeps its place).
  void set(Value key, Value value);
  // Removes `key`; returns the value it had, or nothing.
  std::optional<Value> remove(Value key) {
    const Value v = remove_key(key);
    if (v.raw() == kAbsent) return std::nullopt;
    return v;
  }
  void clear();

  // Calls fn(key, value) for every entry in insertion order. fn may read the map; a
  // structural change (by fn or by another thread) makes the next step throw
  // ConcurrentModificationError.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const uint64_t mod = mod_count_.load(std::memory_order_acquire);
    Value k, v;
    for (size_t pos = 0; next_entry(pos, mod, k, v); ++pos) fn(k, v);
  }

  class Iterator {
   public:
    std::pair<Value, Value> operator*() const { return {key_, value_}; }
    Iterator& operator++() {
      ++pos_;
      advance();
      return *this;
    }
    bool operator!=(const Iterator&) const { return !done_; }

   private:
    friend class Map;
    Iterator(const Map* map, uint64_t mod) : map_(map), mod_(mod) { advance(); }
    Iterator() : done_(true) {}
    void advance() { done_ = !map_->next_entry(pos_, mod_, key_, value_); }
    const Map* map_ = nullptr;  // an interior pointer on the stack: a root like a Ref
    uint64_t mod_ = 0;
    size_t pos_ = 0;
    Value key_, value_;
    bool done_ = false;
  };
  Iterator begin() const { return Iterator(this, mod_count_.load(std::memory_order_acquire)); }
  Iterator end() const { return Iterator(); }

 private:
  // lookup and remove_key return the raw word kAbsent (the hole marker, which is never a
  // value: value.h) for a missing key - a one-word result in a register; the optional
  // is built inline, where the compiler keeps it in registers too.
  static constexpr uint64_t kAbsent = 2;
  Value lookup(Value key) const;
  Value remove_key(Value key);
  // Finds the first live entry at entry position >= pos (updating pos); false at the
  // end. Throws ConcurrentModificationError when the modification count is not `mod`.
  bool next_entry(size_t& pos, uint64_t mod, Value& key, Value& value) const;
  Object* self() { return Object::from_payload(this); }

  Slot store_;  // the table (objects/map.cc: MapStore)
  std::atomic<uint64_t> mod_count_{0};
  uint64_t keys_ = 0;  // MapKeys, fixed at creation
};

}  // namespace shoal
