// Message ports (include/shoal/ports.h).
//
// A PortState is shared by the ReceivePort and every SendPort copy. Queued messages are
// PersistentValues (roots), so a message stays alive from send to receive whatever
// collections run in between, and the receiving thread turns it back into a raw
// reference only once it is running in the receiving isolate. The queue's lock is a
// leaf: handles are created before it is taken and destroyed after it is released.
// Receivers wait on the condition variable in the GC-safe state (run_native).
#include <deque>
#include <mutex>

#include "gc/preempt_safe_lock.h"
#include "gc/roots.h"
#include "heap/heap_impl.h"
#include "runtime/isolate_context.h"
#include "runtime/port_state.h"
#include "runtime/subgraph.h"
#include "shoal/ports.h"
#include "shoal/sharing.h"

namespace shoal {
namespace internal {


namespace {
// The port's group, or PortClosedError once the group is gone.
GroupImpl* live_group(const PortState& s, const char* what) {
  GroupImpl* g = s.group.load(std::memory_order_acquire);
  if (!g) throw PortClosedError(std::string(what) + ": the port's isolate group has been destroyed");
  return g;
}

void require_receiver(const PortState& s, const char* what) {
  GroupImpl* g = live_group(s, what);
  if (tls_isolate.mode != IsolateMode::kIsolate || tls_isolate.isolate != s.owner)
    throw ThreadStateError(std::string(what) + ": only a thread in the port's isolate '" + s.owner->name +
                           "' may receive from it");
  require_running(g->heap.impl(), what);
}

// Pops a message; false if none. Call with the lock held.
bool pop_locked(PortState& s, PersistentValue& out) {
  if (s.queue.empty()) return false;
  out = std::move(s.queue.front());
  s.queue.pop_front();
  return true;
}

// Waits (GC-safe) until a message is queued, the port is closed, or `deadline` - or
// the calling task is cancelled (CancelledError naming `what`): a receive blocks in the
// library like any other wait, so a pool's shutdown_now() or a cancelled token ends it.
bool wait_for_message(PortState& s, PersistentValue& out, Clock::time_point deadline, const char* what) {
  for (;;) {
    const uint32_t seen = s.wake.load(std::memory_order_acquire);
    {
      internal::PreemptSafeLock lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
      if (pop_locked(s, out)) return true;
      if (s.closed) return false;
    }
    check_cancelled_in(what);
    if (!park(s.wake, seen, deadline, /*cancellable=*/true)) {
      internal::PreemptSafeLock lock(s.mu);  // (the deadline passed: a last look)
      return pop_locked(s, out);
    }
  }
}
}  // namespace
}  // namespace internal

using internal::PortState;

void SendPort::send(Value value, SendMode mode) const {
  if (!state_) throw InvalidArgument("SendPort::send: an empty SendPort");
  PortState& s = *state_;
  internal::GroupImpl* group = internal::live_group(s, "SendPort::send");
  internal::require_running(group->heap.impl(), "SendPort::send");
  {
    internal::PreemptSafeLock lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (s.closed) throw PortClosedError("SendPort::send: the port of isolate '" + s.owner->name + "' is closed");
  }
  Value message = value;
  // A transfer the port refuses after all - closed while the graph moved, or the
  // message's handle not made - hands the graph back: a failed send changes nothing.
  // (Emptied once the message is queued.)
  struct Rollback {
    std::vector<Object*> moved;
    uint32_t from = 0;
    ~Rollback() {
      for (Object* o : moved) o->set_owner(from);
    }
  } rollback;
  if (internal::tls_isolate.isolate != nullptr) rollback.from = internal::tls_isolate.isolate->id;
  if (!is_shareable(value)) {
    const uint32_t to = group->options.share_everything ? 0 : s.owner->id;
    switch (mode) {
      case SendMode::kShare:
        throw NotShareableError("SendPort::send(kShare): " + internal::describe_value(value) +
                                " is not shareable; freeze it, or send it with kCopy or kTransfer");
      case SendMode::kCopy:
        message = internal::deep_copy(value, to);
        break;
      case SendMode::kTransfer:
        rollback.moved = internal::transfer_subgraph(value, to, /*safe=*/true, "SendPort::send(kTransfer)");
        break;
      case SendMode::kTransferUnsafe:
        rollback.moved = internal::transfer_subgraph(value, to, /*safe=*/false, "SendPort::send(kTransferUnsafe)");
        break;
    }
  }
  PersistentValue handle(group->heap, message);
  {
    internal::PreemptSafeLock lock(s.mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (s.closed) throw PortClosedError("SendPort::send: the port of isolate '" + s.owner->name + "' is closed");
    s.queue.push_back(std::move(handle));
    rollback.moved.clear();
  }
  internal::bump_and_unpark(s.wake, 1);
}

bool SendPort::is_closed() const {
  if (!state_) return true;
  internal::PreemptSafeLock lock(state_->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return state_->closed;
}

ReceivePort::ReceivePort(Isolate& owner) : state_(std::make_shared<PortState>()) {
  state_->owner = &owner.impl();
  state_->group.store(owner.impl().group, std::memory_order_release);
  owner.impl().group->register_port(state_);
}

ReceivePort::~ReceivePort() { close(); }

SendPort ReceivePort::send_port() const { return SendPort(state_); }
Isolate& ReceivePort::isolate() const {
  internal::live_group(*state_, "ReceivePort::isolate");
  return state_->owner->facade;
}

void ReceivePort::close() { state_->close_and_take(); }

Value ReceivePort::receive() {
  internal::require_receiver(*state_, "ReceivePort::receive");
  PersistentValue m;
  if (!internal::wait_for_message(*state_, m, internal::Clock::time_point::max(), "ReceivePort::receive"))
    throw PortClosedError("ReceivePort::receive: the port is closed and empty");
  return m.get();
}

std::optional<Value> ReceivePort::receive_for(std::chrono::nanoseconds timeout) {
  internal::require_receiver(*state_, "ReceivePort::receive_for");
  PersistentValue m;
  if (!internal::wait_for_message(*state_, m, internal::deadline_after(timeout), "ReceivePort::receive_for")) return std::nullopt;
  return m.get();
}

std::optional<Value> ReceivePort::try_receive() {
  internal::require_receiver(*state_, "ReceivePort::try_receive");
  PersistentValue m;
  {
    internal::PreemptSafeLock lock(state_->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (!internal::pop_locked(*state_, m)) return std::nullopt;
  }
  return m.get();
}

size_t ReceivePort::dispatch(const std::function<void(Value)>& handler, std::chrono::nanoseconds timeout, size_t max) {
  internal::require_receiver(*state_, "ReceivePort::dispatch");
  const auto deadline = internal::deadline_after(timeout);
  size_t ran = 0;
  while (ran < max) {
    PersistentValue m;
    if (!internal::wait_for_message(*state_, m, deadline, "ReceivePort::dispatch")) break;
    const Value v = m.get();
    ++ran;
    handler(v);
  }
  return ran;
}

size_t ReceivePort::pending() const {
  internal::PreemptSafeLock lock(state_->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return state_->queue.size();
}

}  // namespace shoal
