// PageBitmap searches used by the sweeper, checked against a plain bit-by-bit search on
// random bitmaps (runs of set bits of every length, at every cell stride).
#include <memory>
#include <random>

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

TEST(PageBitmapTest, SearchesAgreeWithABitByBitScan) {
  std::mt19937_64 rng(42);
  for (size_t step : {1, 2, 4, 8, 16, 32, 64}) {
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

}  // namespace
}  // namespace shoal::internal
