// shoal::freeze: a deep, one-way freeze that is safe while other threads read, write or
// freeze the same objects (include/shoal/sharing.h).
//
// Two header tags (include/shoal/object.h): kFreezing ("claimed": every mutation is
// refused from now on) and kFrozen ("this object and everything it reaches is frozen").
// The mutation checks (barriers/mutation_checks.h) refuse a store into an object with
// either, and they test the holder's header before the store, with no safepoint in
// between. The algorithm:
//
//   1. Explore: from the root, with an explicit stack (no recursion, any depth), collect
//      every object reachable through strong slots that is not already kFrozen (nor
//      trivially shareable: heap atomics stay mutable in a frozen graph), checking
//      each one's owner as a store would (IncorrectDereferenceError / IsolationError).
//      Nothing is tagged yet, so an error leaves the graph unchanged.
//   2. Claim: set kFreezing on every collected object.
//   3. Settle: a writer may have passed its check just before the claim and not yet
//      stored. A handshake with every thread waits those stores out (a running thread
//      answers only at a safepoint, after its store; a thread in native is not mid-
//      store), after which every store into a claimed object is refused. Rescan the
//      slots of the objects claimed before the handshake; anything new that a late
//      store put there is explored, claimed, and settled the same way. The rounds end
//      when one finds nothing new. When every claimed object belongs to the calling
//      thread's own isolate and none is kShared, no other thread can have been mid-
//      store into them (only the isolate's holder passes the owner check), so the
//      handshake and rescan are skipped: freezing an isolate's own graph costs one walk.
//   4. Publish: set kFrozen on every claimed object.
//
// Overlapping freezes: a freezer that meets an object another freezer has claimed but
// not finished (kFreezing without kFrozen) explores it like any other and settles it
// itself, so each call returns only after its whole graph is claimed and settled. An
// object already kFrozen is skipped: whoever set that bit had claimed and settled
// everything behind it. (is_frozen(y) of an object reached only through an object
// another thread is still freezing may read false until that freeze publishes it; y
// already refuses every mutation.)
//
// The collected objects sit in a C++ vector. Explore, claim and publish reach no
// safepoint, and the objects were reachable when collected (the sweeper frees only
// objects that were unreachable at a pause), so none can be freed under them. The
// handshake is a safepoint: while waiting for the collector's lock the thread is in
// native and a collection may run, and by then a racing writer may have unlinked a
// found object from the graph. So around the handshakes the vector is a registered
// root (gc/roots.h, ScratchRoots).
#include <vector>

#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "objects/child_collector.h"
#include "objects/object_index.h"
#include "shoal/errors.h"
#include "shoal/internal/mutation_checks.h"
#include "shoal/object_model.h"
#include "shoal/sharing.h"

namespace shoal {

namespace {
using internal::ChildCollector;

class Freezer {
 public:
  Freezer(internal::HeapImpl& heap) : model_(heap.model) {}

  // Explores from `start`, appending newly found objects to claimed_. `check`: refuse
  // foreign objects (phase 1); later rounds take whatever late stores put there.
  void explore(std::vector<Object*>& stack, bool check) {
    ChildCollector children(stack);
    while (!stack.empty()) {
      Object* o = stack.back();
      stack.pop_back();
      const uint64_t h = o->header_word();
      // Frozen: done already. Trivially shareable (heap atomics, ports): shareable as
      // they are and meant to stay mutable inside a frozen graph - left alone.
      if (h & (header::kFrozen | header::kTriviallyShareable)) continue;
      if (!seen_.insert(o).second) continue;
      // The owner check of a store, on the header word read above (a claim by another
      // freezer since then must not turn into an InvalidMutabilityError here).
      if (check && !(h & header::kFreezing)) internal::check_owner(o, h, "freeze");
      if (!own_object(h)) foreign_ = true;
      found_.push_back(o);
      model_.trace(o, children);
    }
  }

  // Claims everything found since the last claim; returns the range claimed.
  std::pair<size_t, size_t> claim() {
    const size_t from = claimed_;
    for (; claimed_ < found_.size(); ++claimed_) found_[claimed_]->add_tags(header::kFreezing);
    return {from, claimed_};
  }

  // Late stores into found_[from, to): explores what they put there (unchecked).
  void rescan(size_t from, size_t to) {
    std::vector<Object*> stack;
    ChildCollector children(stack);
    for (size_t i = from; i < to; ++i) model_.trace(found_[i], children);
    explore(stack, /*check=*/false);
  }

  void publish() {
    for (Object* o : found_) o->add_tags(header::kFrozen);
  }

  bool needs_handshake() const { return foreign_; }
  const std::vector<Object*>* found() const { return &found_; }

 private:
  // Only the calling thread can store into it: owned by this thread's isolate (store
  // key non-zero and equal), not kShared.
  static bool own_object(uint64_t h) {
    const uint64_t key = internal::tls_owner_key & header::kOwnerMask;
    return key != 0 && (h & header::kOwnerMask) == key && !(h & header::kShared);
  }

  const ObjectModel& model_;
  std::vector<Object*> found_;
  internal::ObjectIndex seen_;
  size_t claimed_ = 0;
  bool foreign_ = false;
};
}  // namespace

void freeze(Value root) {
  if (!root.is_object()) return;
  internal::MutatorThread* self = internal::current_thread();
  if (!self) throw NotAttached("freeze on a thread that is not attached to a heap");
  internal::check_heap_access(self, "freeze");
  internal::check_object_heap(self, root.as_object(), "freeze");
  if (root.as_object()->is_frozen()) return;
  internal::HeapImpl& heap = *self->heap;
  // The found objects sit in a C++ vector between polls: asynchronous preemption must
  // not put a pause there (the settling handshakes are genuine polls, covered above).
  internal::NoPreemptScope no_preempt;

  Freezer freezer(heap);
  std::vector<Object*> stack{root.as_object()};
  freezer.explore(stack, /*check=*/true);
  auto [from, to] = freezer.claim();
  if (freezer.needs_handshake()) {
    internal::ScratchRoots keep(heap.roots, freezer.found());
    while (from != to) {
      heap.collector.handshake_all(self, [](internal::MutatorThread&) {});
      freezer.rescan(from, to);
      std::tie(from, to) = freezer.claim();
    }
  }
  freezer.publish();
}

}  // namespace shoal
