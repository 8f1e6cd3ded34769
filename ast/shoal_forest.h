// AST forests as Shoal objects, the way a VM prototype would load them.
//
// Node classes are defined at run time from the corpus's kind table (one kFixed class
// per kind, "ast.<Kind>", payload [int64 line][one reference slot per field]), as a VM
// defines classes while it loads code; the same kind signature always gets the same
// class in a process. Field values:
//   None -> null; a child -> the node; a list -> a RefArray; a string -> a Shoal String
//   (interned: one per string of the file, created by whichever thread needs it first);
//   an int -> a small integer, or an AstInt box outside 63 bits; a big int -> AstBigInt
//   (its decimal digits); float, complex, True/False, Ellipsis -> AstFloat, AstComplex,
//   AstBool, AstEllipsis; bytes -> a ByteArray.
// The constant boxes are deeply immutable (shareable); nodes, lists and byte arrays are
// ordinary mutable objects owned by the isolate that built them (none outside isolates).
//
// ShoalBuilder is a section_decoder.h builder. It must live on the stack of the thread
// that uses it, which must be attached to the heap and running; several builders (one
// per thread) may share one NodeClasses and one StringTable.
#pragma once

#include <cstdint>
#include <vector>

#include "ast/corpus_file.h"
#include "ast/digest.h"
#include "shoal/shoal.h"

namespace shoal::ast {

struct AstInt {
  int64_t value = 0;
  static constexpr const char* kName = "ast.Int";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
};
struct AstFloat {
  double value = 0;
  static constexpr const char* kName = "ast.Float";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
};
struct AstComplex {
  double re = 0, im = 0;
  static constexpr const char* kName = "ast.Complex";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
};
struct AstBool {
  int64_t value = 0;
  static constexpr const char* kName = "ast.Bool";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
};
struct AstEllipsis {
  int64_t unused = 0;
  static constexpr const char* kName = "ast.Ellipsis";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
};
struct AstBigInt {
  Member<String> digits;
  static constexpr const char* kName = "ast.BigInt";
  static constexpr uint64_t kTags = header::kDeeplyImmutable;
  static constexpr auto kRefs = refs(&AstBigInt::digits);
};

// The node classes of one corpus file's kinds. Any thread; immutable once built.
class NodeClasses {
 public:
  explicit NodeClasses(const CorpusFile& f);
  ClassId class_of(uint32_t kind) const { return ids_[kind]; }
  uint64_t header_word(uint32_t kind) const { return headers_[kind]; }
  size_t object_bytes(uint32_t kind) const { return bytes_[kind]; }
  // The kind of a node class of this file, or -1 for any other class.
  int kind_of(ClassId id) const { return id < kind_by_class_.size() ? kind_by_class_[id] : -1; }
  size_t kind_count() const { return ids_.size(); }

  // Payload layout of a node: the line, then the field slots.
  static int64_t line(const Object* node) { return *static_cast<const int64_t*>(node->payload()); }
  static const Slot* fields(const Object* node) {
    return reinterpret_cast<const Slot*>(static_cast<const char*>(node->payload()) + 8);
  }
  static Slot* fields(Object* node) { return reinterpret_cast<Slot*>(static_cast<char*>(node->payload()) + 8); }

 private:
  std::vector<ClassId> ids_;
  std::vector<uint64_t> headers_;
  std::vector<uint32_t> bytes_;
  std::vector<int> kind_by_class_;
};

// The file's strings as Shoal Strings, each created once, on first use, by any thread
// (a compare-and-swap publishes it). Create it outside any isolate (or in the shared
// isolate): the table is then unowned and every isolate may fill it. Its strings live as
// long as the table.
class StringTable {
 public:
  StringTable(Heap& heap, const CorpusFile& f);
  Value get(uint32_t id) {
    const Value v = table_->get(id);
    return v.is_null() ? create(id) : v;
  }

 private:
  Value create(uint32_t id);
  const CorpusFile& file_;
  Persistent<RefArray> table_;
};

class ShoalBuilder {
 public:
  using Val = Value;
  ShoalBuilder(Heap& heap, const CorpusFile& f, const NodeClasses& classes, StringTable& strings);

  void begin_module(uint32_t node_count);
  Value new_node(uint32_t kind, uint32_t, int64_t line) {
    Object* o = allocate_raw(classes_.object_bytes(kind), classes_.header_word(kind));
    *static_cast<int64_t*>(o->payload()) = line;
    return Value::from_object(o);
  }
  void set_field(Value node, uint32_t field, Value v) {
    if (!v.is_null()) write(node.as_object(), NodeClasses::fields(node.as_object())[field], v);
  }
  Value new_list(uint64_t n) { return RefArray::create(n).value(); }
  void set_element(Value list, uint64_t i, Value v) {
    if (!v.is_null()) Ref<RefArray>::from_value(list)->set(i, v);
  }
  void record_node(uint32_t index, Value node) { table_->set(index, node); }
  Value child(uint32_t index) { return table_->get(index); }
  Value none() { return Value::null(); }
  Value str(uint32_t id) { return strings_.get(id); }
  Value int64(int64_t v);
  Value bigint(uint32_t id);
  Value real(double v) { return make<AstFloat>(AstFloat{v}).value(); }
  Value boolean(bool v) { return make<AstBool>(AstBool{v ? 1 : 0}).value(); }
  Value bytes(std::span<const uint8_t> b);
  Value complex(double re, double im) { return make<AstComplex>(AstComplex{re, im}).value(); }
  Value ellipsis() { return make<AstEllipsis>().value(); }
  Value end_module(Value root) { return root; }

 private:
  Heap& heap_;
  const NodeClasses& classes_;
  StringTable& strings_;
  Persistent<RefArray> keep_;  // the node table below, as a root
  Ref<RefArray> table_;
};

// Loads module m of f into Shoal objects with `b`; returns the root node.
Value load_module(const CorpusFile& f, size_t m, ShoalBuilder& b);

// The digest (ast/digest.h) of a forest: `forest` holds one module root per element, in
// module order. The caller must be attached and running; the walk does not allocate.
ForestDigest digest_forest(Ref<RefArray> forest, const NodeClasses& classes);
// The same for one tree.
void digest_tree(Value root, const NodeClasses& classes, DigestSink& sink);

}  // namespace shoal::ast
