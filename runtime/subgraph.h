// Subgraphs of an isolate (internal): what a deep copy copies and what a transfer or a
// detach moves (runtime/deep_copy.cc, runtime/transfer.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "objects/object_index.h"
#include "shoal/object.h"
#include "shoal/value.h"

namespace shoal::internal {

class HeapImpl;

// Owner id of a detached graph: no isolate has it, so no store into it passes the owner
// check until attach() gives it an owner again.
inline constexpr uint32_t kDetachedOwner = (uint32_t{1} << header::kOwnerBits) - 1;

// The objects a transfer or detach moves: reachable from `root` through strong slots of
// objects owned by `owner` (itself included); shareable and unowned objects are the
// boundary (they stay where they are, shared), and a mutable object owned by anyone else
// throws as above.
void collect_owned_set(HeapImpl& heap, Value root, uint32_t owner, std::vector<Object*>& objects, ObjectIndex& index);

// Deep copy of `root` whose new objects are owned by `owner` (0: unowned). Shareable
// values are returned as they are. Runs on a running thread; allocates.
Value deep_copy(Value root, uint32_t owner);

// Moves the subgraph of the caller's isolate reachable from `root` to `to_owner`;
// `safe`: after the referrer scan (TransferError if something outside refers into it).
// `what` names the operation for errors. Returns the objects moved (for a rollback:
// nothing outside the subgraph refers into them - SAFE proved it, UNSAFE is the
// caller's promise - so nothing but the caller can touch them until it hands them on).
std::vector<Object*> transfer_subgraph(Value root, uint32_t to_owner, bool safe, const char* what);

}  // namespace shoal::internal
