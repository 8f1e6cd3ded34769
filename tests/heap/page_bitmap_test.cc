// PageBitmap's strided operations - the sweeper's searches and the TLAB flush's bulk set,
// which work a 64-bit word at a time - checked against plain bit-by-bit versions on
// random bitmaps (runs of set bits of every length, at every cell stride of every size
// class, and at strides that are not a class's).
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "heap/page.h"

namespace shoal::internal {
namespace {

size_t naive_next_set(const PageBitmap& b, size_t g) {
  for (; g < kGranulesPerPage; ++g)
    if (b.test(g)) return g;
  return kGranulesPerPage;
}

size_t naive_next_clear_strided(const PageBitmap& b, size_t g, size_t step) {
  for (; g < kGranulesPerPage; g += step)
    if (!b.test(g)) return g;
  return kGranulesPerPage;
}

std::vector<size_t> strides() {
  std::vector<size_t> out = {1, 4, 11, 63, 65, 100};
  for (uint32_t size : kClassSize) out.push_back(size / kGranule);
  return out;
}

TEST(PageBitmapTest, SearchesAgreeWithABitByBitScan) {
  std::mt19937_64 rng(42);
  for (size_t step : strides()) {
    for (int round = 0; round < 20; ++round) {
      auto b = std::make_unique<PageBitmap>();
      // Runs of live cells of random lengths (up to a few words), separated by gaps.
      size_t g = (rng() % 200) * step;
      while (g < kGranulesPerPage) {
        const size_t run = 1 + rng() % (round % 2 ? 300 : 5);
        for (size_t i = 0; i < run && g < kGranulesPerPage; ++i, g += step) b->test_and_set(g);
        g += step * (1 + rng() % 40);
      }
      if (round == 0) b->set_strided(0, kGranulesPerPage, step);  // a page live end to end
      for (size_t q = 0; q < kGranulesPerPage; q += step * (1 + rng() % 7)) {
        ASSERT_EQ(b->find_next(q), naive_next_set(*b, q)) << "step " << step << " at " << q;
        ASSERT_EQ(b->find_next_clear_strided(q, step), naive_next_clear_strided(*b, q, step))
            << "step " << step << " at " << q;
      }
    }
  }
}

TEST(PageBitmapTest, StridedSetsAgreeWithSettingBitByBit) {
  std::mt19937_64 rng(7);
  for (size_t step : strides()) {
    for (int round = 0; round < 40; ++round) {
      // A range anywhere (not only at multiples of the stride), from empty to the page.
      const size_t g0 = rng() % kGranulesPerPage;
      const size_t g_end = round == 0 ? kGranulesPerPage : g0 + rng() % (kGranulesPerPage - g0 + 1);
      auto expected = std::make_unique<PageBitmap>();
      auto shared = std::make_unique<PageBitmap>();
      auto single = std::make_unique<PageBitmap>();
      // Bits already set stay set.
      for (int i = 0; i < 30; ++i) {
        const size_t g = rng() % kGranulesPerPage;
        expected->test_and_set(g);
        shared->test_and_set(g);
        single->test_and_set(g);
      }
      for (size_t g = g0; g < g_end; g += step) expected->test_and_set(g);
      shared->set_strided(g0, g_end, step);
      single->set_strided_single_writer(g0, g_end, step);
      for (size_t g = 0; g < kGranulesPerPage; ++g) {
        ASSERT_EQ(shared->test(g), expected->test(g)) << "step " << step << " [" << g0 << ", " << g_end << ") bit " << g;
        ASSERT_EQ(single->test(g), expected->test(g)) << "step " << step << " [" << g0 << ", " << g_end << ") bit " << g;
      }
    }
  }
}

}  // namespace
}  // namespace shoal::internal
