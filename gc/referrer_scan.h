// The referrer scan (internal): does anything outside a subgraph still refer into it?
// The check behind SAFE transfer and detach (runtime/transfer.cc).
//
// On a tracing heap there are no reference counts to sum up (Kotlin/Native's SAFE mode
// compares each object's count with the references from inside the subgraph). Instead,
// in a stop-the-world pause with the heap at rest (Collector::exclusive_pause), the scan
// traces the live heap from the roots with its own visited set - the verifier's
// traversal - and looks at every strong edge o -> s with s in the subgraph:
//   - o a heap object outside the subgraph: a referrer (its class is reported);
//   - a persistent handle or registered global holding s: a referrer;
//   - a thread's stack or registers (conservative), or the runtime's own scratch lists:
//     not a referrer - a stack reference is the sender's to drop, and any use of it
//     after the transfer is refused by the owner check.
// Cost: one traversal of the live heap (objects and slots), in a pause - the price of
// the proof, proportional to the heap, not to the subgraph. UNSAFE transfer skips it.
#pragma once

#include <optional>
#include <string>

#include "objects/object_index.h"

namespace shoal::internal {

class HeapImpl;

// In a pause (Collector::exclusive_pause): a description of one referrer into
// `subgraph`, or nullopt when there is none.
std::optional<std::string> find_referrer_in_pause(HeapImpl& heap, const ObjectIndex& subgraph);

}  // namespace shoal::internal
