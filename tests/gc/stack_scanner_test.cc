// The root scan's pre-filter (gc/stack_scanner.h, collect_words_in_ranges).
#include <cstdint>
#include <vector>

#include "gc/stack_scanner.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

using internal::collect_words_in_ranges;

TEST(StackScannerTest, KeepsExactlyTheWordsInEitherRange) {
  // Two ranges [1000, 2000) and [5000, 5008); words at and around every boundary.
  const std::vector<uintptr_t> words = {0, 999, 1000, 1001, 1999, 2000, 4999, 5000, 5007, 5008, ~uintptr_t{0}, 1500};
  std::vector<uintptr_t> out;
  const auto lo = reinterpret_cast<uintptr_t>(words.data());
  collect_words_in_ranges(lo, lo + words.size() * sizeof(uintptr_t), 1000, 2000, 5000, 5008, out);
  EXPECT_EQ(out, (std::vector<uintptr_t>{1000, 1001, 1999, 5000, 5007, 1500}));
}

TEST(StackScannerTest, AnEmptyRangeKeepsNothingAndAMisalignedStartIsRoundedUp) {
  const std::vector<uintptr_t> words = {7, 1000, 3000};
  std::vector<uintptr_t> out;
  const auto lo = reinterpret_cast<uintptr_t>(words.data());
  // Range b empty (0, 0); start one byte in: the first word is skipped, not read torn.
  collect_words_in_ranges(lo + 1, lo + words.size() * sizeof(uintptr_t), 0, 5000, 0, 0, out);
  EXPECT_EQ(out, (std::vector<uintptr_t>{1000, 3000}));
  out.clear();
  collect_words_in_ranges(lo, lo + words.size() * sizeof(uintptr_t), 0, 0, 0, 0, out);
  EXPECT_TRUE(out.empty());
}

// A reference that only a deep stack holds survives: 5,000 frames, each with a node, the
// deepest frame holding the only reference to a chain through all of them.
[[gnu::noinline]] size_t hold_deep(Heap& heap, int depth, Ref<Node> parent) {
  Ref<Node> node = make<Node>();
  node->value = 5000 - depth;  // descending from the deepest frame, as list_length_checked expects
  node.set(&Node::left, parent);
  if (depth == 0) {
    clobber_stack();
    heap.collect();
    return list_length_checked(node);
  }
  return hold_deep(heap, depth - 1, node) + static_cast<size_t>(node->value & 0);
}

TEST(StackScannerTest, ReferencesOnADeepStackSurvive) {
  HeapOptions o;
  o.verify_after_gc = true;
  o.poison_freed_memory = true;
  Heap heap(o);
  MutatorScope attach(heap);
  EXPECT_EQ(hold_deep(heap, 5000, Ref<Node>()), 5001u);
}

}  // namespace
}  // namespace shoal::test
