// Shared fields (include/shoal/isolate.h, runtime/globals.h): one copy per group,
// exactly-once lazy initialisation, atomic reference reads and writes.
//
// Read fast path: phase == kDone (acquire), then an acquire load of the slot - no lock.
// First read: under mu, the first thread moves the phase to kInitializing and runs the
// initializer outside mu (it may allocate, collect, read other fields); the others wait
// on cv in the GC-safe state (run_native) until the phase is kDone or the generation
// changes (the attempt failed: they rethrow its exception). Writes go through
// Heap::store_root under mu, so a set() and an initializer's result are ordered: an
// initializer that finishes after a set() discards its value.
#include "gc/preempt_safe_lock.h"
#include "gc/roots.h"
#include "heap/heap_impl.h"
#include "runtime/globals.h"
#include "runtime/isolate_context.h"
#include "shoal/errors.h"
#include "shoal/sharing.h"

namespace shoal {

using internal::SharedFieldState;

namespace internal {
void SharedFieldState::detach_from_group() {
  internal::PreemptSafeLock lock(mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (rooted) group.load(std::memory_order_relaxed)->heap.remove_root(&slot);
  rooted = false;
  group.store(nullptr, std::memory_order_release);
}
}  // namespace internal

namespace {
// The field's group, after checking that the caller is a running thread of its heap.
internal::GroupImpl* group_for(SharedFieldState& s, const char* what) {
  internal::GroupImpl* g = s.group.load(std::memory_order_acquire);
  if (!g) throw InvalidArgument(std::string(what) + " of shared field '" + s.name + "': its isolate group has been destroyed");
  internal::require_running(g->heap.impl(), what);
  return g;
}

void check_shareable(const SharedFieldState& s, const internal::GroupImpl& g, Value v) {
  if (g.options.share_everything || is_shareable(v)) return;
  throw NotShareableError("shared field '" + s.name + "': " + internal::describe_value(v) +
                          " is not trivially shareable; freeze it, make its class deeply immutable, or "
                          "create the group with share_everything");
}
}  // namespace

SharedField::SharedField(IsolateGroup& group, std::string name, std::function<Value()> initializer)
    : state_(std::make_shared<SharedFieldState>()) {
  state_->name = std::move(name);
  state_->initializer = std::move(initializer);
  state_->group_serial = group.impl().serial;
  state_->group.store(&group.impl(), std::memory_order_release);
  group.heap().add_root(&state_->slot);
  state_->rooted = true;
  group.impl().register_field(state_);
}

SharedField::~SharedField() {
  internal::PreemptSafeLock lock(state_->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (state_->rooted) state_->group.load(std::memory_order_relaxed)->heap.remove_root(&state_->slot);
  state_->rooted = false;
}

Value SharedField::get() const {
  SharedFieldState& s = *state_;
  internal::GroupImpl* g = group_for(s, "SharedField::get");
  if (s.phase.load(std::memory_order_acquire) == SharedFieldState::kDone) return s.slot.load();
  const std::thread::id me = std::this_thread::get_id();
  internal::PreemptSafeLock lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (s.phase.load(std::memory_order_relaxed) == SharedFieldState::kInitializing) {
    if (s.initializer_thread == me)
      throw CyclicInitializationError("shared field '" + s.name + "': its initializer read it");
    const uint64_t generation = s.generation;
    std::exception_ptr error;
    lock.unlock();
    run_native([&] {
      internal::PreemptSafeLock wait_lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
      s.cv.wait(wait_lock, [&] {
        return s.phase.load(std::memory_order_relaxed) == SharedFieldState::kDone || s.generation != generation;
      });
      if (s.phase.load(std::memory_order_relaxed) != SharedFieldState::kDone) error = s.error;
    });
    if (error) std::rethrow_exception(error);
    return s.slot.load();
  }
  if (s.phase.load(std::memory_order_relaxed) == SharedFieldState::kDone) return s.slot.load();
  // This thread initialises.
  s.phase.store(SharedFieldState::kInitializing, std::memory_order_relaxed);
  s.initializer_thread = me;
  lock.unlock();
  Value v;
  try {
    if (s.initializer) v = s.initializer();
    check_shareable(s, *g, v);
  } catch (...) {
    {
      internal::PreemptSafeLock relock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
      if (s.phase.load(std::memory_order_relaxed) == SharedFieldState::kInitializing)
        s.phase.store(SharedFieldState::kUninitialized, std::memory_order_relaxed);
      s.error = std::current_exception();
      s.generation++;
      s.initializer_thread = std::thread::id();
    }
    s.cv.notify_all();
    throw;
  }
  {
    internal::PreemptSafeLock relock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    // A set() while the initializer ran wins: its value stays.
    if (s.phase.load(std::memory_order_relaxed) == SharedFieldState::kInitializing) {
      g->heap.store_root(&s.slot, v);
      s.phase.store(SharedFieldState::kDone, std::memory_order_release);
    }
    s.initializer_thread = std::thread::id();
  }
  s.cv.notify_all();
  return s.slot.load();
}

void SharedField::set(Value value) {
  SharedFieldState& s = *state_;
  internal::GroupImpl* g = group_for(s, "SharedField::set");
  check_shareable(s, *g, value);
  {
    internal::PreemptSafeLock lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    g->heap.store_root(&s.slot, value);
    s.phase.store(SharedFieldState::kDone, std::memory_order_release);
  }
  s.cv.notify_all();
}

bool SharedField::is_initialized() const {
  return state_->phase.load(std::memory_order_acquire) == SharedFieldState::kDone;
}

const std::string& SharedField::name() const { return state_->name; }

}  // namespace shoal
