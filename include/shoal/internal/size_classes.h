// Size classes for small objects (internal; public only because the inline allocation
// fast path needs the tables).
//
// Granule 8 bytes (the object alignment). Classes: 16..64 in steps of 8 (7 classes: a
// header and one to seven slots take exactly their size), 80..128 in steps of 16 (4),
// then four classes per doubling up to 8 KiB (160, 192, 224, 256, 320, ... 7168, 8192):
// 35 classes, worst-case internal fragmentation 25% above 128 bytes, 12.5% on average.
// Objects larger than kMaxSmallSize are large objects (jemalloc), see
// heap/large_object_space.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace shoal::internal {

inline constexpr size_t kGranule = 8;
inline constexpr size_t kMaxSmallSize = 8192;
inline constexpr size_t kNumSizeClasses = 35;

constexpr std::array<uint32_t, kNumSizeClasses> make_class_sizes() {
  std::array<uint32_t, kNumSizeClasses> sizes{};
  size_t i = 0;
  for (uint32_t s = 16; s <= 64; s += 8) sizes[i++] = s;
  for (uint32_t s = 80; s <= 128; s += 16) sizes[i++] = s;
  for (uint32_t base = 128; base < kMaxSmallSize; base *= 2)
    for (uint32_t q = 1; q <= 4; ++q) sizes[i++] = base + q * (base / 4);
  return sizes;
}
inline constexpr std::array<uint32_t, kNumSizeClasses> kClassSize = make_class_sizes();

constexpr std::array<uint8_t, kMaxSmallSize / kGranule + 1> make_size_to_class() {
  std::array<uint8_t, kMaxSmallSize / kGranule + 1> table{};
  size_t cls = 0;
  for (size_t g = 0; g < table.size(); ++g) {
    while (kClassSize[cls] < g * kGranule) ++cls;
    table[g] = static_cast<uint8_t>(cls);
  }
  return table;
}
// Indexed by ceil(bytes / kGranule).
inline constexpr std::array<uint8_t, kMaxSmallSize / kGranule + 1> kSizeToClass =
    make_size_to_class();

constexpr size_t size_class_of(size_t bytes) { return kSizeToClass[(bytes + kGranule - 1) / kGranule]; }

static_assert(kClassSize[kNumSizeClasses - 1] == kMaxSmallSize);
static_assert(size_class_of(16) == 0 && size_class_of(17) == 1 && size_class_of(8192) == kNumSizeClasses - 1);

}  // namespace shoal::internal
