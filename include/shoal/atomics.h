// Atomics on the heap: AtomicInt32, AtomicInt64 and AtomicRef objects.
//
//   auto counter = shoal::AtomicInt64::create();       // trivially shareable
//   counter->fetch_add(1);
//   auto head = shoal::AtomicRef::create();
//   Value seen = head->load();
//   Value witness = head->compare_and_swap(seen, node);  // == seen when it swapped
//
// These objects are trivially shareable: any isolate, the shared isolate and threads
// outside isolates may use them, they go through ports by reference, they may sit in
// frozen graphs and in shared fields, and freeze leaves them mutable (they are the
// mutable part of a frozen structure, as Dart's proposal has it). They carry no owner.
//
// An AtomicRef may only hold shareable values (small integers, null, frozen, deeply
// immutable or trivially shareable objects) when used from an isolate or the shared
// isolate of a group without share_everything - otherwise it would hand one isolate's
// mutable object to another: NotShareableError, and the cell is unchanged. Outside
// isolates and in share-everything groups it holds anything.
//
// Like every store, their mutations need a running thread of the heap: from an
// unattached thread NotAttached, inside run_native or a handshake operation
// ThreadStateError, before anything changes (a reference moved from a thread the
// collector does not stop could be missed by a stop-the-world cycle). Loads work from
// any thread.
//
// Orders: AtomicRef loads are acquire, stores release, exchange and compare_and_swap
// acquire-release; its stores obey the write barrier (a compare_and_swap too: the
// overwritten value is shaded while marking runs). The integer objects take a
// std::memory_order (default seq_cst).
//
// Atomic operations on elements of Int32List, Int64List (typed_data.h) and RefArray
// (builtins.h), and compare_and_swap / exchange on any reference field of a managed
// struct (Ref<T>::compare_and_swap) or class (compare_and_swap_field), complete the set.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "shoal/managed.h"

namespace shoal {

template <class I>
class AtomicInteger {
  static_assert(std::is_same_v<I, int32_t> || std::is_same_v<I, int64_t>);

 public:
  static Ref<AtomicInteger> create(I initial = 0);
  static ClassId class_id();

  I load(std::memory_order order = std::memory_order_seq_cst) const { return value_.load(order); }
  void store(I v, std::memory_order order = std::memory_order_seq_cst) {
    mutable_value("AtomicInteger::store").store(v, order);
  }
  I exchange(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::exchange").exchange(v, order);
  }
  // Returns the witness: the value before, equal to `expected` exactly when it swapped.
  I compare_and_swap(I expected, I desired, std::memory_order order = std::memory_order_seq_cst) {
    mutable_value("AtomicInteger::compare_and_swap").compare_exchange_strong(expected, desired, order);
    return expected;
  }
  I fetch_add(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::fetch_add").fetch_add(v, order);
  }
  I fetch_sub(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::fetch_sub").fetch_sub(v, order);
  }
  I fetch_and(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::fetch_and").fetch_and(v, order);
  }
  I fetch_or(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::fetch_or").fetch_or(v, order);
  }
  I fetch_xor(I v, std::memory_order order = std::memory_order_seq_cst) {
    return mutable_value("AtomicInteger::fetch_xor").fetch_xor(v, order);
  }

 private:
  // The value, for a mutation: after the thread check (internal::check_store_thread),
  // which names the operation `what` in its error.
  std::atomic<I>& mutable_value(const char* what) {
    internal::check_store_thread(what);
    return value_;
  }
  std::atomic<I> value_{0};
};

using AtomicInt32 = AtomicInteger<int32_t>;
using AtomicInt64 = AtomicInteger<int64_t>;
extern template class AtomicInteger<int32_t>;
extern template class AtomicInteger<int64_t>;

namespace internal {
// True while the thread runs in an isolate or the shared isolate of a group without
// share_everything: a trivially shareable cell then takes only shareable values (set
// with the thread's isolate, runtime/isolate_group.cc).
extern constinit thread_local bool tls_cells_need_shareable;
// Throws NotShareableError when `v` may not go into a trivially shareable cell from
// this thread (see AtomicRef).
[[noreturn, gnu::cold]] void throw_not_shareable_in_cell(Value v, const char* what);
inline void check_shareable_for_cell(Value v, const char* what) {
  if (tls_cells_need_shareable && v.is_object() && !v.as_object()->is_shareable()) [[unlikely]]
    throw_not_shareable_in_cell(v, what);
}
}  // namespace internal

class AtomicRef {
 public:
  static Ref<AtomicRef> create(Value initial = Value::null());
  static ClassId class_id();

  Value load() const { return value_.load(); }
  void store(Value v) {
    internal::check_store_thread("AtomicRef::store");
    internal::check_shareable_for_cell(v, "AtomicRef::store");
    internal::write_unchecked(self(), value_, v);
  }
  Value exchange(Value v) {
    internal::check_store_thread("AtomicRef::exchange");
    internal::check_shareable_for_cell(v, "AtomicRef::exchange");
    return internal::exchange_unchecked(self(), value_, v);
  }
  Value compare_and_swap(Value expected, Value desired) {
    internal::check_store_thread("AtomicRef::compare_and_swap");
    internal::check_shareable_for_cell(desired, "AtomicRef::compare_and_swap");
    return internal::compare_and_swap_unchecked(self(), value_, expected, desired);
  }

 private:
  Object* self() { return Object::from_payload(this); }
  Slot value_;
};

}  // namespace shoal
