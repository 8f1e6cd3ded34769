#include <gtest/gtest.h>

#include "shoal/internal/size_classes.h"

namespace shoal::internal {
namespace {

TEST(SizeClasses, SmallestClassThatFits) {
  for (size_t bytes = 1; bytes <= kMaxSmallSize; ++bytes) {
    const size_t c = size_class_of(bytes);
    ASSERT_LT(c, kNumSizeClasses);
    EXPECT_GE(kClassSize[c], bytes);
    if (c > 0) {
      EXPECT_LT(kClassSize[c - 1], bytes);
    }
  }
}

TEST(SizeClasses, KnownBoundaries) {
  EXPECT_EQ(kClassSize[size_class_of(16)], 16u);
  // Up to 64 bytes in steps of one granule (8): a header and one to seven slots take
  // exactly their size (a cons cell or two-child node is 24 bytes, not 32).
  EXPECT_EQ(kClassSize[size_class_of(17)], 24u);
  EXPECT_EQ(kClassSize[size_class_of(24)], 24u);
  EXPECT_EQ(kClassSize[size_class_of(25)], 32u);
  EXPECT_EQ(kClassSize[size_class_of(40)], 40u);
  EXPECT_EQ(kClassSize[size_class_of(57)], 64u);
  EXPECT_EQ(kClassSize[size_class_of(65)], 80u);
  EXPECT_EQ(kClassSize[size_class_of(129)], 160u);
  EXPECT_EQ(kClassSize[size_class_of(1025)], 1280u);
  EXPECT_EQ(kClassSize[size_class_of(8192)], 8192u);
}

TEST(SizeClasses, EveryClassIsAWholeNumberOfGranulesAndHoldsAFreeRunHeader) {
  for (size_t c = 0; c < kNumSizeClasses; ++c) {
    EXPECT_EQ(kClassSize[c] % kGranule, 0u) << kClassSize[c];
    EXPECT_GE(kClassSize[c], 16u) << "a free run's first cell holds its 16-byte FreeRun";
  }
}

TEST(SizeClasses, FragmentationBounded) {
  for (size_t bytes = 129; bytes <= kMaxSmallSize; ++bytes)
    EXPECT_LE(static_cast<double>(kClassSize[size_class_of(bytes)]) / bytes, 1.25 + 1e-9) << bytes;
}

}  // namespace
}  // namespace shoal::internal
