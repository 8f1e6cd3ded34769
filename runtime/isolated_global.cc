// Isolated globals (include/shoal/isolate.h, runtime/globals.h): one copy per isolate,
// initialised lazily by the isolate's holder thread. No lock on the read path: only the
// thread that has entered the isolate touches its cells.
#include <algorithm>

#include "gc/preempt_safe_lock.h"
#include "gc/roots.h"
#include "runtime/globals.h"
#include "runtime/isolate_context.h"
#include "shoal/errors.h"

namespace shoal {

using internal::GlobalCell;
using internal::IsolateMode;
using internal::tls_isolate;

namespace {
std::atomic<uint64_t> g_next_global_serial{1};

// The calling thread's cell of `decl`, after the isolation checks.
GlobalCell& cell_for(const internal::IsolatedGlobalDecl& decl, const char* what) {
  internal::GroupImpl* group = decl.group.load(std::memory_order_acquire);
  auto who = [&] { return std::string(what) + " of isolated global '" + decl.name + "'"; };
  if (!group) throw InvalidArgument(who() + ": its isolate group has been destroyed");
  if (tls_isolate.group != group || tls_isolate.mode == IsolateMode::kOutside)
    throw ThreadStateError(who() + ": the calling thread is not in an isolate of its group");
  if (tls_isolate.mode == IsolateMode::kShared)
    throw IsolationError(who() + " from the shared isolate: isolated globals have one copy per isolate, and "
                               "shared code sees none (use a SharedField for state shared by the group)");
  internal::require_running(group->heap.impl(), what);
  return tls_isolate.isolate->global_cell(decl.index, decl.serial);
}
}  // namespace

IsolatedGlobal::IsolatedGlobal(IsolateGroup& group, std::string name, std::function<Value()> initializer)
    : decl_(std::make_shared<internal::IsolatedGlobalDecl>()) {
  decl_->name = std::move(name);
  decl_->initializer = std::move(initializer);
  decl_->group_serial = group.impl().serial;
  decl_->serial = g_next_global_serial.fetch_add(1, std::memory_order_relaxed);
  decl_->group.store(&group.impl(), std::memory_order_release);
  decl_->index = group.impl().register_global(decl_);
}

// Gives the index back and drops every isolate's copy (the group's side:
// GroupImpl::unregister_global). decl_->mu keeps the group alive meanwhile: a group
// being destroyed on another thread waits for it before it forgets this global.
IsolatedGlobal::~IsolatedGlobal() {
  internal::PreemptSafeLock lock(decl_->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (internal::GroupImpl* group = decl_->group.load(std::memory_order_acquire)) group->unregister_global(*decl_);
}

// A first read runs the initializer. An initializer may suspend the isolate (run_in
// another isolate), and another thread may then enter it and read the global too: that
// thread runs an attempt of its own (waiting for the first would deadlock - the first
// must enter this isolate again to finish). Whichever attempt finishes first - or a
// set() meanwhile, also one from inside the initializer, as for SharedField - wins; a
// later one returns that value and drops its own. A read from inside the same thread's
// own attempt is a cycle.
Value IsolatedGlobal::get() const {
  GlobalCell& cell = cell_for(*decl_, "get");
  if (cell.phase == GlobalCell::Phase::kDone) return cell.value.get();
  const std::thread::id me = std::this_thread::get_id();
  if (std::find(cell.initializing.begin(), cell.initializing.end(), me) != cell.initializing.end())
    throw CyclicInitializationError("isolated global '" + decl_->name + "': its initializer read it");
  Value v;
  if (decl_->initializer) {
    cell.phase = GlobalCell::Phase::kInitializing;
    cell.initializing.push_back(me);
    auto leave = [&] {
      std::erase(cell.initializing, me);
      if (cell.initializing.empty() && cell.phase == GlobalCell::Phase::kInitializing)
        cell.phase = GlobalCell::Phase::kUninitialized;
    };
    try {
      v = decl_->initializer();
    } catch (...) {
      leave();
      throw;
    }
    leave();
  }
  if (cell.phase == GlobalCell::Phase::kDone) return cell.value.get();  // another attempt or a set() won
  if (cell.value.empty()) cell.value = PersistentValue(decl_->group.load()->heap, v);
  else cell.value.set(v);
  cell.phase = GlobalCell::Phase::kDone;
  return v;
}

void IsolatedGlobal::set(Value value) {
  GlobalCell& cell = cell_for(*decl_, "set");
  if (cell.value.empty()) cell.value = PersistentValue(decl_->group.load()->heap, value);
  else cell.value.set(value);
  cell.phase = GlobalCell::Phase::kDone;
}

bool IsolatedGlobal::is_initialized() const {
  return cell_for(*decl_, "is_initialized").phase == GlobalCell::Phase::kDone;
}

const std::string& IsolatedGlobal::name() const { return decl_->name; }

}  // namespace shoal
