// The check every forest must pass: node count per kind and one 64-bit hash over the
// whole forest in a canonical order (module by module, each tree depth-first, pre-order:
// every node's kind and line, every field's value - identifiers, strings, numbers,
// bytes, list lengths and None included). Two forests with equal digests hold the same
// trees with the same constants, whatever their representation (Shoal objects, Boehm GC
// nodes, new/delete nodes, a deep copy, a deserialized message).
//
// The walk is iterative (an explicit stack), so degenerate trees thousands of levels
// deep do not overflow the thread's stack.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::ast {

struct ForestDigest {
  uint64_t modules = 0;
  uint64_t nodes = 0;
  uint64_t hash = 0;
  std::vector<uint64_t> per_kind;
  bool operator==(const ForestDigest&) const = default;
};

// Receives the canonical event stream and folds it into a digest.
class DigestSink {
 public:
  explicit DigestSink(size_t kinds) { d_.per_kind.assign(kinds, 0); }
  void module() {
    ++d_.modules;
    mix(0x6d6f64756c65ull);
  }
  void node(uint32_t kind, int64_t line) {
    ++d_.nodes;
    if (kind < d_.per_kind.size()) ++d_.per_kind[kind];
    mix(1);
    mix(kind);
    mix(static_cast<uint64_t>(line));
  }
  void none() { mix(2); }
  void list(uint64_t n) {
    mix(3);
    mix(n);
  }
  void str(std::string_view s) {
    mix(4);
    bytes_of(s.data(), s.size());
  }
  void int64(int64_t v) {
    mix(5);
    mix(static_cast<uint64_t>(v));
  }
  void bigint(std::string_view digits) {
    mix(6);
    bytes_of(digits.data(), digits.size());
  }
  void real(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    mix(7);
    mix(bits);
  }
  void boolean(bool v) { mix(v ? 8 : 9); }
  void bytes(std::span<const uint8_t> b) {
    mix(10);
    bytes_of(b.data(), b.size());
  }
  void complex(double re, double im) {
    mix(11);
    real(re);
    real(im);
  }
  void ellipsis() { mix(12); }
  ForestDigest finish() {
    ForestDigest out = d_;
    uint64_t h = state_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    out.hash = h;
    return out;
  }

 private:
  void mix(uint64_t x) {
    state_ = ((state_ << 5) | (state_ >> 59)) ^ x;
    state_ *= 0x9E3779B97F4A7C15ull;
  }
  void bytes_of(const void* p, size_t n) {
    mix(n);
    const auto* c = static_cast<const uint8_t*>(p);
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, c, 8);
      mix(w);
      c += 8;
      n -= 8;
    }
    uint64_t w = 0;
    std::memcpy(&w, c, n);
    mix(w);
  }
  ForestDigest d_;
  uint64_t state_ = 0x5348'4f41'4c41'5354ull;
};

// Walks one tree: `emit(v, sink, stack)` reports v's own event and pushes v's children
// (fields or elements) in reverse order, so they pop in order.
template <class Val, class Emit>
void digest_tree(Val root, DigestSink& sink, std::vector<Val>& stack, Emit&& emit) {
  sink.module();
  stack.clear();
  stack.push_back(root);
  while (!stack.empty()) {
    const Val v = stack.back();
    stack.pop_back();
    emit(v, sink, stack);
  }
}

// "kind Name: 12 here, 13 there" for the first kind whose counts differ, or the hash.
inline std::string describe_mismatch(const ForestDigest& got, const ForestDigest& want,
                                     const std::vector<std::string>& kind_names) {
  if (got.modules != want.modules)
    return "modules: " + std::to_string(got.modules) + " instead of " + std::to_string(want.modules);
  if (got.nodes != want.nodes) return "nodes: " + std::to_string(got.nodes) + " instead of " + std::to_string(want.nodes);
  for (size_t k = 0; k < want.per_kind.size() && k < got.per_kind.size(); ++k)
    if (got.per_kind[k] != want.per_kind[k])
      return "kind " + (k < kind_names.size() ? kind_names[k] : std::to_string(k)) + ": " +
             std::to_string(got.per_kind[k]) + " nodes instead of " + std::to_string(want.per_kind[k]);
  if (got.hash != want.hash) return "identifier/constant hash differs";
  return {};
}

}  // namespace shoal::ast
