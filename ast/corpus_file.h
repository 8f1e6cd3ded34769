// The AST corpus file (`.sast`, docs/ast_format.md): opening, validating and indexing.
//
// CorpusFile maps the file read-only and checks everything outside the module sections
// up front: the header (magic, version, offsets inside the file), the kind table, the
// string table and the index (every section inside the file, in order, not overlapping
// the tables). The sections themselves are decoded later, one at a time and by any
// thread (ast/section_decoder.h); each is checked against its CRC-32 and its index entry
// then. A CorpusFile is immutable after open, so any number of threads may read it.
//
// Every defect is a FormatError naming the byte offset and what was expected there;
// nothing is ever read outside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/errors.h"

namespace shoal::ast {

// A corrupt, truncated or unsupported corpus file: offset() is the byte offset in the
// file where the reader found the defect, expected() what it expected to find there.
class FormatError : public Error {
 public:
  FormatError(uint64_t offset, std::string expected, const std::string& found = {});
  uint64_t offset() const { return offset_; }
  const std::string& expected() const { return expected_; }

 private:
  uint64_t offset_;
  std::string expected_;
};

// The file cannot be opened or mapped (errno's text in the message).
class CorpusIoError : public Error {
 public:
  using Error::Error;
};

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 48;
inline constexpr uint32_t kMaxKinds = 65536;

// Value tags (docs/ast_format.md).
enum Tag : uint8_t {
  kTagNone = 0,
  kTagNode = 1,
  kTagList = 2,
  kTagString = 3,
  kTagInt = 4,
  kTagBigInt = 5,
  kTagFloat = 6,
  kTagTrue = 7,
  kTagFalse = 8,
  kTagBytes = 9,
  kTagComplex = 10,
  kTagEllipsis = 11,
};

struct KindInfo {
  uint32_t name_id = 0;
  std::string_view name;
  std::vector<std::string_view> fields;
};

struct ModuleEntry {
  std::string_view name;
  uint64_t offset = 0;  // of the section's magic
  uint64_t length = 0;  // bytes, magic included
  uint32_t node_count = 0;
  uint32_t crc = 0;
  uint64_t index_offset = 0;  // of this entry in the index (for error messages)
};

class CorpusFile {
 public:
  // Maps and validates the file. Throws CorpusIoError or FormatError.
  static CorpusFile open(const std::string& path);
  // The same over bytes in memory (tests and the fuzzer); the bytes are copied.
  static CorpusFile from_bytes(std::span<const uint8_t> bytes);

  CorpusFile(CorpusFile&&) noexcept;
  CorpusFile& operator=(CorpusFile&&) noexcept;
  ~CorpusFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t kind_count() const { return kinds_.size(); }
  size_t string_count() const { return strings_.size(); }
  size_t module_count() const { return modules_.size(); }
  const KindInfo& kind(size_t i) const { return kinds_[i]; }
  std::string_view string(size_t i) const { return strings_[i]; }
  const ModuleEntry& module(size_t i) const { return modules_[i]; }
  uint64_t total_nodes() const { return total_nodes_; }
  uint32_t max_module_nodes() const { return max_module_nodes_; }

 private:
  struct Storage;
  CorpusFile();
  void parse();

  std::unique_ptr<Storage> storage_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::vector<KindInfo> kinds_;
  std::vector<std::string_view> strings_;
  std::vector<ModuleEntry> modules_;
  uint64_t total_nodes_ = 0;
  uint32_t max_module_nodes_ = 0;
};

// Bounded little-endian reading with FormatErrors (offsets are file offsets).
class ByteReader {
 public:
  ByteReader(const uint8_t* file, uint64_t begin, uint64_t end) : file_(file), pos_(begin), end_(end) {}
  uint64_t pos() const { return pos_; }
  uint64_t end() const { return end_; }
  void seek(uint64_t p) { pos_ = p; }

  void need(uint64_t n, const char* what) const {
    if (n > end_ - pos_) [[unlikely]]
      throw_truncated(what);
  }
  uint8_t u8(const char* what) {
    need(1, what);
    return file_[pos_++];
  }
  uint32_t u32(const char* what) { return fixed<uint32_t>(what); }
  uint64_t u64(const char* what) { return fixed<uint64_t>(what); }
  double f64(const char* what) { return fixed<double>(what); }
  // Unsigned LEB128, at most 64 bits. With 10 bytes left (the longest varint) the bytes
  // are read without a bound check each.
  uint64_t varint(const char* what) {
    const bool checked = end_ - pos_ < 10;
    const uint64_t start = pos_;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (checked) need(1, what);
      const uint8_t b = file_[pos_++];
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        if (shift == 63 && b > 1) throw_bad_varint(start, what);
        return v;
      }
    }
    throw_bad_varint(start, what);
  }
  std::span<const uint8_t> bytes(uint64_t n, const char* what) {
    need(n, what);
    std::span<const uint8_t> s(file_ + pos_, n);
    pos_ += n;
    return s;
  }
  [[noreturn]] void fail(const std::string& expected, const std::string& found = {}) const;
  [[noreturn]] void fail_at(uint64_t offset, const std::string& expected, const std::string& found = {}) const;

 private:
  template <class T>
  T fixed(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, file_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  [[noreturn]] void throw_truncated(const char* what) const;
  [[noreturn]] void throw_bad_varint(uint64_t start, const char* what) const;
  const uint8_t* file_;
  uint64_t pos_, end_;
};

// CRC-32 (IEEE 802.3, as zlib's crc32), slicing by 8.
uint32_t crc32(std::span<const uint8_t> bytes);

}  // namespace shoal::ast
