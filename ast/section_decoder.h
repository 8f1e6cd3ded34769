// Decoding one module section of a corpus file (docs/ast_format.md) into any
// representation: the decoder reads and checks the bytes, a Builder makes the objects.
//
// Sections are self-contained: any thread may decode any section of an open CorpusFile,
// in any order, concurrently with others. Nodes come in post-order, so every child a
// node refers to has been built before it; the builder keeps a table from node index to
// node (a root for garbage-collected builders) and the last node is the module's root.
//
// Checked here, each failure a FormatError naming the offset and the expectation: the
// section's CRC-32 and its magic and node count against the index entry, every read
// inside the section, kind and string ids in range, child references pointing strictly
// backwards at a node no other node has taken as its child, every node but the root
// taken as a child (sections are trees), list lengths that fit the remaining bytes, lists nested at most
// kMaxListDepth deep, known tags, and the section ending exactly where the index says.
// A builder sees only checked values; on an error the decoder stops at once and the
// builder's partial module is dropped (nothing of it was handed out: the root is returned
// only at the end).
//
// The Builder (B) provides, with B::Val a small handle to a value:
//   void begin_module(uint32_t node_count);
//   Val new_node(uint32_t kind, uint32_t field_count, int64_t line);   // fields = none
//   void set_field(Val node, uint32_t field, Val value);
//   Val new_list(uint64_t length);                                      // elements = none
//   void set_element(Val list, uint64_t index, Val value);
//   void record_node(uint32_t index, Val node);   Val child(uint32_t index);
//   Val none(); Val str(uint32_t id); Val int64(int64_t); Val bigint(uint32_t id);
//   Val real(double); Val boolean(bool); Val bytes(std::span<const uint8_t>);
//   Val complex(double re, double im); Val ellipsis();
//   Val end_module(Val root);
// and optionally void abandon_module(), called when the module fails to decode.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ast/corpus_file.h"

namespace shoal::ast {

inline constexpr int kMaxListDepth = 32;

namespace detail {

inline std::string hex32(uint32_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s += digits[(v >> (4 * i)) & 0xf];
  return s;
}

// Per thread: which nodes of the module being decoded already have a parent.
inline std::vector<uint8_t>& parent_seen() {
  thread_local std::vector<uint8_t> seen;
  return seen;
}

// What one section's lists may still claim: every element takes at least one byte of the
// section, so the elements of all its lists together cannot outnumber its bytes. Checked
// before a list is allocated, so a corrupt length cannot make the loader allocate more
// than about 8 bytes per byte of the file.
struct ListBudget {
  uint64_t left;
};

template <class B>
typename B::Val read_value(ByteReader& r, B& b, const CorpusFile& f, uint32_t node_index, int depth, ListBudget& budget) {
  const uint64_t at = r.pos();
  const uint8_t tag = r.u8("a value tag");
  switch (tag) {
    case kTagNone:
      return b.none();
    case kTagNode: {
      const uint64_t child = r.varint("a child node index");
      if (child >= node_index)
        r.fail_at(at + 1, "a child index below " + std::to_string(node_index) + " (references point backwards)",
                  std::to_string(child));
      uint8_t& seen = parent_seen()[child];
      if (seen) r.fail_at(at + 1, "a node without a parent yet (each node is the child of one node)", "node " + std::to_string(child) + " again");
      seen = 1;
      return b.child(static_cast<uint32_t>(child));
    }
    case kTagList: {
      if (depth >= kMaxListDepth) r.fail_at(at, "lists nested at most " + std::to_string(kMaxListDepth) + " deep");
      const uint64_t len_at = r.pos();
      const uint64_t n = r.varint("a list length");
      if (n > r.end() - r.pos() || n > budget.left)
        r.fail_at(len_at,
                  "a list length that fits the section (" + std::to_string(std::min<uint64_t>(r.end() - r.pos(), budget.left)) +
                      " more elements at most)",
                  std::to_string(n));
      budget.left -= n;
      typename B::Val list = b.new_list(n);
      for (uint64_t i = 0; i < n; ++i) b.set_element(list, i, read_value(r, b, f, node_index, depth + 1, budget));
      return list;
    }
    case kTagString:
    case kTagBigInt: {
      const uint64_t id_at = r.pos();
      const uint64_t id = r.varint("a string id");
      if (id >= f.string_count())
        r.fail_at(id_at, "a string id below " + std::to_string(f.string_count()), std::to_string(id));
      return tag == kTagString ? b.str(static_cast<uint32_t>(id)) : b.bigint(static_cast<uint32_t>(id));
    }
    case kTagInt: {
      const uint64_t z = r.varint("a zigzag integer");
      return b.int64(static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1));
    }
    case kTagFloat:
      return b.real(r.f64("an 8-byte float"));
    case kTagTrue:
      return b.boolean(true);
    case kTagFalse:
      return b.boolean(false);
    case kTagBytes: {
      const uint64_t n = r.varint("a bytes length");
      return b.bytes(r.bytes(n, "the bytes of a bytes constant"));
    }
    case kTagComplex: {
      const double re = r.f64("the real part of a complex constant");
      const double im = r.f64("the imaginary part of a complex constant");
      return b.complex(re, im);
    }
    case kTagEllipsis:
      return b.ellipsis();
    default:
      r.fail_at(at, "a value tag 0..11", "tag " + std::to_string(tag));
  }
}

}  // namespace detail

