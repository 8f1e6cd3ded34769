// ObjectIndex (internal): an open-addressing hash map from object addresses to dense
// indices 0, 1, 2, ... in insertion order - the visited set of freeze, the source-to-copy
// map of a deep copy and the subgraph of a transfer. Linear probing over a power-of-two
// table kept at most half full; no deletion. Objects never move, so addresses are
// stable keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "shoal/object.h"

namespace shoal::internal {

class ObjectIndex {
 public:
  static constexpr size_t kMissing = SIZE_MAX;

  ObjectIndex() : slots_(64) {}

  // The index of `o`, or kMissing.
  size_t find(const Object* o) const {
    for (size_t i = hash(o) & mask(); ; i = (i + 1) & mask()) {
      if (slots_[i].object == o) return slots_[i].index;
      if (slots_[i].object == nullptr) return kMissing;
    }
  }
  bool contains(const Object* o) const { return find(o) != kMissing; }

  // Inserts `o` with the next index; returns {index, true}, or {existing index, false}.
  std::pair<size_t, bool> insert(const Object* o) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = hash(o) & mask(); ; i = (i + 1) & mask()) {
      if (slots_[i].object == o) return {slots_[i].index, false};
      if (slots_[i].object == nullptr) {
        slots_[i] = {o, count_};
        return {count_++, true};
      }
    }
  }
  size_t size() const { return count_; }

 private:
  // Fibonacci hashing: the top log2(size) bits of the product (the low bits of an
  // address-times-constant product cluster for objects laid out at a fixed stride).
  size_t hash(const Object* o) const {
    const uint64_t x = (reinterpret_cast<uintptr_t>(o) >> 3) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(x >> shift_);
  }
  size_t mask() const { return slots_.size() - 1; }
  void grow() {
    std::vector<Entry> old(slots_.size() * 2);
    old.swap(slots_);
    --shift_;
    for (const Entry& e : old) {
      if (!e.object) continue;
      size_t i = hash(e.object) & mask();
      while (slots_[i].object) i = (i + 1) & mask();
      slots_[i] = e;
    }
  }

  struct Entry {
    const Object* object = nullptr;
    size_t index = 0;
  };
  std::vector<Entry> slots_;
  size_t count_ = 0;
  unsigned shift_ = 64 - 6;  // 64 - log2(slots_.size())
};

}  // namespace shoal::internal
