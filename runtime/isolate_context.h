// Isolate groups and isolates (internal side of include/shoal/isolate.h).
//
// Per thread, tls_isolate records where the thread runs: outside any isolate, in an
// isolate it has entered, or in a group's shared isolate (keeping the isolate it had
// entered, if any, as `isolate`: it stays entered and becomes current again when the
// shared scope ends). set_thread_isolate keeps three things in step: tls_isolate, the
// store key tls_owner_key (include/shoal/internal/mutation_checks.h) and the owner bits
// the thread's TLABs stamp into new headers (MutatorState::owner_bits).
//
// Isolate exclusivity: an IsolateImpl has one holder thread at a time (mu + cv). A
// thread waiting to enter waits in the GC-safe state (run_native), so collections and
// handshakes proceed without it. The holder hand-off through mu orders everything the
// previous holder did before everything the next one does, which is what lets the owner
// check run on a plain header load: only the holder can store into the isolate's
// objects, every other writer is refused before its store.
//
// Lock order: GroupImpl::mu_ and IsolateImpl::mu are leaves with respect to the heap's
// locks: nothing is allocated, and no handle created or destroyed, while holding them
// (the group destructor drops the isolates' globals after releasing them).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shoal/isolate.h"
#include "shoal/persistent.h"

namespace shoal::internal {

enum class IsolateMode : uint8_t { kOutside, kIsolate, kShared };

struct ThreadIsolateState {
  GroupImpl* group = nullptr;
  IsolateImpl* isolate = nullptr;  // entered (in kShared: the one suspended underneath)
  IsolateMode mode = IsolateMode::kOutside;
};
extern constinit thread_local ThreadIsolateState tls_isolate;

// Makes `state` the calling thread's (the thread must be attached to state.group's heap
// unless state.mode is kOutside).
void set_thread_isolate(const ThreadIsolateState& state);

// One isolate's copy of an isolated global. Touched only by the isolate's holder thread.
// `initializing`: the threads inside its initializer - more than one when an initializer
// suspended the isolate (run_in another) and another thread entered and read it.
struct GlobalCell {
  uint64_t serial = 0;  // IsolatedGlobalDecl::serial of the global it belongs to
  PersistentValue value;
  enum class Phase : uint8_t { kUninitialized, kInitializing, kDone } phase = Phase::kUninitialized;
  std::vector<std::thread::id> initializing;
};

class IsolateImpl {
 public:
  IsolateImpl(GroupImpl* group, uint32_t id, std::string name)
      : group(group), id(id), name(std::move(name)), facade(this) {}

  // Takes the isolate for the calling thread: waits (GC-safe) if `wait`, else returns
  // false when another thread holds it. The thread must be attached.
  bool acquire(bool wait);
  void release();
  bool held_by_me() const;
  bool is_entered() const;

  // The cell of global `index` (declaration `serial`) for this isolate (holder thread
  // only). A cell of an earlier, destroyed global with the same index is replaced.
  GlobalCell& global_cell(size_t index, uint64_t serial);
  // A destroyed global's cell: returned (to be destroyed outside every lock) when no
  // other thread holds the isolate, else left for the holder to drop at its next
  // global access or when it leaves the isolate.
  std::unique_ptr<GlobalCell> take_global(size_t index, uint64_t serial);
  void drop_globals() { globals_.clear(); }
  // The isolate's owner (an actor, a worker) is gone: every isolated global's copy is
  // dropped now - or, while a thread holds the isolate, when it leaves - instead of with
  // the group. (The isolate itself, and its id, stay: objects and ports may still name
  // it.)
  void retire();

  GroupImpl* const group;
  const uint32_t id;
  const std::string name;
  Isolate facade;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::thread::id holder_;
  std::vector<std::unique_ptr<GlobalCell>> globals_;
  std::vector<std::pair<size_t, uint64_t>> pending_drops_;  // guarded by mu_: (index, serial)
  bool retired_ = false;                                    // guarded by mu_: drop every cell
  std::atomic<bool> has_pending_drops_{false};
  // The holder's side of take_global: drops the cells left for it; true if any.
  void drop_pending_globals();
  std::unique_ptr<GlobalCell> take_cell_locked(size_t index, uint64_t serial);  // (mu_ held or holder)
};

class GroupImpl {
 public:
  GroupImpl(IsolateGroup* facade, IsolateGroupOptions options);
  ~GroupImpl();

  IsolateImpl& create_isolate(std::string name);
  // The isolate with this owner id, or null (any thread).
  IsolateImpl* find_isolate(uint32_t id) const;
  size_t isolate_count() const;
  // "isolate 'name' (#id)", for error messages.
  std::string describe_isolate(uint32_t id) const;

  // Isolated globals and shared fields register here so the group can detach them
  // from its heap when it is destroyed first. A global's index is reused once its
  // handle is destroyed (unregister_global, with decl.mu held).
  size_t register_global(std::shared_ptr<IsolatedGlobalDecl> decl);
  void unregister_global(const IsolatedGlobalDecl& decl);
  // Global indices in use now (for tests).
  size_t registered_globals() const;
  void register_field(std::shared_ptr<SharedFieldState> field);
  void register_port(std::shared_ptr<PortState> port);
  // Field registrations held now, dropped ones not yet forgotten included (for tests).
  size_t registered_fields() const;

  IsolateGroup* const facade;
  const IsolateGroupOptions options;
  Heap heap;
  const uint64_t serial;                // unique per process: identifies the group
  std::atomic<int> threads_inside{0};   // live IsolateScopes and SharedIsolateScopes

 private:
  mutable std::mutex mu_;
  std::deque<IsolateImpl> isolates_;    // index id - 1; stable addresses
  std::atomic<size_t> isolate_count_{0};
  std::vector<std::weak_ptr<IsolatedGlobalDecl>> globals_;  // by index; empty: free
  std::vector<size_t> free_global_indices_;
  std::vector<std::weak_ptr<SharedFieldState>> fields_;
  std::vector<std::weak_ptr<PortState>> ports_;
  size_t fields_prune_at_ = 16, ports_prune_at_ = 16;  // (register_field / register_port)
};

// The per-thread owner key for `state` (0 unless in an isolate of a group that checks
// ownership).
uint64_t owner_key_for(const ThreadIsolateState& state);

}  // namespace shoal::internal
