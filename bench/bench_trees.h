// A managed binary tree node and a bottom-up builder, shared by the benchmarks that
// churn trees on Shoal's heap (shoal_generations_bench, shoal_footprint_bench). A node
// is a header and two references plus an int: one 32-byte cell.
#pragma once

#include <cstdint>

#include "shoal/shoal.h"

namespace bench {

struct TreeNode {
  shoal::Member<TreeNode> left;
  shoal::Member<TreeNode> right;
  int64_t value = 0;
  static constexpr auto kRefs = shoal::refs(&TreeNode::left, &TreeNode::right);
  static constexpr const char* kName = "bench.TreeNode";
};

// A full tree of the given depth (2^(depth+1) - 1 nodes); each node's value is its depth.
inline shoal::Ref<TreeNode> build_tree(int depth) {
  shoal::Ref<TreeNode> n = shoal::make<TreeNode>();
  n->value = depth;
  if (depth > 0) {
    n.set(&TreeNode::left, build_tree(depth - 1));
    n.set(&TreeNode::right, build_tree(depth - 1));
  }
  return n;
}

}  // namespace bench
