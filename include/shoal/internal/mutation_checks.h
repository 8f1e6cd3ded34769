// The mutation and isolation checks (internal): inline fast paths that ride on one load
// of the holder's header, next to the write barrier (include/shoal/write_barrier.h).
//
// Every thread has a store key, tls_owner_key: the owner bits of the isolate it has
// entered (0 outside isolates, in the shared isolate and in share-everything groups).
// A store into `holder` is allowed on the fast path when
//
//     ((header ^ tls_owner_key) & (kOwnerMask | kImmutableMask)) == 0
//
// i.e. the holder is neither frozen, being frozen nor deeply immutable, and is owned by
// the storing thread's isolate (or by nobody, for a thread outside isolates). Everything
// else goes to the cold slow path (barriers/mutation_checks.cc), which throws
// InvalidMutabilityError, IncorrectDereferenceError or IsolationError, or lets the store
// proceed (an unowned or shared object written from an isolate, any object written by a
// thread outside isolates). One load, one xor, one and, one branch.
//
// A thread that may not touch the heap - not attached (no MutatorScope), or inside
// run_native's function or a handshake operation - has kNotRunningKey in its store key:
// a tag bit that no header carries, so every store it makes takes the slow path, which
// throws NotAttached or ThreadStateError before the store. (Such a thread's stack is
// not scanned as a running one's, so a store from it could hide an object from the
// collector.) The fast path costs nothing more for it: the bit is in the same mask.
//
// Checked reads (IsolateGroupOptions::checked_reads) are off unless some group turned
// them on: g_checked_reads counts such groups, and Ref<T>::operator-> then checks the
// object it dereferences (check_read).
#pragma once

#include <atomic>
#include <cstdint>

#include "shoal/object.h"

namespace shoal::internal {

extern constinit thread_local uint64_t tls_owner_key;
extern std::atomic<uint32_t> g_checked_reads;

[[gnu::cold]] void store_check_slow(const Object* holder, uint64_t header_word, const char* what);
[[gnu::cold]] void read_check_slow(const Object* object, uint64_t header_word);

// In a store key only, never in a header (a free tag bit): see the file comment.
inline constexpr uint64_t kNotRunningKey = uint64_t{1} << 29;
static_assert((kNotRunningKey & header::kTagMask) != 0 &&
                  (kNotRunningKey & (header::kImmutableMask | header::kShareableMask | header::kShared)) == 0,
              "kNotRunningKey must be a tag bit no object header uses");
inline constexpr uint64_t kStoreCheckMask = header::kOwnerMask | header::kImmutableMask | kNotRunningKey;

// Sets or clears kNotRunningKey in the calling thread's store key (attach and detach,
// entering and leaving run_native and handshake operations).
inline void set_store_key_running(bool running) {
  tls_owner_key = running ? (tls_owner_key & ~kNotRunningKey) : (tls_owner_key | kNotRunningKey);
}

// Throws unless the calling thread may mutate `holder` (see the file comment).
inline void check_store(const Object* holder, const char* what = "write") {
  const uint64_t h = holder->header_word();
  if (((h ^ tls_owner_key) & kStoreCheckMask) != 0) [[unlikely]]
    store_check_slow(holder, h, what);
}

// The thread part of the store check alone, for objects that carry no owner and stay
// mutable (the atomics, include/shoal/atomics.h): a store from a thread the collector
// does not stop - unattached, inside run_native or a handshake operation - could move a
// reference behind a stop-the-world collection's back, so it throws NotAttached or
// ThreadStateError (store_check_slow) before anything changes.
inline void check_store_thread(const char* what) {
  if ((tls_owner_key & kNotRunningKey) != 0) [[unlikely]]
    store_check_slow(nullptr, 0, what);  // (a header word of 0: nothing else to check)
}

// The owner part of the store check alone, on a header word the caller has already
// read (freeze, copy and transfer walk graphs and decide about immutability
// themselves): throws the error a store into a foreign object would.
inline void check_owner(const Object* object, uint64_t header_word, const char* what) {
  if (((header_word ^ tls_owner_key) & header::kOwnerMask) != 0)
    store_check_slow(object, header_word & ~header::kImmutableMask, what);
}

// With checked reads on: throws unless the calling thread may read `object`.
inline void check_read(const Object* object) {
  if (g_checked_reads.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    const uint64_t h = object->header_word();
    if (((h ^ tls_owner_key) & header::kOwnerMask) != 0) read_check_slow(object, h);
  }
}

}  // namespace shoal::internal
