// Size-class tables live in include/shoal/internal/size_classes.h (constexpr, needed by
// the inline fast path); this file holds their compile-time self-checks.
#include "shoal/internal/size_classes.h"

namespace shoal::internal {

constexpr bool classes_are_sane() {
  for (size_t i = 0; i < kNumSizeClasses; ++i) {
    if (kClassSize[i] % kGranule != 0) return false;
    if (i > 0 && kClassSize[i] <= kClassSize[i - 1]) return false;
  }
  for (size_t bytes = 1; bytes <= kMaxSmallSize; ++bytes) {
    const size_t c = size_class_of(bytes);
    if (kClassSize[c] < bytes) return false;                 // fits
    if (c > 0 && kClassSize[c - 1] >= bytes) return false;   // smallest that fits
  }
  return true;
}
static_assert(classes_are_sane());

}  // namespace shoal::internal
