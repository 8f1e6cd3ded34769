// The object header: one 64-bit word at the start of every heap object.
//
//   bits  0..23  class id (index into the class table; 0 is never a valid class)
//   bits 24..31  sharing tags (set at allocation, or once and for ever by freeze):
//                  24 deeply immutable   - the class admits no mutation at all
//                  25 trivially shareable - may cross isolates without copying
//                  26 frozen              - deeply frozen: this object and everything it
//                                           reaches (shoal::freeze, objects/freeze.cc)
//                  27 shared              - a mutable object any isolate may touch
//                                           (exempt from the owner check)
//                  28 freezing            - a freeze has claimed it: every mutation is
//                                           refused from now on, but is_frozen() waits
//                                           until the whole graph is claimed
//                  29..31 reserved (29 is never in a header: a thread's store key
//                                 uses it to say "not running", mutation_checks.h)
//   bits 32..41  GC bits (marking itself uses side bitmaps, never the header):
//                  32 has finaliser (reserved)
//                  33 young      - allocated since the last cycle, not yet traced by
//                                  one (set at allocation outside concurrent marking;
//                                  cleared, atomically, when a marker traces it)
//                  34 remembered - an old object on the remembered set: the write
//                                  barrier recorded it when it stored a young
//                                  reference into it (set by the barrier, cleared
//                                  when a marker traces it or a full cycle drops it)
//                  35, 36 newborn - allocated while a cycle marks (black for that
//                                  cycle, young after its sweep); the two bits
//                                  alternate from cycle to cycle, so this cycle's
//                                  newborns are told from the last one's
//                  37, 38 remembered-next - recorded by the barrier while a cycle
//                                  marks, for the next cycle (alternating likewise;
//                                  the marker of this cycle never clears it)
//                  39 carded     - a large object (heap/large_object_space.h): the
//                                  barrier remembers it by card, never by bit 34 or
//                                  37/38 (set at allocation, never cleared)
//                  40, 41 aged   - a young object that survived one young cycle (set
//                                  by that cycle's marker; the bit of the cycle's
//                                  parity, as for newborns): the next young cycle
//                                  that keeps it makes it old (HeapOptions::aging)
//                The generational invariant (gc/generations.cc) is stated in terms of
//                these bits and the mark bits.
//   bits 42..63  owner isolate id (0 = none / the shared isolate), for isolation checks
//
// The payload follows the header; for variable-length classes (reference arrays, byte
// arrays, strings) the first payload word is the element count.
//
// Tags only ever get set, never cleared, and are updated with atomic fetch_or, so a
// racing reader sees either the old or the new tag set, never a torn header.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace shoal {

using ClassId = uint32_t;

