// Value: one machine word that is either a reference to a heap object, null, or a tagged
// small integer ("Smi"), as VM prototypes expect.
//
//   bit 0 = 0 : reference (object address, 8-byte aligned) or null (all zero)
//   bit 0 = 1 : small integer, value in bits 63..1 (63-bit two's complement)
//
// The even words 2..14 are no object (objects are 8-byte aligned and never below 16):
// the builtin collections use 2 internally as the "no element here" marker of a
// removed position (objects/growable_list.cc), which every walker of the heap (marker,
// verifier, freeze, copy, transfer) skips because is_object() is false for it. They are
// never handed to user code; do not build Values from them with from_raw.
//
// Slot is a reference field inside a heap object or a root: a Value stored in an atomic
// word, so that racing reads and writes never tear (heap safety under races). Reads are
// acquire loads; writes to heap slots go through the write barrier (barriers/),
// which is why Slot has no public store.
//
// Ordering: stores are release and loads acquire, so a thread that reads a reference
// from a slot also sees the header and every field the publishing thread wrote before
// storing it (the message-passing guarantee; free on x86, ldar/stlr on Arm). Racy
// programs may see an old or a new reference, never a torn or half-initialised one.
#pragma once

#include <atomic>
#include <cstdint>

namespace shoal {

class Object;

class Value {
 public:
  static constexpr int64_t kMaxSmallInt = (int64_t{1} << 62) - 1;
  static constexpr int64_t kMinSmallInt = -(int64_t{1} << 62);

  constexpr Value() = default;
  static constexpr Value null() { return Value(); }
  static Value from_int(int64_t v);  // throws InvalidArgument outside 63 bits
  static Value from_object(const Object* o) { return Value(reinterpret_cast<uint64_t>(o)); }
  static constexpr Value from_raw(uint64_t bits) { return Value(bits); }

  constexpr bool is_null() const { return bits_ == 0; }
  constexpr bool is_int() const { return (bits_ & 1) != 0; }
  constexpr bool is_object() const { return bits_ > 15 && (bits_ & 1) == 0; }
  constexpr int64_t as_int() const { return static_cast<int64_t>(bits_) >> 1; }
  Object* as_object() const { return reinterpret_cast<Object*>(bits_); }
  constexpr uint64_t raw() const { return bits_; }

  friend constexpr bool operator==(Value a, Value b) { return a.bits_ == b.bits_; }

 private:
  constexpr explicit Value(uint64_t bits) : bits_(bits) {}
  uint64_t bits_ = 0;
};

namespace internal {
struct SlotAccess;
}

// A reference field. Readable by anyone; writable only through the write barrier
// (shoal::write, Ref<T>::set, the builtins' setters) or, for root slots outside the heap,
// through the heap's root lock (Persistent, Heap::store_root). The raw store is private:
// user code cannot skip the barrier.
class Slot {
 public:
  Slot() = default;
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  Value load() const { return Value::from_raw(raw_.load(std::memory_order_acquire)); }
  // The raw word, relaxed (bulk copies that publish the copy with a release later).
  uint64_t load_relaxed_raw() const { return raw_.load(std::memory_order_relaxed); }

 private:
  friend struct internal::SlotAccess;
  void store(Value v) { raw_.store(v.raw(), std::memory_order_release); }
  Value exchange(Value v) { return Value::from_raw(raw_.exchange(v.raw(), std::memory_order_acq_rel)); }
  // Returns the witness: the value found (== expected when the swap happened).
  Value compare_exchange(Value expected, Value desired) {
    uint64_t e = expected.raw();
    raw_.compare_exchange_strong(e, desired.raw(), std::memory_order_acq_rel, std::memory_order_acquire);
    return Value::from_raw(e);
  }
  std::atomic<uint64_t> raw_{0};
};

namespace internal {
// The unbarriered store (internal, not part of the API): used by the write barrier after
// it has run, by the root set under the root lock and by the collector in pauses.
struct SlotAccess {
  static void store(Slot& slot, Value v) { slot.store(v); }
  static void store_relaxed(Slot& slot, Value v) { slot.raw_.store(v.raw(), std::memory_order_relaxed); }
  static Value exchange(Slot& slot, Value v) { return slot.exchange(v); }
  static Value compare_exchange(Slot& slot, Value expected, Value desired) {
    return slot.compare_exchange(expected, desired);
  }
};
}  // namespace internal
static_assert(sizeof(Slot) == 8);

}  // namespace shoal
