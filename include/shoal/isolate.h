// Isolate groups, isolates, isolated globals, shared fields and the shared isolate
// (docs/sharing.md). The model is the Dart shared-memory proposal's on Shoal's one heap:
//
//   shoal::IsolateGroup group;                        // owns one Heap
//   shoal::Isolate& a = group.create_isolate("a");
//   shoal::SharedField config(group, "config", [] { return shoal::String::create("v1").value(); });
//   shoal::IsolatedGlobal counter(group, "counter", [] { return shoal::Value::from_int(0); });
//   {
//     shoal::IsolateScope in_a(a);                    // enter (attaches the thread)
//     counter.set(shoal::Value::from_int(1));         // a's own copy
//     shoal::Value c = config.get();                  // the group's one copy
//     shoal::run_shared([&] { config.get(); });       // only shared state reachable
//   }
//
// Ownership: every object records the isolate that allocated it (header owner bits,
// set by the allocating thread's TLAB). A mutable object may be written only by its own
// isolate - anyone else gets IncorrectDereferenceError (IsolationError from the shared
// isolate) - and, with checked_reads, read only by it. Frozen, deeply immutable and
// shareable objects are free for all to read. Objects allocated outside any isolate, in
// the shared isolate or in a share_everything group have no owner.
//
// Thread states: IsolateScope and run_shared may be used by any thread that is not
// attached to another heap; they attach it for their duration. Everything else here
// that takes or returns a raw reference needs the calling thread attached to the
// group's heap and running (ThreadStateError / NotAttached otherwise).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "shoal/heap.h"
#include "shoal/value.h"

namespace shoal {

namespace internal {
class GroupImpl;
class IsolateImpl;
struct IsolatedGlobalDecl;
struct SharedFieldState;
struct PortState;
}  // namespace internal

struct IsolateGroupOptions {
  HeapOptions heap;
  // The proposal's second stage: shared fields accept any value, and objects have no
  // owner (no ownership checks); freeze and deeply immutable classes still hold.
  bool share_everything = false;
  // Check reads too: Ref<T>::operator-> on another isolate's mutable object throws
  // IncorrectDereferenceError (IsolationError in the shared isolate). Costs a load and a
  // branch per dereference in every group of the process while any group has it on.
  bool checked_reads = false;
  std::string name = "group";
};

class IsolateGroup;

// An isolate: a set of objects (those its threads allocate) and its own copy of every
// isolated global. Created by IsolateGroup::create_isolate, destroyed with the group.
class Isolate {
 public:
  uint32_t id() const;  // the owner id in object headers (1, 2, ...)
  const std::string& name() const;
  IsolateGroup& group() const;
  // True while some thread has entered it (a snapshot; another thread may change it).
  bool is_entered() const;
  internal::IsolateImpl& impl() const { return *impl_; }

 private:
  friend class internal::IsolateImpl;
  explicit Isolate(internal::IsolateImpl* impl) : impl_(impl) {}
  internal::IsolateImpl* impl_;
};

class IsolateGroup {
 public:
  IsolateGroup();
  explicit IsolateGroup(IsolateGroupOptions options);
  // No thread may be inside one of its isolates or its shared isolate (the process
  // aborts with a message, as ~Heap does for attached threads).
  ~IsolateGroup();
  IsolateGroup(const IsolateGroup&) = delete;
  IsolateGroup& operator=(const IsolateGroup&) = delete;

  Heap& heap();
  const IsolateGroupOptions& options() const;
  // A new isolate (any thread). Throws InvalidArgument once 2^22 - 2 isolates exist.
  Isolate& create_isolate(std::string name);
  size_t isolate_count() const;

  internal::GroupImpl& impl() { return *impl_; }

 private:
  std::unique_ptr<internal::GroupImpl> impl_;
};

struct TryEnter {};
inline constexpr TryEnter try_enter{};

// Enters an isolate for the scope's lifetime: attaches the thread to the group's heap
// (as a MutatorScope), waits - in the GC-safe state - until no other thread is in the
// isolate, and makes this thread's allocations belong to it. With shoal::try_enter it
// throws IsolateBusyError instead of waiting.
//
// Nesting: entering the isolate the thread is already in just nests. Entering another
// isolate (or shoal::run_in) suspends the current one: the thread leaves it, so another
// thread may enter it meanwhile (no deadlock when two isolates call into each other), and
// re-enters it - waiting if need be - when the inner scope ends. Inside the inner scope
// the outer isolate's mutable objects are foreign like any other isolate's.
class IsolateScope {
 public:
  explicit IsolateScope(Isolate& isolate);
  IsolateScope(Isolate& isolate, TryEnter);
  ~IsolateScope();
  IsolateScope(const IsolateScope&) = delete;
  IsolateScope& operator=(const IsolateScope&) = delete;

