// The root set: what the collector starts marking from.
//
//   1. Every attached thread's stack and saved registers, scanned conservatively
//      (gc/stack_scanner.h): any word that points into an allocated object keeps it.
//   2. Persistent handles (shoal::Persistent<T>, shoal::PersistentValue): precise root
//      slots in a per-heap region of nodes, usable from any thread, attached or not.
//   3. Registered global slots (Heap::add_root, written with Heap::store_root): precise.
//   4. Suspended fiber stacks (gc/fiber_stacks.h): scanned conservatively, like 1.
//   5. Scratch lists (ScratchRoots): vectors of objects the runtime holds outside the
//      heap across a safepoint (freeze's claimed objects, a deep copy's map), registered
//      for as long as the owning thread needs them. The owner changes a list only while
//      it is running, so a pause (which parks it) reads it at rest. A list is part of its
//      owner's stack: a concurrent cycle scans it with that stack, at the owner's own
//      safepoint (gc/thread_stack_scan.cc), since objects the owner moved into it from
//      its unscanned stack after the initial pause would be in neither.
// Weak handles (shoal::WeakRef<T>) live in the same node region but are not roots:
// after marking, the collector clears every weak node whose target is unmarked, in the
// pause, before the sweep frees the target - so a weak handle reads either its live
// target or null, never freed memory.
//
// The root lock (mu_) makes every handle operation atomic with respect to whole pauses.
// Every operation that reads or writes a node's value or a global slot - create, copy,
// set, set-from-another-handle, weak upgrade, reset, store_global - runs under mu_, and
// every pause takes mu_ right after the world has stopped and keeps it until just before
// the world resumes (lock_for_pause / unlock_after_pause). So a pause sees each handle
// operation entirely before or entirely after itself, whatever state the operating
// thread is in (running, in native, unattached, in a finalizer or handshake callback):
//   - the root scan reads all handles at one instant: a value moved from one handle to
//     another (set_from, then reset) is seen in one of them, never in neither;
//   - a weak handle copied or upgraded is read and registered in one step, so a pause
//     that clears weak handles clears the new one too or finds it holding a live target;
//   - while a concurrent cycle marks, every value stored into a strong node or global
//     slot - or held by a slot when it is registered (add_global) - is shaded: pushed
//     on the collector's grey list (Collector::shade_root), which the final pause
//     drains while it holds mu_, and marking is switched on and off only inside pauses. Invariant: while marking, every strong node's value is marked, so a
//     strong copy needs nothing more and a weak upgrade makes its target survive.
// What the lock cannot protect is a raw reference on a stack the collector does not
// scan (an unattached thread, code inside run_native): operations that take or return
// a raw reference (create from a Ref, set(Ref), get()) therefore require the caller to
// be a running thread of the handle's heap and throw ThreadStateError otherwise
// (require_running). docs/roots.md has the table per thread state.
//
// A running thread never blocks a pause here: a pause takes mu_ only once every running
// thread is parked, and no thread parks while it holds mu_ (nothing under mu_ polls).
// Lock order: registry_mu_ < mu_ < every lock a pause takes (the collector's work and
// stats locks, the finalizer table's, page-list and large-object locks): code holding
// one of those must not create, copy or destroy a handle.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "gc/fiber_stacks.h"
#include "shoal/internal/mutator.h"
#include "shoal/internal/mutex.h"
#include "shoal/value.h"

namespace shoal {
class Heap;
}

namespace shoal::internal {

class HeapImpl;

struct PersistentNode {
  Slot slot;
  PersistentNode* next_free = nullptr;
  Heap* heap = nullptr;  // null once the heap is destroyed (orphaned node)
  bool in_use = false;
  bool weak = false;  // a WeakRef: not a root; cleared when its target dies
};

// Throws ThreadStateError unless the calling thread is attached to `heap`, running, and
// not inside run_native or a handshake operation. `what` names the operation.
void require_running(const HeapImpl& heap, const char* what);

// Chunks of handle nodes kept for handles that outlived their heap (RootSet::~RootSet;
// for tests and leak checks).
size_t orphaned_handle_chunks();

class RootSet {
 public:
  static constexpr size_t kChunkSize = 256;  // handle nodes per allocation
  explicit RootSet(Heap* heap) : heap_(heap) {}
  ~RootSet();

  // A new node holding `initial` (shaded while marking, for a strong node).
  PersistentNode* acquire(Value initial, bool weak) SHOAL_EXCLUDES(mu_);
  // A new node holding what `from` (strong or weak, of this heap) holds at this instant.
  PersistentNode* copy(const PersistentNode* from, bool weak) SHOAL_EXCLUDES(mu_);
  void set(PersistentNode* node, Value v) SHOAL_EXCLUDES(mu_);
  // node := what `from` holds, in one step.
  void set_from(PersistentNode* node, const PersistentNode* from) SHOAL_EXCLUDES(mu_);
  void release(PersistentNode* node) SHOAL_EXCLUDES(mu_);
  void add_global(Slot* slot) SHOAL_EXCLUDES(mu_);
  void remove_global(Slot* slot) SHOAL_EXCLUDES(mu_);
  void store_global(Slot* slot, Value v) SHOAL_EXCLUDES(mu_);
  size_t persistent_count() SHOAL_EXCLUDES(mu_);
  // Fibers (gc/fiber_stacks.h): records the stack being left (unless null) and forgets
  // the one being entered, in one step.
  void switch_stacks(const SuspendedStack* leaving, uintptr_t entering_base) SHOAL_EXCLUDES(mu_);
  // Returns false if no suspended stack has that base.
  bool forget_stack(uintptr_t base) SHOAL_EXCLUDES(mu_);
  size_t suspended_stack_count() SHOAL_EXCLUDES(mu_);

