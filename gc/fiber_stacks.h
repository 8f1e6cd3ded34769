// Suspended stacks of fibers and stackful coroutines: conservative roots that are not the
// stack a thread is running on.
//
// A thread's scanned stack is [captured sp, stack_base). A VM that runs green threads or
// coroutines on stacks of its own (makecontext/swapcontext, Boost.Context, hand-written
// switches) moves the thread between stacks, so the heap must learn two things:
//   1. which stack the thread now runs on: shoal::switch_stack(new_base), called right
//      before the switch, sets MutatorThread::stack_base to the new stack's base;
//   2. the stack it leaves: that call also records the leaving stack's live part -
//      [current sp, old base) - and the callee-saved registers, as a suspended stack. A
//      suspended stack is a root of the heap until a thread switches onto it again
//      (switch_stack with its base, on any thread: fibers may migrate) or it is forgotten
//      (shoal::forget_stack, when a finished fiber's memory is released).
// Nothing between switch_stack and the switch itself may reach a safepoint: a pause in
// between would scan [old sp, new base). The switch routine saves the same registers
// the record captured (nothing ran in between), so a reference held only in a register
// of the suspended fiber is in the record.
//
// Invariant: every stack that holds references of a live fiber is either the stack some
// attached thread runs on (scanned with that thread) or a suspended stack here. The
// table is read in pauses and written under the heap's root lock (gc/roots.h), so a
// switch is atomic with respect to pauses whichever thread it happens on.
#pragma once

#include <cstdint>
#include <map>

#include "gc/stack_scanner.h"

namespace shoal::internal {

struct SuspendedStack {
  uintptr_t sp = 0;    // the lowest live address when it was left
  uintptr_t base = 0;  // its highest address
  CapturedContext registers;
};

// Keyed by base. Guarded by the root lock (RootSet).
using SuspendedStacks = std::map<uintptr_t, SuspendedStack>;

}  // namespace shoal::internal
