// Transfer and detach/attach: ownership moves by rewriting the owner bits of the
// subgraph's headers (Object::set_owner, one atomic update each).
//
// UNSAFE: collect the subgraph (runtime/subgraph.h), rewrite the owners. O(subgraph).
// Only the sender's isolate can store into the subgraph while this runs (the owner
// check refuses everyone else), and the sender is the calling thread, so the set cannot
// change under it.
// SAFE: the same, but the owners are rewritten inside a stop-the-world pause right
// after the referrer scan (gc/referrer_scan.h) found no heap object outside the subgraph,
// no persistent handle and no global referring into it. The scan and the rewrite are one
// atomic step: no thread runs between them. While the thread waits for that pause
// (a safepoint), the collected objects are a scratch root.
#include <string>

#include "gc/referrer_scan.h"
#include "objects/child_collector.h"
#include "gc/roots.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "runtime/isolate_context.h"
#include "runtime/subgraph.h"
#include "shoal/errors.h"
#include "shoal/internal/mutation_checks.h"
#include "shoal/object_model.h"
#include "shoal/ports.h"

namespace shoal {
namespace internal {

void collect_owned_set(HeapImpl& heap, Value root, uint32_t owner, std::vector<Object*>& objects, ObjectIndex& index) {
  std::vector<Object*> stack;
  if (root.is_object()) stack.push_back(root.as_object());
  ChildCollector children(stack);
  while (!stack.empty()) {
    Object* o = stack.back();
    stack.pop_back();
    const uint64_t h = o->header_word();
    if (h & (header::kShareableMask | header::kFreezing | header::kShared)) continue;
    const uint32_t o_owner = header::owner_of(h);
    if (o_owner == 0) continue;  // unowned: shared by everyone, stays put
    if (o_owner != owner) check_owner(o, h, "transfer");
    if (!index.insert(o).second) continue;
    objects.push_back(o);
    heap.model.trace(o, children);
  }
}

std::vector<Object*> transfer_subgraph(Value root, uint32_t to_owner, bool safe, const char* what) {
  MutatorThread* self = require_running_thread(what);
  NoPreemptScope no_preempt;  // the owned set is a C++ vector between polls
  const ThreadIsolateState& where = tls_isolate;
  if (where.mode != IsolateMode::kIsolate)
    throw ThreadStateError(std::string(what) + ": only an isolate owns objects to transfer (the calling thread is " +
                           (where.mode == IsolateMode::kShared ? "in the shared isolate)" : "outside isolates)"));
  if (where.group->options.share_everything) return {};  // nothing is owned
  HeapImpl& heap = *self->heap;
  std::vector<Object*> objects;
  ObjectIndex index;
  collect_owned_set(heap, root, where.isolate->id, objects, index);
  if (objects.empty()) return objects;
  if (!safe) {
    for (Object* o : objects) o->set_owner(to_owner);
    return objects;
  }
  std::optional<std::string> referrer;
  {
    ScratchRoots keep(heap.roots, &objects);
    heap.collector.exclusive_pause(self, "transfer check", [&] {
      referrer = find_referrer_in_pause(heap, index);
      if (!referrer)
        for (Object* o : objects) o->set_owner(to_owner);
    });
  }
  if (referrer)
    throw TransferError(std::string(what) + " (SAFE): " + *referrer +
                        "; drop that reference first, copy the graph instead, or use the UNSAFE mode if the "
                        "reference will never be used");
  return objects;
}

}  // namespace internal

// --- DetachedGraph ---

struct DetachedGraph::State {
  PersistentValue root;
  uint64_t group_serial = 0;
};

DetachedGraph::DetachedGraph() = default;
DetachedGraph::DetachedGraph(DetachedGraph&&) noexcept = default;
DetachedGraph& DetachedGraph::operator=(DetachedGraph&&) noexcept = default;
DetachedGraph::~DetachedGraph() = default;
bool DetachedGraph::empty() const { return !state_; }

DetachedGraph detach(Value root, bool safe) {
  internal::transfer_subgraph(root, internal::kDetachedOwner, safe, "detach");
  DetachedGraph g;
  g.state_ = std::make_unique<DetachedGraph::State>();
  g.state_->root = PersistentValue(*current_heap(), root);
  g.state_->group_serial = internal::tls_isolate.group->serial;
  return g;
}

Value attach(DetachedGraph& graph) {
  if (!graph.state_) throw InvalidArgument("attach: the detached graph is empty (already attached, or moved from)");
  // (Before the thread-local reference below: GCC's UBSan build otherwise sees a null
  // reference after the scope's signal fence.)
  internal::NoPreemptScope no_preempt;  // the owned set is a C++ vector between polls
  const internal::ThreadIsolateState& where = internal::tls_isolate;
  if (where.mode != internal::IsolateMode::kIsolate || where.group->serial != graph.state_->group_serial)
    throw ThreadStateError("attach: the calling thread must be in an isolate of the graph's group");
  internal::MutatorThread* self = internal::current_thread();
  internal::check_heap_access(self, "attach");
  const Value root = graph.state_->root.get();
  // Only the detached owner's objects move; everything else was the boundary at detach.
  if (!where.group->options.share_everything) {
    std::vector<Object*> objects;
    internal::ObjectIndex index;
    internal::collect_owned_set(*self->heap, root, internal::kDetachedOwner, objects, index);
    for (Object* o : objects) o->set_owner(where.isolate->id);
  }
  graph.state_.reset();
  return root;
}

}  // namespace shoal