 private:
  void enter(Isolate& isolate, bool wait);
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

// Runs `f` in the group's shared isolate on the calling thread, without waiting for any
// isolate: only shared state is reachable there. Reading an isolated global throws
// IsolationError, and so does a store into (or, with checked_reads, a read of) a mutable
// object an isolate owns. Objects allocated in it have no owner. The thread's isolate,
// if any, stays entered and is current again when f returns.
class SharedIsolateScope {
 public:
  explicit SharedIsolateScope(IsolateGroup& group);
  ~SharedIsolateScope();
  SharedIsolateScope(const SharedIsolateScope&) = delete;
  SharedIsolateScope& operator=(const SharedIsolateScope&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

// The isolate the calling thread has entered (null outside isolates and in the shared
// isolate), and whether it runs in a shared isolate.
Isolate* current_isolate();
bool in_shared_isolate();
// The group of the isolate (or shared isolate) the thread is in, or null.
IsolateGroup* current_group();

// Runs f synchronously in `isolate` (IsolateScope semantics) and returns its result.
template <class F>
decltype(auto) run_in(Isolate& isolate, F&& f) {
  IsolateScope scope(isolate);
  return std::forward<F>(f)();
}

template <class F>
decltype(auto) run_shared(IsolateGroup& group, F&& f) {
  SharedIsolateScope scope(group);
  return std::forward<F>(f)();
}
// In the shared isolate of the calling thread's current group (NotAttached if it is in
// no group's isolate).
IsolateGroup& require_current_group(const char* what);
template <class F>
decltype(auto) run_shared(F&& f) {
  return run_shared(require_current_group("run_shared"), std::forward<F>(f));
}

// An isolated global: every isolate of the group has its own copy, initialised on its
// first read in that isolate by `initializer` (or null without one). Reading it in the
// shared isolate throws IsolationError naming it; outside the group's isolates,
// ThreadStateError. An initializer that throws leaves this isolate's copy uninitialised
// (the next read runs it again); one that reads its own global throws
// CyclicInitializationError. A set() while the initializer runs wins over its result.
// An initializer that suspends the isolate (run_in another one) lets another thread
// enter and read the global: that thread runs the initializer too, and the first
// attempt to finish (or a set() meanwhile) gives every reader the value. The handle may
// be destroyed before or after the group (and on any thread, also while the group is
// being destroyed on another). Destroying it drops every isolate's copy and the value it
// kept alive - at once in an isolate no other thread holds, else when the thread holding
// it next reads a global or leaves it - and the group reuses its slot.
class IsolatedGlobal {
 public:
  IsolatedGlobal(IsolateGroup& group, std::string name, std::function<Value()> initializer = {});
  ~IsolatedGlobal();
  IsolatedGlobal(const IsolatedGlobal&) = delete;
  IsolatedGlobal& operator=(const IsolatedGlobal&) = delete;

  Value get() const;
  void set(Value value);
  bool is_initialized() const;  // in the current isolate
  const std::string& name() const;

 private:
  std::shared_ptr<internal::IsolatedGlobalDecl> decl_;
};

// A shared field: one copy per group, visible to every isolate and the shared isolate.
// Reads and writes of the reference are atomic (acquire / release, and a write is never
// lost to a concurrent collection). Initialisation is lazy and exactly once: the first
// get() runs `initializer` while concurrent first readers wait, in the GC-safe state,
// for its result; if it throws, the field stays uninitialised and every waiter gets the
// same exception (the next get() tries again). A set() before the first get() skips
// the initializer. Without share_everything the field accepts only shareable values
// (is_shareable); anything else throws NotShareableError naming the field and the value's
// class, and the field keeps its value.
class SharedField {
 public:
  SharedField(IsolateGroup& group, std::string name, std::function<Value()> initializer = {});
  ~SharedField();
  SharedField(const SharedField&) = delete;
  SharedField& operator=(const SharedField&) = delete;

  Value get() const;
  void set(Value value);
  bool is_initialized() const;  // any thread
  const std::string& name() const;

 private:
  std::shared_ptr<internal::SharedFieldState> state_;
};

}  // namespace shoal
