// Isolated globals (include/shoal/isolate.h, runtime/globals.h): one copy per isolate,
// initialised lazily by the isolate's holder thread. No lock on the read path: only the
// thread that has entered the isolate touches its cells.
#include "gc/roots.h"
#include "runtime/globals.h"
#include "runtime/isolate_context.h"
#include "shoal/errors.h"

namespace shoal {

using internal::GlobalCell;
using internal::IsolateMode;
using internal::tls_isolate;

namespace {
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
  return tls_isolate.isolate->global_cell(decl.index);
}
}  // namespace

IsolatedGlobal::IsolatedGlobal(IsolateGroup& group, std::string name, std::function<Value()> initializer)
    : decl_(std::make_shared<internal::IsolatedGlobalDecl>()) {
  decl_->name = std::move(name);
  decl_->initializer = std::move(initializer);
  decl_->group_serial = group.impl().serial;
  decl_->group.store(&group.impl(), std::memory_order_release);
  decl_->index = group.impl().register_global(decl_);
}

IsolatedGlobal::~IsolatedGlobal() = default;

Value IsolatedGlobal::get() const {
  GlobalCell& cell = cell_for(*decl_, "get");
  if (cell.phase == GlobalCell::Phase::kDone) return cell.value.get();
  if (cell.phase == GlobalCell::Phase::kInitializing)
    throw CyclicInitializationError("isolated global '" + decl_->name + "': its initializer read it");
  Value v;
  if (decl_->initializer) {
    cell.phase = GlobalCell::Phase::kInitializing;
    try {
      v = decl_->initializer();
    } catch (...) {
      cell.phase = GlobalCell::Phase::kUninitialized;
      throw;
    }
  }
  // (A set() from inside the initializer wins over the initializer's result? No: the
  // initializer's result is what a first read returns, as in Dart.)
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
