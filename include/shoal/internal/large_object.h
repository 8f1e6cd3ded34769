// A large object's record (internal; heap/large_object_space.h manages them): list
// links, size and mark word in the 64 bytes before the object, and the object's cards
// after it.
//
// Cards (generations, gc/generations.cc "Cards"). A young cycle must not trace a large
// remembered object whole - one young store into a 64 MiB array would cost every young
// cycle 64 MiB - so a large object's remembered-set entry is the set of its dirty
// cards: kCardBytes of the object each, one byte per card, in two card sets (the cycles
// alternate between them, as the remembered-next header bits do). The card bytes lie
// after the object in the same allocation, zeroed with it. `listed[set]` says the
// object is on a remembered-set buffer for that set: the thread that turns it on pushes
// the object, so each object is listed once per set however many cards are dirtied.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shoal/object.h"

namespace shoal::internal {

inline constexpr size_t kCardShift = 9;
inline constexpr size_t kCardBytes = size_t{1} << kCardShift;  // 64 slots
inline constexpr unsigned kCardSets = 2;

struct LargeObject {
  LargeObject* prev;
  LargeObject* next;
  size_t object_bytes;
  size_t allocation_bytes;
  std::atomic<uint32_t> mark;
  uint32_t magic;
  size_t card_count;                       // cards per set
  std::atomic<uint8_t> listed[kCardSets];  // on a remembered-set buffer for that card set
  uint8_t padding[6];
  uint64_t padding2;

  static constexpr uint32_t kMagic = 0x5ea1b16u;
  static size_t cards_for(size_t object_bytes) { return (object_bytes + kCardBytes - 1) >> kCardShift; }
  // Card set `set`: card_count bytes, 0 clean, 1 dirty. Mutators write only the set the
  // barrier records into (atomically: std::atomic_ref); the other set is read and
  // cleared by the collector alone (gc/generations.cc, "Cards").
  uint8_t* cards(unsigned set) const {
    return reinterpret_cast<uint8_t*>(begin() + ((object_bytes + 15) & ~size_t{15})) + set * card_count;
  }
  size_t card_of(uintptr_t a) const { return (a - begin()) >> kCardShift; }
  // The write barrier's inline test (include/shoal/write_barrier.h): is `slot`'s card
  // dirty in `set` and the object listed for it? Loads only - a store that finds both
  // needs no slow path. Within one recording epoch (between two initial pauses) both
  // only go from 0 to 1, so seeing them set means this epoch recorded them.
  bool card_recorded(unsigned set, const void* slot) const {
    if (listed[set].load(std::memory_order_relaxed) == 0) return false;
    uint8_t& card = cards(set)[card_of(reinterpret_cast<uintptr_t>(slot))];
    return std::atomic_ref<uint8_t>(card).load(std::memory_order_relaxed) != 0;
  }
  // Whether set `set` has a dirty card (the collector's read: no mutator writes it then).
  bool any_dirty(unsigned set) const {
    const uint8_t* c = cards(set);
    return std::find(c, c + card_count, uint8_t{1}) != c + card_count;
  }
  Object* object() { return reinterpret_cast<Object*>(this + 1); }
  static LargeObject* of(const Object* o) {
    return reinterpret_cast<LargeObject*>(const_cast<Object*>(o)) - 1;
  }
  uintptr_t begin() const { return reinterpret_cast<uintptr_t>(this + 1); }
  uintptr_t end() const { return begin() + object_bytes; }
};
static_assert(sizeof(LargeObject) % 64 == 0);

}  // namespace shoal::internal
