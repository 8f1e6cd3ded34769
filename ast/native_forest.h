// AST forests as plain C++ nodes, for the benchmark's peers: the same trees built with
// an allocation policy - Boehm GC (GC_MALLOC) or new/delete on jemalloc - so the
// comparison with Shoal is about the memory manager, not about the representation.
//
// A value is one word (Word): 0 for None, an odd word for a 63-bit integer, else a
// pointer to an object that starts with a NativeHeader saying what it is. Strings are
// interned per file (one NativeString per string of the file, created by whichever
// thread needs it first and published with a compare-and-swap), as in the Shoal forest.
//
// Policy (P) provides: static void* alloc(size_t) (zeroed, may hold pointers),
// static void* alloc_atomic(size_t) (no pointers inside), static void free(void*, size_t)
// (no-op for a collector), static Word* alloc_table(size_t n) / free_table(Word*, n)
// for the decoder's node table (a root for a collector), and kFreeFailedModules: true when
// the builder must remember the current module's allocations and free them if the module
// fails to decode (a corrupt section leaks nothing). The benchmark's new/delete peer
// (BenchNewDeletePolicy) does without: it loads only sections checked beforehand, and
// pays nothing Shoal does not.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "ast/corpus_file.h"
#include "ast/digest.h"
#include "ast/section_decoder.h"

namespace shoal::ast::native {

using Word = uint64_t;

enum class Type : uint8_t { kNode, kList, kString, kInt, kBigInt, kFloat, kComplex, kBool, kBytes, kEllipsis };

// One word, as Shoal's object header: the same node sizes in every representation.
struct NativeHeader {
  Type type : 8;
  uint32_t kind : 24;  // nodes: the kind
  uint32_t count;      // node: field count; list: length; string/bytes: byte length
};
static_assert(sizeof(NativeHeader) == 8);
// Variable parts follow the fixed part (fields(), elements(), data()).
struct NativeNode {
  NativeHeader h;
  int64_t line;
  Word* fields() { return reinterpret_cast<Word*>(this + 1); }
  const Word* fields() const { return reinterpret_cast<const Word*>(this + 1); }
};
struct NativeList {
  NativeHeader h;
  Word* elements() { return reinterpret_cast<Word*>(this + 1); }
  const Word* elements() const { return reinterpret_cast<const Word*>(this + 1); }
};
struct NativeBlob {  // string, big int digits, bytes
  NativeHeader h;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};
struct NativeBox {  // int, float, bool, ellipsis, big int (a = NativeBlob*); complex: b too
  NativeHeader h;
  uint64_t a, b;
  static size_t bytes(Type t) { return t == Type::kComplex ? sizeof(NativeBox) : sizeof(NativeBox) - 8; }
};

inline Word word_of(const void* p) { return reinterpret_cast<Word>(p); }
inline const NativeHeader* object_of(Word w) { return reinterpret_cast<const NativeHeader*>(w); }
inline bool fits_small(int64_t v) { return v >= -(int64_t{1} << 62) && v < (int64_t{1} << 62); }

template <class P>
class StringTable {
 public:
  explicit StringTable(const CorpusFile& f) : file_(f), n_(f.string_count()), table_(P::alloc_table(n_)) {}
  ~StringTable() {
    for (size_t i = 0; i < n_; ++i)
      if (table_[i]) {
        auto* s = reinterpret_cast<NativeBlob*>(table_[i]);
        P::free(s, sizeof(NativeBlob) + s->h.count + 1);
      }
    P::free_table(table_, n_);
  }
  StringTable(const StringTable&) = delete;
  StringTable& operator=(const StringTable&) = delete;
  Word get(uint32_t id) {
    std::atomic_ref<Word> slot(table_[id]);
    const Word w = slot.load(std::memory_order_acquire);
    return w ? w : create(id, slot);
  }