  // Pause only (root lock held): calls f(lo, hi, registers) for every range a suspended
  // fiber stack asks to be scanned conservatively - its live part with the registers
  // captured when it was left, then its save area (if named) with no registers.
  template <class F>
  void for_each_suspended_range(F&& f) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    for (const auto& [base, stack] : suspended_) {
      f(stack.sp, stack.base, std::span<const uintptr_t>(stack.registers.registers));
      if (stack.save_bytes != 0)
        f(stack.save_area, stack.save_area + stack.save_bytes, std::span<const uintptr_t>());
    }
  }

  // Pauses: taken after the world has stopped, released before it resumes.
  void lock_for_pause() SHOAL_ACQUIRE(mu_) { mu_.lock(); }
  void unlock_after_pause() SHOAL_RELEASE(mu_) { mu_.unlock(); }

  // Pause only (root lock held): calls f(value) for every persistent and global root.
  template <class F>
  void for_each_root(F&& f) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    size_t scanned = 0;
    for (const auto& chunk : chunks_)
      for (size_t i = 0; i < kChunkSize; ++i)
        if (chunk[i].in_use && !chunk[i].weak) {
          f(chunk[i].slot.load());
          if (scan_hook_) scan_hook_(++scanned);
        }
    for (Slot* s : globals_) f(s->load());
    for (const Scratch& scratch : scratch_)
      for (Object* o : *scratch.list) f(Value::from_object(o));
  }
  // Pause only (root lock held): f(value) for the persistent and global roots (no
  // scratch lists), and f(object) for the scratch lists' objects.
  template <class F>
  void for_each_handle_root(F&& f) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    for (const auto& chunk : chunks_)
      for (size_t i = 0; i < kChunkSize; ++i)
        if (chunk[i].in_use && !chunk[i].weak) f(chunk[i].slot.load());
    for (Slot* s : globals_) f(s->load());
  }
  template <class F>
  void for_each_scratch_object(F&& f) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    for (const Scratch& scratch : scratch_)
      for (Object* o : *scratch.list) f(o);
  }
  // Any time (takes the root lock): f(object) for the scratch lists `owner` registered.
  // The owner must not be running (it is at a safepoint or safe), so its lists are at
  // rest.
  template <class F>
  void for_each_scratch_object_of(const MutatorState* owner, F&& f) SHOAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (const Scratch& scratch : scratch_)
      if (scratch.owner == owner)
        for (Object* o : *scratch.list) f(o);
  }
  void add_scratch(const std::vector<Object*>* list) SHOAL_EXCLUDES(mu_);
  void remove_scratch(const std::vector<Object*>* list) SHOAL_EXCLUDES(mu_);

  // Pause only (root lock held): calls f(slot) for every weak handle's slot.
  template <class F>
  void for_each_weak(F&& f) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
    for (const auto& chunk : chunks_)
      for (size_t i = 0; i < kChunkSize; ++i)
        if (chunk[i].in_use && chunk[i].weak) f(chunk[i].slot);
  }

  // Testing hooks (set them while no pause runs). scan: called in the pause after each
  // strong node the root scan reads, with the number read so far. copy: called inside
  // copy/set_from, under the root lock, between reading the source and publishing.
  void set_scan_hook_for_testing(std::function<void(size_t)> hook) SHOAL_EXCLUDES(mu_);
  void set_copy_hook_for_testing(std::function<void()> hook) SHOAL_EXCLUDES(mu_);

 private:
  PersistentNode* take_node(Value initial, bool weak) SHOAL_REQUIRES(mu_);
  // A node's value for copy/set_from (runs the copy hook between read and publish).
  Value read_source(const PersistentNode* from) SHOAL_REQUIRES(mu_);
  // Stores v into node, shading it first if the node is strong.
  void store(PersistentNode* node, Value v) SHOAL_REQUIRES(mu_);
  // While a concurrent cycle marks: shades a value stored into a strong root.
  void shade(Value v) SHOAL_REQUIRES(mu_);

  Heap* heap_;
  Mutex mu_;
  std::vector<std::unique_ptr<PersistentNode[]>> chunks_ SHOAL_GUARDED_BY(mu_);
  PersistentNode* free_ SHOAL_GUARDED_BY(mu_) = nullptr;
  size_t in_use_ SHOAL_GUARDED_BY(mu_) = 0;
  std::vector<Slot*> globals_ SHOAL_GUARDED_BY(mu_);
  struct Scratch {
    const MutatorState* owner;  // the registering thread (null if unattached)
    const std::vector<Object*>* list;
  };
  std::vector<Scratch> scratch_ SHOAL_GUARDED_BY(mu_);
  SuspendedStacks suspended_ SHOAL_GUARDED_BY(mu_);
  std::function<void(size_t)> scan_hook_;
  std::function<void()> copy_hook_ SHOAL_GUARDED_BY(mu_);
};

// Registers `list` as a root for the guard's lifetime (see 5. above).
class ScratchRoots {
 public:
  ScratchRoots(RootSet& roots, const std::vector<Object*>* list) : roots_(roots), list_(list) {
    roots_.add_scratch(list_);
  }
  ~ScratchRoots() { roots_.remove_scratch(list_); }
  ScratchRoots(const ScratchRoots&) = delete;
  ScratchRoots& operator=(const ScratchRoots&) = delete;

 private:
  RootSet& roots_;
  const std::vector<Object*>* list_;
};

}  // namespace shoal::internal
