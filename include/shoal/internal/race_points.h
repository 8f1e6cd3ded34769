// Race points (internal, for tests): named places inside the builtin collections'
// operations where a test can stop a thread to replay one documented race
// deterministically - e.g. GrowableList::get paused between its bounds check and its
// load while another thread runs remove_last (tests/objects/collection_races_test.cc).
//
// Production cost: one relaxed load of a global pointer and a never-taken branch per
// point. A hook runs on the operating thread, inside the operation, where no safepoint
// may be reached: it must not allocate, collect, or call into the heap; it may block on
// plain C++ synchronisation while another thread runs (that other thread must not need
// a collection to finish either).
#pragma once

#include <atomic>
#include <cstdint>

namespace shoal::internal {

enum class RacePoint : uint8_t {
  kListGetAfterBoundsCheck,     // GrowableList::get: index < length seen, slot not loaded
  kListSetAfterBoundsCheck,     // GrowableList::set: index < length seen, not stored
  kListRemoveAfterLength,       // remove_last / remove_at: length lowered, slot not cleared
  kListRemoveAfterStorageLoad,  // remove_last: length and storage read, slot not loaded
  kListAddBeforeLength,         // add / insert: element stored, length not raised
  kListGrowAfterCopy,           // growth: elements copied, new storage not published
  kMapGetAfterIndex,            // Map::get: index entry read, entry not loaded
  kMapRemoveAfterUnlink,        // Map::remove: entry unlinked, live count not lowered
  kMapRehashAfterAllocate,      // rehash: new table allocated, current one not re-read
  kMapRehashAfterCopy,          // rehash: entries copied, new table not published
  kIteratorAfterCheck,          // an iterator checked the modification count, not read
};

using RaceHook = void (*)(RacePoint);
extern std::atomic<RaceHook> g_race_hook;

inline void race_point(RacePoint p) {
  if (RaceHook h = g_race_hook.load(std::memory_order_relaxed)) [[unlikely]]
    h(p);
}

}  // namespace shoal::internal
