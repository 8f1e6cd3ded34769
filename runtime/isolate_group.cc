// Isolate groups, isolates, entering and leaving (include/shoal/isolate.h,
// runtime/isolate_context.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "gc/preempt_safe_lock.h"
#include "gc/thread_registry.h"
#include "runtime/globals.h"
#include "runtime/isolate_context.h"
#include "runtime/port_state.h"
#include "shoal/atomics.h"
#include "shoal/errors.h"
#include "shoal/internal/mutation_checks.h"

namespace shoal {
namespace internal {

constinit thread_local ThreadIsolateState tls_isolate{};

namespace {
std::atomic<uint64_t> g_next_group_serial{1};

// A thread that exits inside isolate scopes (leaked with new, or ended without unwinding
// its frames) must not keep its isolate entered for ever, nor its group's count of
// threads inside. This thread_local's destructor runs in the exiting thread - before the
// heap's own exit guard (heap/heap.cc), which was constructed earlier, detaches it.
thread_local int tls_scopes_inside = 0;  // IsolateScopes + SharedIsolateScopes alive
struct LeaveAtThreadExit {
  bool armed = false;
  ~LeaveAtThreadExit() {
    if (tls_scopes_inside == 0 || !tls_isolate.group) return;
    if (tls_isolate.isolate && tls_isolate.isolate->held_by_me()) tls_isolate.isolate->release();
    tls_isolate.group->threads_inside.fetch_sub(tls_scopes_inside, std::memory_order_release);
    tls_scopes_inside = 0;
    set_thread_isolate({});
  }
};
thread_local LeaveAtThreadExit leave_at_exit;
constexpr uint32_t kMaxIsolates = (uint32_t{1} << header::kOwnerBits) - 2;  // the last id is kDetachedOwner
}  // namespace

uint64_t owner_key_for(const ThreadIsolateState& state) {
  if (state.mode != IsolateMode::kIsolate || state.group->options.share_everything) return 0;
  return uint64_t{state.isolate->id} << header::kOwnerShift;
}

void set_thread_isolate(const ThreadIsolateState& state) {
  tls_isolate = state;
  const uint64_t key = owner_key_for(state);
  tls_owner_key = key | (tls_owner_key & kNotRunningKey);
  tls_cells_need_shareable = state.mode != IsolateMode::kOutside && state.group &&
                             !state.group->options.share_everything;
  if (MutatorThread* t = current_thread()) t->owner_bits = key;
}

// --- IsolateImpl ---

bool IsolateImpl::acquire(bool wait) {
  const std::thread::id me = std::this_thread::get_id();
  {
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (holder_ == std::thread::id()) {
      holder_ = me;
      return true;
    }
    if (!wait) return false;
  }
  run_native([&] {
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    cv_.wait(lock, [&] { return holder_ == std::thread::id(); });
    holder_ = me;
  });
  return true;
}

void IsolateImpl::release() {
  if (has_pending_drops_.load(std::memory_order_acquire)) drop_pending_globals();
  {
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    holder_ = std::thread::id();
  }
  cv_.notify_one();
}

bool IsolateImpl::held_by_me() const {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return holder_ == std::this_thread::get_id();
}

bool IsolateImpl::is_entered() const {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return holder_ != std::thread::id();
}

GlobalCell& IsolateImpl::global_cell(size_t index, uint64_t serial) {
  if (has_pending_drops_.load(std::memory_order_acquire)) drop_pending_globals();
  if (index >= globals_.size()) globals_.resize(index + 1);
  std::unique_ptr<GlobalCell>& cell = globals_[index];
  if (!cell || cell->serial != serial) {
    cell = std::make_unique<GlobalCell>();  // (drops a destroyed global's leftover cell)
    cell->serial = serial;
  }
  return *cell;
}

std::unique_ptr<GlobalCell> IsolateImpl::take_cell_locked(size_t index, uint64_t serial) {
  if (index < globals_.size() && globals_[index] && globals_[index]->serial == serial)
    return std::move(globals_[index]);
  return nullptr;
}

// The cells of another isolate are touched only with its mu_ held and no holder (a
// thread that takes the isolate does so under mu_ afterwards, so it sees the change),
// or by the holder itself.
std::unique_ptr<GlobalCell> IsolateImpl::take_global(size_t index, uint64_t serial) {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (holder_ == std::thread::id() || holder_ == std::this_thread::get_id()) return take_cell_locked(index, serial);
  pending_drops_.emplace_back(index, serial);
  has_pending_drops_.store(true, std::memory_order_release);
  return nullptr;
}

void IsolateImpl::drop_pending_globals() {
  std::vector<std::unique_ptr<GlobalCell>> dead;  // destroyed after the lock (handles)
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  for (auto [index, serial] : pending_drops_)
    if (auto cell = take_cell_locked(index, serial)) dead.push_back(std::move(cell));
  pending_drops_.clear();
  if (std::exchange(retired_, false)) {
    for (std::unique_ptr<GlobalCell>& cell : globals_)
      if (cell) dead.push_back(std::move(cell));
    globals_.clear();
  }
  has_pending_drops_.store(false, std::memory_order_relaxed);
}

void IsolateImpl::retire() {
  std::vector<std::unique_ptr<GlobalCell>> dead;  // destroyed after the lock (handles)
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (holder_ == std::thread::id() || holder_ == std::this_thread::get_id()) {
    dead.swap(globals_);
    pending_drops_.clear();
    return;
  }
  retired_ = true;  // (the holder drops them as it leaves: release)
  has_pending_drops_.store(true, std::memory_order_release);
}

// --- GroupImpl ---

GroupImpl::GroupImpl(IsolateGroup* facade_in, IsolateGroupOptions opts)
    : facade(facade_in),
      options(std::move(opts)),
      heap(options.heap),
      serial(g_next_group_serial.fetch_add(1, std::memory_order_relaxed)) {
  if (options.checked_reads) g_checked_reads.fetch_add(1, std::memory_order_relaxed);
}

GroupImpl::~GroupImpl() {
  if (const int inside = threads_inside.load(std::memory_order_acquire); inside != 0) {
    std::fprintf(stderr, "shoal: isolate group '%s' destroyed while %d thread(s) are inside it\n",
                 options.name.c_str(), inside);
    std::abort();
  }
  if (options.checked_reads) g_checked_reads.fetch_sub(1, std::memory_order_relaxed);
  std::vector<std::shared_ptr<SharedFieldState>> fields;
  std::vector<std::shared_ptr<PortState>> ports;
  std::vector<std::shared_ptr<IsolatedGlobalDecl>> globals;
  {
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    for (auto& w : ports_)
      if (auto p = w.lock()) ports.push_back(std::move(p));
    for (auto& w : fields_)
      if (auto f = w.lock()) fields.push_back(std::move(f));
    for (auto& w : globals_)
      if (auto g = w.lock()) globals.push_back(std::move(g));
  }
  // Under each global's own lock, after mu_ is released: a handle being destroyed on
  // another thread holds it while it unregisters (taking mu_).
  for (auto& g : globals) {
    internal::PreemptSafeLock lock(g->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    g->group.store(nullptr, std::memory_order_release);
  }
  for (auto& f : fields) f->detach_from_group();
  // Ports: close them and drop their queued messages (persistent handles of `heap`).
  for (auto& p : ports) {
    p->close_and_take();
    internal::PreemptSafeLock lock(p->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    p->group.store(nullptr, std::memory_order_release);
  }
  // Each isolate's globals are persistent handles of `heap`: release them while it lives.
  for (IsolateImpl& iso : isolates_) iso.drop_globals();
}

IsolateImpl& GroupImpl::create_isolate(std::string name) {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (isolates_.size() >= kMaxIsolates)
    throw InvalidArgument("create_isolate: the group already has 2^22 - 2 isolates");
  const uint32_t id = static_cast<uint32_t>(isolates_.size() + 1);
  IsolateImpl& iso = isolates_.emplace_back(this, id, std::move(name));
  isolate_count_.store(isolates_.size(), std::memory_order_release);
  return iso;
}

IsolateImpl* GroupImpl::find_isolate(uint32_t id) const {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (id == 0 || id > isolates_.size()) return nullptr;
  return const_cast<IsolateImpl*>(&isolates_[id - 1]);
}

size_t GroupImpl::isolate_count() const { return isolate_count_.load(std::memory_order_acquire); }

std::string GroupImpl::describe_isolate(uint32_t id) const {
  const IsolateImpl* iso = find_isolate(id);
  if (!iso) return "isolate #" + std::to_string(id) + " (not of this group)";
  return "isolate '" + iso->name + "' (#" + std::to_string(id) + ")";
}

size_t GroupImpl::register_global(std::shared_ptr<IsolatedGlobalDecl> decl) {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  if (free_global_indices_.empty()) {
    globals_.push_back(std::move(decl));
    return globals_.size() - 1;
  }
  const size_t index = free_global_indices_.back();
  free_global_indices_.pop_back();
  globals_[index] = std::move(decl);
  return index;
}

// Every isolate's cell of the global goes now - or, in an isolate another thread holds,
// when that thread next reads a global or leaves - and with it the value the cell kept
// alive. The index is free at once: cells carry their global's serial.
void GroupImpl::unregister_global(const IsolatedGlobalDecl& decl) {
  std::vector<std::unique_ptr<GlobalCell>> dead;  // destroyed after the locks (handles)
  {
    internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
    for (IsolateImpl& iso : isolates_)
      if (auto cell = iso.take_global(decl.index, decl.serial)) dead.push_back(std::move(cell));
    globals_[decl.index].reset();
    free_global_indices_.push_back(decl.index);
  }
}

size_t GroupImpl::registered_globals() const {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return globals_.size() - free_global_indices_.size();
}

namespace {
// Appends a registration, first forgetting those that are gone once the list has doubled
// since the last time: a long-lived group that makes and drops fields or ports does not
// accumulate them (a weak_ptr to a make_shared block keeps the whole block allocated),
// at amortised constant cost per registration.
template <class T>
void register_pruning(std::vector<std::weak_ptr<T>>& list, size_t& prune_at, std::shared_ptr<T> item) {
  if (list.size() >= prune_at) {
    std::erase_if(list, [](const std::weak_ptr<T>& w) { return w.expired(); });
    prune_at = std::max<size_t>(16, 2 * list.size());
  }
  list.push_back(std::move(item));
}
}  // namespace

void GroupImpl::register_port(std::shared_ptr<PortState> port) {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  register_pruning(ports_, ports_prune_at_, std::move(port));
}

size_t GroupImpl::registered_fields() const {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  return fields_.size();
}

void GroupImpl::register_field(std::shared_ptr<SharedFieldState> field) {
  internal::PreemptSafeLock lock(mu_);  // (a no-preempt region: gc/preempt_safe_lock.h)
  register_pruning(fields_, fields_prune_at_, std::move(field));
}

}  // namespace internal

using internal::IsolateMode;
using internal::ThreadIsolateState;
using internal::tls_isolate;

// --- Isolate, IsolateGroup ---

uint32_t Isolate::id() const { return impl_->id; }
const std::string& Isolate::name() const { return impl_->name; }
IsolateGroup& Isolate::group() const { return *impl_->group->facade; }
bool Isolate::is_entered() const { return impl_->is_entered(); }

IsolateGroup::IsolateGroup() : IsolateGroup(IsolateGroupOptions{}) {}
IsolateGroup::IsolateGroup(IsolateGroupOptions options)
    : impl_(std::make_unique<internal::GroupImpl>(this, std::move(options))) {}
IsolateGroup::~IsolateGroup() = default;
Heap& IsolateGroup::heap() { return impl_->heap; }
const IsolateGroupOptions& IsolateGroup::options() const { return impl_->options; }
Isolate& IsolateGroup::create_isolate(std::string name) { return impl_->create_isolate(std::move(name)).facade; }
size_t IsolateGroup::isolate_count() const { return impl_->isolate_count(); }

// --- IsolateScope ---

struct IsolateScope::Saved {
  ThreadIsolateState previous;
  std::optional<MutatorScope> attach;
  internal::IsolateImpl* entered = nullptr;  // acquired by this scope (null: nested)
  internal::IsolateImpl* suspended = nullptr;  // released by this scope, re-acquired at its end
  internal::GroupImpl* group = nullptr;
};

IsolateScope::IsolateScope(Isolate& isolate) : saved_(std::make_unique<Saved>()) { enter(isolate, true); }
IsolateScope::IsolateScope(Isolate& isolate, TryEnter) : saved_(std::make_unique<Saved>()) { enter(isolate, false); }

void IsolateScope::enter(Isolate& isolate, bool wait) {
  internal::IsolateImpl* target = &isolate.impl();
  internal::GroupImpl* group = target->group;
  saved_->attach.emplace(group->heap);  // ThreadStateError if attached to another heap
  saved_->previous = tls_isolate;
  internal::IsolateImpl* held = tls_isolate.isolate;
  if (held != target) {
    // Inside a handshake operation nothing may wait for an isolate: its holder may be
    // waiting for a collection, which waits for the handshake's requester, which waits
    // for this operation. So the target is taken only if free (ThreadStateError
    // otherwise), and an isolate the thread holds is kept rather than released (taking
    // it back at the end could wait).
    const bool in_op = internal::in_handshake_op();
    if (wait && !in_op) {
      // Leave the current isolate first: two isolates calling into each other must not
      // deadlock.
      if (held) held->release();
      saved_->suspended = held;
      target->acquire(true);
    } else {
      if (!target->acquire(false)) {
        if (in_op)
          throw ThreadStateError("IsolateScope: isolate '" + target->name +
                                 "' is entered by another thread, and a handshake operation must not wait for it");
        throw IsolateBusyError("IsolateScope(try_enter): isolate '" + target->name +
                               "' is entered by another thread");
      }
      if (!in_op) {
        if (held) held->release();
        saved_->suspended = held;
      }
    }
    saved_->entered = target;
  }
  saved_->group = group;
  group->threads_inside.fetch_add(1, std::memory_order_relaxed);
  ++internal::tls_scopes_inside;
  internal::leave_at_exit.armed = true;
  internal::set_thread_isolate({group, target, IsolateMode::kIsolate});
}

IsolateScope::~IsolateScope() {
  if (saved_->entered) saved_->entered->release();
  if (saved_->suspended) saved_->suspended->acquire(true);
  internal::set_thread_isolate(saved_->previous);
  --internal::tls_scopes_inside;
  saved_->group->threads_inside.fetch_sub(1, std::memory_order_release);
  saved_->attach.reset();
}

// --- SharedIsolateScope ---

struct SharedIsolateScope::Saved {
  ThreadIsolateState previous;
  std::optional<MutatorScope> attach;
  internal::GroupImpl* group = nullptr;
};

SharedIsolateScope::SharedIsolateScope(IsolateGroup& group) : saved_(std::make_unique<Saved>()) {
  internal::GroupImpl* g = &group.impl();
  saved_->attach.emplace(g->heap);
  saved_->previous = tls_isolate;
  saved_->group = g;
  // An isolate of this group stays entered underneath; one of another group cannot be
  // (the thread is attached to this group's heap).
  internal::IsolateImpl* keep = tls_isolate.group == g ? tls_isolate.isolate : nullptr;
  g->threads_inside.fetch_add(1, std::memory_order_relaxed);
  ++internal::tls_scopes_inside;
  internal::leave_at_exit.armed = true;
  internal::set_thread_isolate({g, keep, IsolateMode::kShared});
}

SharedIsolateScope::~SharedIsolateScope() {
  internal::set_thread_isolate(saved_->previous);
  --internal::tls_scopes_inside;
  saved_->group->threads_inside.fetch_sub(1, std::memory_order_release);
  saved_->attach.reset();
}

Isolate* current_isolate() {
  return tls_isolate.mode == IsolateMode::kIsolate ? &tls_isolate.isolate->facade : nullptr;
}
bool in_shared_isolate() { return tls_isolate.mode == IsolateMode::kShared; }
IsolateGroup* current_group() { return tls_isolate.group ? tls_isolate.group->facade : nullptr; }

IsolateGroup& require_current_group(const char* what) {
  if (!tls_isolate.group)
    throw NotAttached(std::string(what) + ": the calling thread is in no isolate group (enter an isolate, or name the group)");
  return *tls_isolate.group->facade;
}

}  // namespace shoal