 private:
  Word create(uint32_t id, std::atomic_ref<Word> slot) {
    const std::string_view s = file_.string(id);
    auto* b = static_cast<NativeBlob*>(P::alloc_atomic(sizeof(NativeBlob) + s.size() + 1));
    b->h = {Type::kString, 0, static_cast<uint32_t>(s.size())};
    std::memcpy(b->data(), s.data(), s.size());
    b->data()[s.size()] = 0;
    Word expected = 0;
    if (slot.compare_exchange_strong(expected, word_of(b), std::memory_order_acq_rel)) return word_of(b);
    P::free(b, sizeof(NativeBlob) + s.size() + 1);
    return expected;
  }
  const CorpusFile& file_;
  size_t n_;
  Word* table_;
};

template <class P>
class Builder {
 public:
  using Val = Word;
  Builder(const CorpusFile& f, StringTable<P>& strings) : file_(f), strings_(strings) {}
  ~Builder() {
    if (table_) P::free_table(table_, table_size_);
  }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  void begin_module(uint32_t n) {
    if constexpr (P::kFreeFailedModules) module_allocations_.clear();
    if (table_size_ < n) {
      if (table_) P::free_table(table_, table_size_);
      table_size_ = std::max<size_t>(n, table_size_ * 2);
      table_ = P::alloc_table(table_size_);
    }
  }
  Word new_node(uint32_t kind, uint32_t nfields, int64_t line) {
    auto* n = static_cast<NativeNode*>(alloc(sizeof(NativeNode) + 8 * nfields, false));
    n->h = {Type::kNode, kind, nfields};
    n->line = line;
    return word_of(n);
  }
  void set_field(Word node, uint32_t i, Word v) { reinterpret_cast<NativeNode*>(node)->fields()[i] = v; }
  Word new_list(uint64_t n) {
    auto* l = static_cast<NativeList*>(alloc(sizeof(NativeList) + 8 * n, false));
    l->h = {Type::kList, 0, static_cast<uint32_t>(n)};
    return word_of(l);
  }
  void set_element(Word list, uint64_t i, Word v) { reinterpret_cast<NativeList*>(list)->elements()[i] = v; }
  void record_node(uint32_t i, Word n) { table_[i] = n; }
  Word child(uint32_t i) { return table_[i]; }  // the decoder checks each node has one parent
  Word none() { return 0; }
  Word str(uint32_t id) { return strings_.get(id); }
  Word int64(int64_t v) {
    if (fits_small(v)) return (static_cast<uint64_t>(v) << 1) | 1;
    return box(Type::kInt, static_cast<uint64_t>(v), 0);
  }
  Word bigint(uint32_t id) { return box(Type::kBigInt, strings_.get(id), 0); }
  Word real(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    return box(Type::kFloat, bits, 0);
  }
  Word boolean(bool v) { return box(Type::kBool, v ? 1 : 0, 0); }
  Word bytes(std::span<const uint8_t> b) {
    auto* blob = static_cast<NativeBlob*>(alloc(sizeof(NativeBlob) + b.size(), true));
    blob->h = {Type::kBytes, 0, static_cast<uint32_t>(b.size())};
    if (!b.empty()) std::memcpy(blob->data(), b.data(), b.size());
    return word_of(blob);
  }
  Word complex(double re, double im) {
    uint64_t a, c;
    std::memcpy(&a, &re, 8);
    std::memcpy(&c, &im, 8);
    return box(Type::kComplex, a, c);
  }
  Word ellipsis() { return box(Type::kEllipsis, 0, 0); }
  Word end_module(Word root) {
    if constexpr (P::kFreeFailedModules) module_allocations_.clear();  // the caller owns the tree now
    return root;
  }
  void abandon_module() {
    if constexpr (P::kFreeFailedModules) {
      for (const auto& [p, size] : module_allocations_) P::free(p, size);
      module_allocations_.clear();
    }
  }

