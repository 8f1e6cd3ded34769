// Message ports, transfer, and detached graphs (docs/sharing.md).
//
//   shoal::ReceivePort inbox(b);                          // messages land in isolate b
//   shoal::SendPort to_b = inbox.send_port();             // copyable, any thread
//   to_b.send(frozen_config);                             // shareable: by reference
//   to_b.send(mutable_list, shoal::SendMode::kCopy);      // deep copy owned by b
//   to_b.send(mutable_list, shoal::SendMode::kTransfer);  // ownership moves to b
//   ...in b:  shoal::Value v = inbox.receive();           // or receive_for(timeout)
//
// Send modes:
//   kShare     the value must be shareable (is_shareable): the reference itself is
//              queued, zero copy. NotShareableError otherwise.
//   kCopy      shareable values are shared as above; anything else is deep-copied into
//              the receiver's isolate on the sender's thread: every mutable object
//              reachable from the value gets a copy owned by the receiver, with cycles and
//              sharing preserved (one copy per object, no recursion); shareable objects
//              inside are not copied but referenced.
//   kTransfer  the mutable objects the sender's isolate owns that the value reaches
//              change owner to the receiver: no copy, and any later store by the sender
//              into them is refused (IncorrectDereferenceError; reads too, with
//              checked_reads). SAFE: first proves that nothing outside the subgraph
//              still refers into it - no heap object outside it, no persistent handle or
//              global - in one stop-the-world pass over the live heap, and throws
//              TransferError (naming a referrer's class) otherwise. Stacks do not count:
//              references the sender still has on its stack become foreign.
//   kTransferUnsafe  the same ownership change without the proof: O(subgraph), no pause;
//              the caller promises that no other reference into it remains.
// A value that reaches another isolate's mutable object cannot be copied or transferred
// (IncorrectDereferenceError); nothing is sent then and nothing changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "shoal/errors.h"
#include "shoal/isolate.h"
#include "shoal/value.h"

namespace shoal {

namespace internal {
struct PortState;
}

enum class SendMode : uint8_t { kShare, kCopy, kTransfer, kTransferUnsafe };

// SAFE transfer or detach found a reference into the subgraph from outside it; nothing
// was transferred.
class TransferError : public Error {
 public:
  using Error::Error;
};

// Receive on a closed port with no messages left, or send to one.
class PortClosedError : public Error {
 public:
  using Error::Error;
};

// The sending end: a small handle (copyable, movable), usable from any thread of the
// port's group heap that is running - a sent reference must be on a scanned stack.
class SendPort {
 public:
  SendPort() = default;
  // Queues `value` for the port's receiver in `mode` (see the file comment). Throws
  // PortClosedError once the port is closed.
  void send(Value value, SendMode mode = SendMode::kCopy) const;
  bool is_closed() const;
  explicit operator bool() const { return state_ != nullptr; }
  friend bool operator==(const SendPort& a, const SendPort& b) { return a.state_ == b.state_; }

 private:
  friend class ReceivePort;
  explicit SendPort(std::shared_ptr<internal::PortState> s) : state_(std::move(s)) {}
  std::shared_ptr<internal::PortState> state_;
};

// The receiving end, owned by one isolate: only a thread that has entered that isolate
// may receive (ThreadStateError otherwise). Unreceived messages stay alive (they are
// roots) until received or the port is destroyed.
class ReceivePort {
 public:
  explicit ReceivePort(Isolate& owner);
  ~ReceivePort();  // closes the port; queued messages are dropped
  ReceivePort(const ReceivePort&) = delete;
  ReceivePort& operator=(const ReceivePort&) = delete;

  SendPort send_port() const;
  Isolate& isolate() const;

  // Blocks (GC-safe) until a message arrives; PortClosedError when the port is closed
  // and empty. The waits of receive, receive_for and dispatch are cancellable: under a
  // cancelled token (a task of a pool shut down with shutdown_now, a cancelled Thread
  // or TaskGroup) they throw CancelledError.
  Value receive();
  // Waits at most `timeout`; nullopt when none arrived (or the port is closed and empty).
  std::optional<Value> receive_for(std::chrono::nanoseconds timeout);
  std::optional<Value> try_receive();
  // The callback form: runs `handler` on the calling thread (which must be in the
  // port's isolate) for each message queued now or arriving within `timeout`, up to
  // `max` messages; returns how many it ran. An exception from the handler propagates;
  // the messages behind it stay queued.
  size_t dispatch(const std::function<void(Value)>& handler, std::chrono::nanoseconds timeout = {},
                  size_t max = SIZE_MAX);
  size_t pending() const;
  void close();

 private:
  std::shared_ptr<internal::PortState> state_;
};

// A subgraph taken out of its isolate (Kotlin/Native's DetachedObjectGraph): no isolate
// owns it while detached, so nobody may write it, and any thread may attach it later to
// the isolate it is in. Native code can park it in its own data structures; it keeps the
// graph alive. Move-only; attach empties it.
class DetachedGraph {
 public:
  DetachedGraph();
  DetachedGraph(DetachedGraph&&) noexcept;
  DetachedGraph& operator=(DetachedGraph&&) noexcept;
  ~DetachedGraph();
  bool empty() const;

 private:
  friend DetachedGraph detach(Value root, bool safe);
  friend Value attach(DetachedGraph& graph);
  struct State;
  std::unique_ptr<State> state_;
};

// Detaches the mutable objects of the caller's isolate reachable from `root` (checked
// like a SAFE transfer unless `safe` is false). The calling thread must be in an
// isolate. Shareable values detach trivially (nothing changes owner).
DetachedGraph detach(Value root, bool safe = true);
// Makes the current isolate the owner of a detached graph and returns its root; the
// handle is empty afterwards. The calling thread must be in an isolate of the graph's
// group (ThreadStateError otherwise; InvalidArgument for an empty handle).
Value attach(DetachedGraph& graph);

}  // namespace shoal
