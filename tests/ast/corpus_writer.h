// A corpus-file writer for tests (the format of docs/ast_format.md, as
// tools/ast_corpus/ast_corpus.py writes it), so tests can build exact files - and
// exactly corrupted ones - without Python.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ast/corpus_file.h"

namespace shoal::ast::testing {

inline void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(b);
  } while (v);
}
inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_f64(std::vector<uint8_t>& out, double d) {
  uint64_t v;
  std::memcpy(&v, &d, 8);
  put_u64(out, v);
}

// Builds one module's node bytes: node(kind, line) then the field values in order.
class SectionBuilder {
 public:
  SectionBuilder& node(uint32_t kind, uint64_t line) {
    ++count_;
    put_varint(body_, kind);
    put_varint(body_, line);
    return *this;
  }
  SectionBuilder& none() { return tag(kTagNone); }
  SectionBuilder& child(uint64_t index) {
    tag(kTagNode);
    put_varint(body_, index);
    return *this;
  }
  SectionBuilder& list(uint64_t n) {
    tag(kTagList);
    put_varint(body_, n);
    return *this;
  }
  SectionBuilder& str(uint64_t id) {
    tag(kTagString);
    put_varint(body_, id);
    return *this;
  }
  SectionBuilder& integer(int64_t v) {
    tag(kTagInt);
    put_varint(body_, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    return *this;
  }
  SectionBuilder& bigint(uint64_t id) {
    tag(kTagBigInt);
    put_varint(body_, id);
    return *this;
  }
  SectionBuilder& real(double d) {
    tag(kTagFloat);
    put_f64(body_, d);
    return *this;
  }
  SectionBuilder& boolean(bool b) { return tag(b ? kTagTrue : kTagFalse); }
  SectionBuilder& bytes(const std::string& b) {
    tag(kTagBytes);
    put_varint(body_, b.size());
    body_.insert(body_.end(), b.begin(), b.end());
    return *this;
  }
  SectionBuilder& complex(double re, double im) {
    tag(kTagComplex);
    put_f64(body_, re);
    put_f64(body_, im);
    return *this;
  }
  SectionBuilder& ellipsis() { return tag(kTagEllipsis); }
  SectionBuilder& raw(uint8_t b) {
    body_.push_back(b);
    return *this;
  }
  uint32_t count() const { return count_; }
  const std::vector<uint8_t>& body() const { return body_; }

 private:
  SectionBuilder& tag(uint8_t t) {
    body_.push_back(t);
    return *this;
  }
  std::vector<uint8_t> body_;
  uint32_t count_ = 0;
};

struct CorpusSpec {
  std::vector<std::string> strings;
  struct Kind {
    uint32_t name;
    std::vector<uint32_t> fields;
  };
  std::vector<Kind> kinds;
  struct Module {
    uint32_t name;
    SectionBuilder section;
  };
  std::vector<Module> modules;
};

// The file's bytes. `section_offsets` (optional) receives each section's offset.
inline std::vector<uint8_t> write_corpus(const CorpusSpec& spec, std::vector<uint64_t>* section_offsets = nullptr) {
  std::vector<uint8_t> kinds, strings, sections, index;
  for (const auto& k : spec.kinds) {
    put_varint(kinds, k.name);
    put_varint(kinds, k.fields.size());
    for (uint32_t f : k.fields) put_varint(kinds, f);
  }
  for (const auto& s : spec.strings) {
    put_varint(strings, s.size());
    strings.insert(strings.end(), s.begin(), s.end());
  }
  const uint64_t kinds_off = kHeaderBytes;
  const uint64_t strings_off = kinds_off + kinds.size();
  uint64_t off = strings_off + strings.size();
  for (const auto& m : spec.modules) {
    std::vector<uint8_t> data = {'M', 'O', 'D', 'L'};
    put_u32(data, m.section.count());
    data.insert(data.end(), m.section.body().begin(), m.section.body().end());
    if (section_offsets) section_offsets->push_back(off);
    put_varint(index, m.name);
    put_u64(index, off);
    put_u64(index, data.size());
    put_u32(index, m.section.count());
    put_u32(index, crc32(data));
    off += data.size();
    sections.insert(sections.end(), data.begin(), data.end());
  }
  std::vector<uint8_t> out = {'S', 'H', 'O', 'A', 'L', 'A', 'S', 'T'};
  put_u32(out, kFormatVersion);
  put_u32(out, static_cast<uint32_t>(spec.kinds.size()));
  put_u32(out, static_cast<uint32_t>(spec.strings.size()));
  put_u32(out, static_cast<uint32_t>(spec.modules.size()));
  put_u64(out, kinds_off);
  put_u64(out, strings_off);
  put_u64(out, off);
  out.insert(out.end(), kinds.begin(), kinds.end());
  out.insert(out.end(), strings.begin(), strings.end());
  out.insert(out.end(), sections.begin(), sections.end());
  out.insert(out.end(), index.begin(), index.end());
  return out;
}

// Recomputes every section's CRC in the index (after a test corrupted a section on
// purpose and wants the decoder, not the CRC check, to find the defect).
inline void fix_crcs(std::vector<uint8_t>& bytes) {
  const CorpusFile f = [&] {
    std::vector<uint8_t> copy = bytes;
    // Parse with the CRCs as they are: CorpusFile does not check them.
    return CorpusFile::from_bytes(copy);
  }();
  for (size_t m = 0; m < f.module_count(); ++m) {
    const ModuleEntry& e = f.module(m);
    const uint32_t crc = crc32(std::span<const uint8_t>(bytes.data() + e.offset, e.length));
    // The CRC is the last 4 bytes of the entry: name varint, u64, u64, u32, u32.
    const uint64_t crc_at = (m + 1 < f.module_count() ? f.module(m + 1).index_offset : bytes.size()) - 4;
    std::memcpy(bytes.data() + crc_at, &crc, 4);
  }
}

// A small corpus using every tag: kinds Module(body), Expr(value), Const(value, kind),
// Name(id, ctx), Load(); three modules.
inline CorpusSpec sample_spec() {
  CorpusSpec s;
  s.strings = {"Module", "body", "Expr", "value", "Const", "kind", "Name", "id", "ctx", "Load",
               "x", "hello", "123456789012345678901234567890", "mod_a", "mod_b", "mod_c"};
  s.kinds = {{0, {1}}, {2, {3}}, {4, {3, 5}}, {6, {7, 8}}, {9, {}}};
  {
    SectionBuilder b;
    b.node(4, 0);                                   // 0 Load
    b.node(3, 1).str(10).child(0);                  // 1 Name x
    b.node(1, 1).child(1);                          // 2 Expr
    b.node(2, 2).integer(-5).none();                // 3 Const -5
    b.node(1, 2).child(3);                          // 4 Expr
    b.node(2, 3).integer(int64_t{1} << 62).str(5);  // 5 Const boxed int
    b.node(1, 3).child(5);                          // 6
    b.node(0, 0).list(3).child(2).child(4).child(6);  // 7 Module
    s.modules.push_back({13, b});
  }
  {
    SectionBuilder b;
    b.node(2, 1).bigint(12).none();
    b.node(2, 2).real(2.5).none();
    b.node(2, 3).boolean(true).none();
    b.node(2, 4).boolean(false).none();
    b.node(2, 5).bytes(std::string("\0bin\xff", 5)).none();
    b.node(2, 6).complex(0, 1.5).none();
    b.node(2, 7).ellipsis().none();
    b.node(2, 8).str(11).none();
    b.node(0, 0).list(9).child(0).child(1).child(2).child(3).child(4).child(5).child(6).child(7).list(2).none().str(10);
    s.modules.push_back({14, b});
  }
  {
    SectionBuilder b;
    b.node(0, 0).list(0);
    s.modules.push_back({15, b});
  }
  return s;
}

}  // namespace shoal::ast::testing