 private:
  void* alloc(size_t bytes, bool atomic) {
    void* p = atomic ? P::alloc_atomic(bytes) : P::alloc(bytes);
    if constexpr (P::kFreeFailedModules) module_allocations_.emplace_back(p, bytes);
    return p;
  }
  Word box(Type t, uint64_t a, uint64_t b) {
    // A big int's box points at an interned string: not atomic memory for a collector.
    auto* x = static_cast<NativeBox*>(alloc(NativeBox::bytes(t), t != Type::kBigInt));
    x->h = {t, 0, 0};
    x->a = a;
    if (t == Type::kComplex) x->b = b;
    return word_of(x);
  }
  const CorpusFile& file_;
  StringTable<P>& strings_;
  Word* table_ = nullptr;
  size_t table_size_ = 0;
  std::vector<std::pair<void*, size_t>> module_allocations_;  // kFreeFailedModules only
};

// Loads module m of f; returns its root.
template <class P>
Word load_module(const CorpusFile& f, size_t m, Builder<P>& b) {
  return decode_module(f, m, b);
}

// Frees a tree built with policy P (strings belong to the StringTable). Iterative.
template <class P>
void free_tree(Word root, std::vector<Word>& stack) {
  stack.clear();
  stack.push_back(root);
  while (!stack.empty()) {
    const Word w = stack.back();
    stack.pop_back();
    if (w == 0 || (w & 1)) continue;
    auto* h = const_cast<NativeHeader*>(object_of(w));
    switch (h->type) {
      case Type::kNode: {
        auto* n = reinterpret_cast<NativeNode*>(h);
        for (uint32_t i = 0; i < h->count; ++i) stack.push_back(n->fields()[i]);
        P::free(n, sizeof(NativeNode) + 8 * h->count);
        break;
      }
      case Type::kList: {
        auto* l = reinterpret_cast<NativeList*>(h);
        for (uint32_t i = 0; i < h->count; ++i) stack.push_back(l->elements()[i]);
        P::free(l, sizeof(NativeList) + 8 * h->count);
        break;
      }
      case Type::kString:
        break;
      case Type::kBytes:
        P::free(h, sizeof(NativeBlob) + h->count);
        break;
      default:
        P::free(h, NativeBox::bytes(h->type));
        break;
    }
  }
}

inline void digest_tree(Word root, DigestSink& sink, std::vector<Word>& stack) {
  ast::digest_tree(root, sink, stack, [](Word w, DigestSink& s, std::vector<Word>& st) {
    if (w == 0) return s.none();
    if (w & 1) return s.int64(static_cast<int64_t>(w) >> 1);
    const NativeHeader* h = object_of(w);
    switch (h->type) {
      case Type::kNode: {
        const auto* n = reinterpret_cast<const NativeNode*>(h);
        s.node(h->kind, n->line);
        for (uint32_t i = h->count; i-- > 0;) st.push_back(n->fields()[i]);
        return;
      }
      case Type::kList: {
        const auto* l = reinterpret_cast<const NativeList*>(h);
        s.list(h->count);
        for (uint32_t i = h->count; i-- > 0;) st.push_back(l->elements()[i]);
        return;
      }
      case Type::kString:
        return s.str({reinterpret_cast<const NativeBlob*>(h)->data(), h->count});
      case Type::kBytes:
        return s.bytes({reinterpret_cast<const uint8_t*>(reinterpret_cast<const NativeBlob*>(h)->data()), h->count});
      case Type::kInt:
        return s.int64(static_cast<int64_t>(reinterpret_cast<const NativeBox*>(h)->a));
      case Type::kBigInt: {
        const auto* d = reinterpret_cast<const NativeBlob*>(reinterpret_cast<const NativeBox*>(h)->a);
        return s.bigint({d->data(), d->h.count});
      }
      case Type::kFloat: {
        double v;
        std::memcpy(&v, &reinterpret_cast<const NativeBox*>(h)->a, 8);
        return s.real(v);
      }
      case Type::kComplex: {
        double re, im;
        std::memcpy(&re, &reinterpret_cast<const NativeBox*>(h)->a, 8);
        std::memcpy(&im, &reinterpret_cast<const NativeBox*>(h)->b, 8);
        return s.complex(re, im);
      }
      case Type::kBool:
        return s.boolean(reinterpret_cast<const NativeBox*>(h)->a != 0);
      case Type::kEllipsis:
        return s.ellipsis();
    }
  });
}

// new/delete on the process's malloc (jemalloc in every Shoal program).
struct NewDeletePolicy {
  static constexpr bool kFreeFailedModules = true;
  static void* alloc(size_t n) { return std::memset(::operator new(n), 0, n); }
  static void* alloc_atomic(size_t n) { return ::operator new(n); }
  static void free(void* p, [[maybe_unused]] size_t n) {
#if defined(__cpp_sized_deallocation)
    ::operator delete(p, n);  // sized: jemalloc's sdallocx
#else
    ::operator delete(p);     // clang without -fsized-deallocation
#endif
  }
  static Word* alloc_table(size_t n) { return static_cast<Word*>(std::calloc(n, sizeof(Word))); }
  static void free_table(Word* t, size_t) { std::free(t); }
};

// The same without the failed-module bookkeeping, for sections known to be sound.
struct BenchNewDeletePolicy : NewDeletePolicy {
  static constexpr bool kFreeFailedModules = false;
};

}  // namespace shoal::ast::native
