// Opening and validating a corpus file (ast/corpus_file.h, docs/ast_format.md).
#include "ast/corpus_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <set>
#include <utility>
#include <cerrno>
#include <cstring>

namespace shoal::ast {

namespace {

std::string message_for(uint64_t offset, const std::string& expected, const std::string& found) {
  std::string m = "corpus file: at offset " + std::to_string(offset) + ": expected " + expected;
  if (!found.empty()) m += ", found " + found;
  return m;
}

}  // namespace

FormatError::FormatError(uint64_t offset, std::string expected, const std::string& found)
    : Error(message_for(offset, expected, found)), offset_(offset), expected_(std::move(expected)) {}

// --- ByteReader -------------------------------------------------------------------------

void ByteReader::fail(const std::string& expected, const std::string& found) const {
  throw FormatError(pos_, expected, found);
}
void ByteReader::fail_at(uint64_t offset, const std::string& expected, const std::string& found) const {
  throw FormatError(offset, expected, found);
}
void ByteReader::throw_truncated(const char* what) const {
  throw FormatError(pos_, what, pos_ >= end_ ? "the end of the data" : std::to_string(end_ - pos_) + " bytes left");
}
void ByteReader::throw_bad_varint(uint64_t start, const char* what) const {
  throw FormatError(start, std::string(what) + " (a varint of at most 64 bits)", "an over-long varint");
}

// --- CRC-32 -----------------------------------------------------------------------------

namespace {
struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
const CrcTables& crc_tables() {
  static const CrcTables tables;
  return tables;
}
}  // namespace

uint32_t crc32(std::span<const uint8_t> bytes) {
  const auto& t = crc_tables().t;
  uint32_t c = 0xFFFFFFFFu;
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// --- CorpusFile -------------------------------------------------------------------------

struct CorpusFile::Storage {
  std::vector<uint8_t> owned;  // from_bytes
  void* map = nullptr;         // open
  size_t map_size = 0;
  ~Storage() {
    if (map) munmap(map, map_size);
  }
};

CorpusFile::CorpusFile() : storage_(std::make_unique<Storage>()) {}
CorpusFile::CorpusFile(CorpusFile&&) noexcept = default;
CorpusFile& CorpusFile::operator=(CorpusFile&&) noexcept = default;
CorpusFile::~CorpusFile() = default;

CorpusFile CorpusFile::open(const std::string& path) {
  CorpusFile f;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CorpusIoError("corpus file " + path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw CorpusIoError("corpus file " + path + ": cannot stat: " + std::strerror(e));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw CorpusIoError("corpus file " + path + ": cannot map: " + std::strerror(e));
    }
    madvise(m, size, MADV_WILLNEED);
    f.storage_->map = m;
    f.storage_->map_size = size;
    f.data_ = static_cast<const uint8_t*>(m);
  } else {
    f.data_ = reinterpret_cast<const uint8_t*>("");
  }
  ::close(fd);
  f.size_ = size;
  f.parse();
  return f;
}

CorpusFile CorpusFile::from_bytes(std::span<const uint8_t> bytes) {
  CorpusFile f;
  f.storage_->owned.assign(bytes.begin(), bytes.end());
  f.storage_->owned.push_back(0);  // a valid address even for empty input
  f.data_ = f.storage_->owned.data();
  f.size_ = bytes.size();
  f.parse();
  return f;
}

void CorpusFile::parse() {
  ByteReader r(data_, 0, size_);
  // Header.
  const auto magic = r.bytes(8, "the 48-byte header (magic \"SHOALAST\")");
  if (std::memcmp(magic.data(), "SHOALAST", 8) != 0) r.fail_at(0, "the magic \"SHOALAST\"", "other bytes");
  r.need(kHeaderBytes - 8, "the 48-byte header");
  const uint64_t version_at = r.pos();
  const uint32_t version = r.u32("version");
  if (version != kFormatVersion)
    r.fail_at(version_at, "format version " + std::to_string(kFormatVersion), "version " + std::to_string(version));
  const uint32_t nkinds = r.u32("kind count");
  const uint32_t nstrings = r.u32("string count");
  const uint32_t nmodules = r.u32("module count");
  const uint64_t kinds_off = r.u64("kinds offset");
  const uint64_t strings_off = r.u64("strings offset");
  const uint64_t index_off = r.u64("index offset");
  if (kinds_off != kHeaderBytes) r.fail_at(24, "the kind table right after the header (offset 48)", std::to_string(kinds_off));
  if (strings_off < kinds_off || strings_off > size_)
    r.fail_at(32, "a string table offset inside the file, after the kind table", std::to_string(strings_off));
  if (index_off < strings_off || index_off > size_)
    r.fail_at(40, "an index offset inside the file, after the string table", std::to_string(index_off));

  // Index first: it tells where the sections begin, that is where the string table ends.
  // Counts are bounded by the bytes that must hold them, and tables grow as entries are
  // read, not from the counts: a corrupt count fails fast and costs no memory.
  if (nmodules > (size_ - index_off) / 25) r.fail_at(20, "a module count that fits the index", std::to_string(nmodules));
  ByteReader x(data_, index_off, size_);
  std::vector<uint64_t> name_ids;
  // (No reserve from a count the file claims: a corrupt count must not cost memory
  // before the entries it claims have been read.)
  uint64_t next_section = 0;
  uint64_t sections_begin = index_off;
  for (uint32_t i = 0; i < nmodules; ++i) {
    ModuleEntry e;
    e.index_offset = x.pos();
    name_ids.push_back(x.varint("a module name (string id)"));
    const uint64_t off_at = x.pos();
    e.offset = x.u64("a section offset");
    e.length = x.u64("a section length");
    e.node_count = x.u32("a node count");
    e.crc = x.u32("a section CRC-32");
    if (i == 0) sections_begin = next_section = e.offset;
    if (e.offset != next_section || e.offset < strings_off || e.offset > index_off || e.length < 8 ||
        e.length > index_off - e.offset)
      x.fail_at(off_at,
                i == 0 ? "a first section between the string table and the index"
                       : "a section right after the previous one (at " + std::to_string(next_section) + ")",
                "offset " + std::to_string(e.offset) + " length " + std::to_string(e.length));
    next_section = e.offset + e.length;
    total_nodes_ += e.node_count;
    if (e.node_count > max_module_nodes_) max_module_nodes_ = e.node_count;
    modules_.push_back(e);
  }
  if (x.pos() != size_) x.fail("the end of the file after the index", "more bytes");
  if (nmodules > 0 && next_section != index_off)
    x.fail_at(next_section, "the index right after the last section", "a gap of " + std::to_string(index_off - next_section) + " bytes");

  // String table: exactly the bytes between its offset and the first section.
  if (nstrings > sections_begin - strings_off) r.fail_at(16, "a string count that fits the string table", std::to_string(nstrings));
  ByteReader s(data_, strings_off, sections_begin);
  for (uint32_t i = 0; i < nstrings; ++i) {
    const uint64_t n = s.varint("a string length");
    const auto b = s.bytes(n, "string bytes");
    strings_.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
  }
  if (s.pos() != sections_begin) s.fail("the first section right after the string table", "more bytes");
  for (uint32_t i = 0; i < nmodules; ++i) {
    if (name_ids[i] >= nstrings)
      x.fail_at(modules_[i].index_offset, "a module name string id below " + std::to_string(nstrings),
                std::to_string(name_ids[i]));
    modules_[i].name = strings_[name_ids[i]];
  }

  // Kind table: exactly the bytes between the header and the string table.
  if (nkinds > (strings_off - kinds_off) / 2 || nkinds > kMaxKinds)  // each kind takes two bytes at least
    r.fail_at(12, "a kind count that fits the kind table, at most " + std::to_string(kMaxKinds), std::to_string(nkinds));
  ByteReader k(data_, kinds_off, strings_off);
  for (uint32_t i = 0; i < nkinds; ++i) {
    KindInfo info;
    const uint64_t at = k.pos();
    const uint64_t name = k.varint("a kind name (string id)");
    if (name >= nstrings) k.fail_at(at, "a kind name string id below " + std::to_string(nstrings), std::to_string(name));
    info.name_id = static_cast<uint32_t>(name);
    info.name = strings_[name];
    const uint64_t count_at = k.pos();
    const uint64_t nfields = k.varint("a field count");
    if (nfields > 255) k.fail_at(count_at, "a field count of at most 255", std::to_string(nfields));
    for (uint64_t j = 0; j < nfields; ++j) {
      const uint64_t fat = k.pos();
      const uint64_t id = k.varint("a field name (string id)");
      if (id >= nstrings) k.fail_at(fat, "a field name string id below " + std::to_string(nstrings), std::to_string(id));
      info.fields.push_back(strings_[id]);
    }
    kinds_.push_back(std::move(info));
  }
  if (k.pos() != strings_off) k.fail("the string table right after the kind table", "more bytes");
  // Kinds are distinct: a loader defines one class per kind.
  std::set<std::pair<std::string_view, std::vector<std::string_view>>> distinct;
  for (uint32_t i = 0; i < nkinds; ++i)
    if (!distinct.emplace(kinds_[i].name, kinds_[i].fields).second)
      throw FormatError(kinds_off, "distinct kinds (a name and field list once each)",
                        "kind " + std::to_string(i) + " (" + std::string(kinds_[i].name) + ") again");
}

}  // namespace shoal::ast