namespace detail {
template <class B>
typename B::Val decode_module_unguarded(const CorpusFile& f, size_t m, B& b, bool check_crc) {
  const ModuleEntry& e = f.module(m);
  const uint8_t* data = f.bytes().data();
  if (check_crc) {
    const uint32_t crc = crc32(f.bytes().subspan(e.offset, e.length));
    if (crc != e.crc)
      throw FormatError(e.offset, "a section whose CRC-32 is " + detail::hex32(e.crc) + " (module " + std::string(e.name) + ")",
                        "CRC-32 " + detail::hex32(crc));
  }
  ByteReader r(data, e.offset, e.offset + e.length);
  const auto magic = r.bytes(4, "the section magic \"MODL\"");
  if (std::memcmp(magic.data(), "MODL", 4) != 0) r.fail_at(e.offset, "the section magic \"MODL\"", "other bytes");
  const uint64_t count_at = r.pos();
  const uint32_t count = r.u32("the section's node count");
  if (count != e.node_count)
    r.fail_at(count_at, "the node count of the index entry, " + std::to_string(e.node_count), std::to_string(count));
  if (count == 0) r.fail_at(count_at, "at least one node (the module's root)", "0");
  if (count > r.end() - r.pos()) r.fail_at(count_at, "a node count that fits the section", std::to_string(count));
  detail::parent_seen().assign(count, 0);
  detail::ListBudget budget{e.length};
  b.begin_module(count);
  typename B::Val last{};
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t kind_at = r.pos();
    const uint64_t kind = r.varint("a node kind");
    if (kind >= f.kind_count())
      r.fail_at(kind_at, "a node kind below " + std::to_string(f.kind_count()), std::to_string(kind));
    const int64_t line = static_cast<int64_t>(r.varint("a line number"));
    const KindInfo& k = f.kind(kind);
    const uint32_t nfields = static_cast<uint32_t>(k.fields.size());
    typename B::Val node = b.new_node(static_cast<uint32_t>(kind), nfields, line);
    for (uint32_t j = 0; j < nfields; ++j) b.set_field(node, j, detail::read_value(r, b, f, i, 0, budget));
    b.record_node(i, node);
    last = node;
  }
  if (r.pos() != r.end()) r.fail("the end of the section (module " + std::string(e.name) + ")", "more bytes");
  // A tree: every node but the root (the last) is some node's child.
  const std::vector<uint8_t>& seen = detail::parent_seen();
  for (uint32_t i = 0; i + 1 < count; ++i)
    if (!seen[i])
      r.fail_at(e.offset, "a tree: every node but the last is the child of a node (module " + std::string(e.name) + ")",
                "node " + std::to_string(i) + " without a parent");
  return b.end_module(last);
}

}  // namespace detail

// Decodes module `m` of `f` through `b` and returns its root. Throws FormatError; a
// builder with an abandon_module() (one that must free what it built) hears of it first.
template <class B>
typename B::Val decode_module(const CorpusFile& f, size_t m, B& b, bool check_crc = true) {
  if constexpr (requires { b.abandon_module(); }) {
    try {
      return detail::decode_module_unguarded(f, m, b, check_crc);
    } catch (...) {
      b.abandon_module();
      throw;
    }
  } else {
    return detail::decode_module_unguarded(f, m, b, check_crc);
  }
}

// A builder that builds nothing: per-kind node counts straight from the file (the
// reference the benchmark checks every forest against).
class CountingBuilder {
 public:
  using Val = uint32_t;
  explicit CountingBuilder(size_t kinds) : per_kind_(kinds, 0) {}
  void begin_module(uint32_t) {}
  Val new_node(uint32_t kind, uint32_t, int64_t) {
    ++per_kind_[kind];
    return 0;
  }
  void set_field(Val, uint32_t, Val) {}
  Val new_list(uint64_t) { return 0; }
  void set_element(Val, uint64_t, Val) {}
  void record_node(uint32_t, Val) {}
  Val child(uint32_t) { return 0; }
  Val none() { return 0; }
  Val str(uint32_t) { return 0; }
  Val int64(int64_t) { return 0; }
  Val bigint(uint32_t) { return 0; }
  Val real(double) { return 0; }
  Val boolean(bool) { return 0; }
  Val bytes(std::span<const uint8_t>) { return 0; }
  Val complex(double, double) { return 0; }
  Val ellipsis() { return 0; }
  Val end_module(Val root) { return root; }
  const std::vector<uint64_t>& per_kind() const { return per_kind_; }

 private:
  std::vector<uint64_t> per_kind_;
};

}  // namespace shoal::ast
