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
// between would scan [old sp, new base). A suspended stack is scanned as it is at the
// pause (its frames do not change while suspended), with the registers captured by
// switch_stack and the save area the caller names: the compiler may shuffle a value
// between a stack slot and a callee-saved register after switch_stack returns, and the
// switch routine then saves that register in its save area (swapcontext: the ucontext_t;
// routines that push the registers on the stack being left, like Boost.Context's, keep
// them in the scanned range).
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
  // Where the switch routine saves the registers of the stack being left (a ucontext_t),
  // if the caller named it: scanned too. Between switch_stack and the switch itself the
  // compiler may move a value from the stack into a callee-saved register; the switch
  // then saves that register there, not on the stack.
  uintptr_t save_area = 0;
  size_t save_bytes = 0;
};

// Keyed by base. Guarded by the root lock (RootSet).
using SuspendedStacks = std::map<uintptr_t, SuspendedStack>;

}  // namespace shoal::internal