namespace header {
inline constexpr uint64_t kClassIdBits = 24;
inline constexpr uint64_t kClassIdMask = (uint64_t{1} << kClassIdBits) - 1;
inline constexpr uint64_t kDeeplyImmutable = uint64_t{1} << 24;
inline constexpr uint64_t kTriviallyShareable = uint64_t{1} << 25;
inline constexpr uint64_t kFrozen = uint64_t{1} << 26;
inline constexpr uint64_t kShared = uint64_t{1} << 27;
inline constexpr uint64_t kFreezing = uint64_t{1} << 28;
inline constexpr uint64_t kTagMask = uint64_t{0xff} << 24;
// No mutation of an object with any of these tags is allowed (barriers/mutation_checks.h).
inline constexpr uint64_t kImmutableMask = kDeeplyImmutable | kFrozen | kFreezing;
// An object with any of these tags may cross isolates by reference: is_shareable().
inline constexpr uint64_t kShareableMask = kDeeplyImmutable | kTriviallyShareable | kFrozen;
inline constexpr uint64_t kHasFinalizer = uint64_t{1} << 32;
inline constexpr uint64_t kYoung = uint64_t{1} << 33;
inline constexpr uint64_t kRemembered = uint64_t{1} << 34;
inline constexpr uint64_t kNewbornEven = uint64_t{1} << 35;
inline constexpr uint64_t kNewbornOdd = uint64_t{1} << 36;
inline constexpr uint64_t kRememberedNextEven = uint64_t{1} << 37;
inline constexpr uint64_t kRememberedNextOdd = uint64_t{1} << 38;
inline constexpr uint64_t kCarded = uint64_t{1} << 39;
inline constexpr uint64_t kAgedEven = uint64_t{1} << 40;
inline constexpr uint64_t kAgedOdd = uint64_t{1} << 41;
inline constexpr uint64_t kAgedBits = kAgedEven | kAgedOdd;
inline constexpr uint64_t kNewbornBits = kNewbornEven | kNewbornOdd;
// Young in any sense (what the barrier's value test looks for): allocated outside
// marking and untraced, or allocated while some cycle marked.
inline constexpr uint64_t kYoungBits = kYoung | kNewbornBits;
inline constexpr uint64_t kRememberedNextBits = kRememberedNextEven | kRememberedNextOdd;
// On some remembered-set buffer or list.
inline constexpr uint64_t kRememberedBits = kRemembered | kRememberedNextBits;
inline constexpr uint64_t kGenerationBits = kYoungBits | kRememberedBits | kAgedBits;
// Bits 32..41: the collector's alone (allocate_raw clears whatever a caller put there).
inline constexpr uint64_t kGcMask = uint64_t{0x3ff} << 32;
inline constexpr uint64_t kOwnerShift = 42;
inline constexpr uint64_t kOwnerBits = 22;
inline constexpr uint64_t kOwnerMask = ((uint64_t{1} << kOwnerBits) - 1) << kOwnerShift;

// The owner isolate id in a header word (bits 42..63).
constexpr uint32_t owner_of(uint64_t header_word) {
  return static_cast<uint32_t>((header_word & kOwnerMask) >> kOwnerShift);
}

constexpr uint64_t make(ClassId cls, uint64_t tags, uint32_t owner = 0) {
  return (cls & kClassIdMask) | (tags & (kTagMask | kGcMask)) |
         (uint64_t{owner} << kOwnerShift & kOwnerMask);
}
}  // namespace header

// Size of the header word, and the alignment of every heap object.
inline constexpr size_t kHeaderSize = 8;
inline constexpr size_t kObjectAlignment = 8;

class Object {
 public:
  explicit Object(uint64_t header_word) : header_(header_word) {}
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  uint64_t header_word() const { return header_.load(std::memory_order_relaxed); }
  ClassId class_id() const { return static_cast<ClassId>(header_word() & header::kClassIdMask); }
  bool has_tag(uint64_t tag) const { return (header_word() & tag) != 0; }
  bool is_frozen() const { return has_tag(header::kFrozen); }
  bool is_deeply_immutable() const { return has_tag(header::kDeeplyImmutable); }
  bool is_trivially_shareable() const { return has_tag(header::kTriviallyShareable); }
  bool is_shareable() const { return has_tag(header::kShareableMask); }
  uint32_t owner() const { return header::owner_of(header_word()); }
  // Sets sharing tags (never clears them).
  void add_tags(uint64_t tags) { header_.fetch_or(tags & header::kTagMask, std::memory_order_acq_rel); }
  // The generational bits (young, remembered): set_gc_bits returns the word before.
  uint64_t set_gc_bits(uint64_t bits) {
    return header_.fetch_or(bits & header::kGenerationBits, std::memory_order_relaxed);
  }
  void clear_gc_bits(uint64_t bits) { header_.fetch_and(~(bits & header::kGenerationBits), std::memory_order_relaxed); }

  // Moves the object to another owner isolate (transfer, attach): one atomic update of
  // the owner bits, leaving the class, tags and GC bits as they are.
  void set_owner(uint32_t owner) {
    uint64_t h = header_.load(std::memory_order_relaxed);
    const uint64_t bits = uint64_t{owner} << header::kOwnerShift & header::kOwnerMask;
    while (!header_.compare_exchange_weak(h, (h & ~header::kOwnerMask) | bits, std::memory_order_acq_rel)) {
    }
  }

  void* payload() { return reinterpret_cast<char*>(this) + kHeaderSize; }
  const void* payload() const { return reinterpret_cast<const char*>(this) + kHeaderSize; }
  static Object* from_payload(void* p) {
    return reinterpret_cast<Object*>(static_cast<char*>(p) - kHeaderSize);
  }

 private:
  std::atomic<uint64_t> header_;
};
static_assert(sizeof(Object) == kHeaderSize);

}  // namespace shoal
